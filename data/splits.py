"""Opening a dataset split for training or scoring, and the guard that keeps the test split for promotion.

The test split ("novel", and "all", which holds the novel classes too) is read only by promotion and the margin study:
`load_split` refuses it unless the caller passes allow_test=True. Decoding it into the cache ahead of time
(`prepare_split`) is not reading it.
"""

from __future__ import annotations

from pathlib import Path

from data.cache import CachedSplit, ensure_cache, load_cached
from data.datasets import build_dataset
from data.errors import DataError
from data.geometry import CROP_SCALE, stored_size
from data.readers.base import ImageDataset

TEST_SPLITS = frozenset({"novel", "all"})


def split_stored_size(
    dataset: ImageDataset, image_size: int, crop_scale_min: float = CROP_SCALE[0], max_stored_size: int | None = None
) -> int:
    """S for this split: data.geometry.stored_size capped at the split's native side and at `max_stored_size`."""
    return stored_size(image_size, crop_scale_min, native=dataset.native_size(), limit=max_stored_size)


def load_split(
    name: str,
    root: str | Path | None,
    split: str,
    image_size: int,
    cache_dir: str | Path | None = None,
    *,
    crop_scale_min: float = CROP_SCALE[0],
    max_stored_size: int | None = None,
    allow_test: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> CachedSplit:
    """Cached split of dataset `name` for model input `image_size`, stored at split_stored_size (built on first
    use; `crop_scale_min` is the training crop_scale's low end); the test split raises DataError unless allow_test."""
    if split in TEST_SPLITS and not allow_test:
        raise DataError(f"the test split is read only by promotion (refused {name} {split!r})")
    dataset = build_dataset(name, root, split)
    size = split_stored_size(dataset, image_size, crop_scale_min, max_stored_size)
    return load_cached(dataset, image_size, size, cache_dir, progress=progress, workers=workers)


def prepare_split(
    name: str,
    root: str | Path | None,
    split: str,
    image_size: int,
    cache_dir: str | Path | None = None,
    *,
    crop_scale_min: float = CROP_SCALE[0],
    max_stored_size: int | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[Path, int]:
    """Build (decode only) the cache of any split, the test split included, as load_split would -> (folder, S)."""
    dataset = build_dataset(name, root, split)
    size = split_stored_size(dataset, image_size, crop_scale_min, max_stored_size)
    return ensure_cache(dataset, size, cache_dir, progress=progress, workers=workers), size
