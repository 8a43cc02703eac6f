"""Datasets, the decode-once uint8 image cache, batched augmentation and fixed episode sets.

The names below are imported from their submodules on first use (PEP 562), so that the torch-free parts (readers,
cache, dataset names) load without torch: the `negmargin` parser and `negmargin data prepare` need only those.
No exported name is also a submodule name (a test checks), so an imported submodule never shadows an export.
"""

import importlib

_EXPORTS = {
    "TrainAugment": "data.augment",
    "eval_transform": "data.augment",
    "CachedSplit": "data.cache",
    "default_cache_dir": "data.paths",
    "load_split": "data.splits",
    "prepare_split": "data.splits",
    "load_base_parts": "data.splits",
    "DatasetConfig": "data.section",
    "eval_resize_size": "data.geometry",
    "stored_size": "data.geometry",
    "write_atomically": "data.atomic",
    "write_text_atomically": "data.atomic",
    "file_lock": "data.atomic",
    "build_dataset": "data.datasets",
    "list_datasets": "data.datasets",
    "EpisodeSet": "data.episodes",
    "holdout_indices": "data.holdout",
    "split_base": "data.holdout",
    "episode_file_name": "data.paths",
    "DataError": "data.errors",
    "ArrayImageDataset": "data.readers.base",
    "FileImageDataset": "data.readers.base",
    "ImageDataset": "data.readers.base",
    "LazyArrayDataset": "data.readers.base",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """The exported `name`, imported from its submodule on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
