"""Fixtures of the data tests: tiny datasets in each layout (written by helpers.datasets)."""

from helpers.datasets import (  # noqa: F401
    closerlook_mini_root,
    cub_root,
    imagefolder_root,
    learn2learn_root,
    mini_csv_root,
    mini_json_root,
    mini_pickle_root,
)
