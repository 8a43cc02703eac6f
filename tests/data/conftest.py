"""Fixtures of the data tests: tiny datasets in each layout (written by helpers.datasets)."""

from helpers.datasets import cub_root, imagefolder_root, mini_csv_root, mini_json_root, mini_pickle_root  # noqa: F401
