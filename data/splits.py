"""Opening a dataset split for training or scoring, and the guard that keeps the test split for promotion.

Every reader of the cache passes the dataset section (data.section.DatasetConfig) as one value: its image size, crop
scale and max stored size decide the stored side S (data.geometry.stored_size), so the trial, promotion, a sweep's
up-front decode, the margin study and `negmargin evaluate` read one cache folder per split geometry. There are no
geometry defaults here.

The test split ("novel", and "all", which holds the novel classes too) is read only by promotion and the margin study:
`load_split` refuses it unless the caller passes allow_test=True. Decoding it into the cache ahead of time
(`prepare_split`) is not reading it. `prepare_splits` decodes several splits and, when an image is bad, leaves the cache
directory as it found it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from data.cache import CachedSplit, ensure_cache, load_cached
from data.datasets import build_dataset
from data.errors import DataError
from data.geometry import stored_size
from data.paths import default_cache_dir
from data.readers.base import ImageDataset
from data.section import DatasetConfig

TEST_SPLITS = frozenset({"novel", "all"})


def split_stored_size(dataset: ImageDataset, section: DatasetConfig) -> int:
    """S for this split: data.geometry.stored_size of the section's geometry, capped at the split's native side."""
    return stored_size(
        section.image_size, section.crop_scale[0], native=dataset.native_size(), limit=section.max_stored_size
    )


def load_split(
    section: DatasetConfig,
    split: str,
    *,
    allow_test: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> CachedSplit:
    """Cached `split` of the section's dataset, stored at split_stored_size (built on first use); the test split
    raises DataError unless allow_test."""
    if split in TEST_SPLITS and not allow_test:
        raise DataError(f"the test split is read only by promotion (refused {section.name} {split!r})")
    dataset = build_dataset(section.name, section.root, split)
    size = split_stored_size(dataset, section)
    return load_cached(dataset, section.image_size, size, section.cache_dir, progress=progress, workers=workers)


def load_base_parts(section: DatasetConfig, *, progress: bool = True) -> tuple[CachedSplit, CachedSplit]:
    """(kept, held-out) parts of the base split as the section's holdout_fraction and holdout_seed split it
    (data.split_base): a trial trains on the kept part, the margin study scores on the held-out one. With
    holdout_fraction 0 the kept part is the whole split and the held-out part is empty."""
    from data.holdout import split_base  # torch: only when base images are read

    base = load_split(section, "base", progress=progress)
    if section.holdout_fraction == 0:
        return base, base.subset([])
    return split_base(base, section.holdout_fraction, section.holdout_seed)


def prepare_split(
    section: DatasetConfig, split: str, *, progress: bool = True, workers: int | None = None
) -> tuple[Path, int]:
    """Build (decode only) the cache of any split, the test split included, as load_split would -> (folder, S)."""
    dataset = build_dataset(section.name, section.root, split)
    size = split_stored_size(dataset, section)
    return ensure_cache(dataset, size, section.cache_dir, progress=progress, workers=workers), size


def prepare_splits(section: DatasetConfig, splits: Sequence[str]) -> None:
    """Build the image caches of `splits` (every image decoded once; later readers load them). On a DataError (a
    corrupt or truncated image) remove what this call added to the cache directory, so a refused dataset leaves
    nothing behind: cache folders and lock files carry the split's fingerprint (data.cache layout)."""
    cache_dir = Path(section.cache_dir) if section.cache_dir else default_cache_dir()
    existed = cache_dir.is_dir()
    before = set(cache_dir.iterdir()) if existed else set()
    datasets = [build_dataset(section.name, section.root, split) for split in splits]
    try:
        for split in splits:
            prepare_split(section, split, progress=False)
    except DataError:
        prefixes = [dataset.fingerprint()[:32] for dataset in datasets]
        added = set(cache_dir.iterdir()) - before if cache_dir.is_dir() else set()
        for entry in added:
            if not any(prefix in entry.name for prefix in prefixes):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if not existed and cache_dir.is_dir() and not any(cache_dir.iterdir()):
            cache_dir.rmdir()
        raise
