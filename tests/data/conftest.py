"""Fixtures for the data tests (defined in data_fixtures.py, a uniquely named module the tests import helpers from)."""

from data_fixtures import cub_root, imagefolder_root, mini_csv_root, mini_json_root, mini_pickle_root  # noqa: F401
