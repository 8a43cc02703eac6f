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
from data.geometry import stored_size

TEST_SPLITS = frozenset({"novel", "all"})


def load_split(
    name: str,
    root: str | Path | None,
    split: str,
    image_size: int,
    cache_dir: str | Path | None = None,
    *,
    allow_test: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> CachedSplit:
    """Cached split of dataset `name` for model input `image_size` (built on first use); the test split raises
    DataError unless allow_test=True."""
    if split in TEST_SPLITS and not allow_test:
        raise DataError(f"the test split is read only by promotion (refused {name} {split!r})")
    dataset = build_dataset(name, root, split)
    return load_cached(dataset, image_size, cache_dir, progress=progress, workers=workers)


def prepare_split(
    name: str,
    root: str | Path | None,
    split: str,
    image_size: int,
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Build (decode only, nothing is returned) the cache of any split, the test split included -> its folder."""
    dataset = build_dataset(name, root, split)
    return ensure_cache(dataset, stored_size(image_size), cache_dir, progress=progress, workers=workers)
