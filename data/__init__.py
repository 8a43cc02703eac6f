"""Datasets, the decode-once uint8 image cache, batched augmentation and fixed episode sets.

The names below are imported from their submodules on first use (PEP 562), so that the torch-free parts (readers,
cache, dataset names) load without torch: the `negmargin` parser and `negmargin data prepare` need only those.
No exported name is also a submodule name (a test checks), so an imported submodule never shadows an export. File
helpers (data.atomic, data.paths, data.geometry) are imported from their modules; they are not the package's API.
"""

from data.lazy_exports import lazy_getattr

_EXPORTS = {
    "TrainAugment": "data.augment",
    "eval_transform": "data.augment",
    "CachedSplit": "data.cache",
    "default_cache_dir": "data.paths",
    "load_split": "data.splits",
    "prepare_split": "data.splits",
    "prepare_splits": "data.splits",
    "load_base_parts": "data.splits",
    "DatasetConfig": "data.section",
    "build_dataset": "data.datasets",
    "list_datasets": "data.datasets",
    "EpisodeSet": "data.episodes",
    "holdout_indices": "data.holdout",
    "split_base": "data.holdout",
    "DataError": "data.errors",
    "UserError": "data.errors",
    "ArrayImageDataset": "data.readers.base",
    "FileImageDataset": "data.readers.base",
    "ImageDataset": "data.readers.base",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
