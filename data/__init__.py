"""Datasets, the decode-once uint8 image cache, batched augmentation and fixed episode sets."""
from data.augment import TrainAugment, eval_resize_size, eval_transform
from data.cache import CachedSplit, default_cache_dir, load_split, prepare_split, stored_size
from data.datasets import build_dataset, list_datasets
from data.episodes import EpisodeSet
from data.errors import DataError
from data.readers.base import ArrayImageDataset, FileImageDataset, ImageDataset, LazyArrayDataset

__all__ = [
    "ArrayImageDataset", "CachedSplit", "DataError", "EpisodeSet", "FileImageDataset", "ImageDataset",
    "LazyArrayDataset", "TrainAugment", "build_dataset", "default_cache_dir", "eval_resize_size", "eval_transform",
    "list_datasets", "load_split", "prepare_split", "stored_size",
]
