"""Decode-once cache: every image of a split decoded, resized to S×S and stored in one memory-mapped uint8 .npy.

S comes from data/geometry.py stored_size (the caller, data/splits.py, picks it for the split and the model input).

Layout: <cache_dir>/<fingerprint[:32]>-s<S>-v<format>/{images.npy, labels.npy, meta.json}. A build fills a temporary
folder in cache_dir (meta.json written last) and renames it into place with os.replace, under a per-key file lock,
so an interrupted build never leaves a cache that loads and concurrent trials on one node build it once.
Resizing squashes the whole image to S×S (no crop): RandomResizedCrop then samples from the full picture (in the
squashed frame: docs/protocol.md D4 says what that does to the crops), and eval's resize-then-centre-crop sees what
the published Resize((int(1.15·s), int(1.15·s))) + CenterCrop(s) sees.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from data.atomic import file_lock
from data.errors import DataError
from data.paths import default_cache_dir
from data.readers.base import ImageDataset

CACHE_FORMAT = 1
_CHUNK = 64  # images per task handed to a worker thread


@dataclass(frozen=True, eq=False)
class CachedSplit:
    """A cached split: images uint8 [N, S, S, 3] (memory-mapped), labels int64 [N], class names [C]."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    image_size: int
    split: str
    dataset: str
    path: Path

    @property
    def stored_size(self) -> int:
        """S, the side of the stored images."""
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray | Sequence[int]) -> CachedSplit:
        """The images [K, S, S, 3] and labels [K] at `indices` (copied into memory), with every class name kept."""
        indices = np.asarray(indices, dtype=np.int64)
        return replace(self, images=np.asarray(self.images[indices]), labels=self.labels[indices])


def load_cached(
    dataset: ImageDataset,
    image_size: int,
    size: int,
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
    workers: int | None = None,
) -> CachedSplit:
    """The S×S (S = `size`) cached split of `dataset` for model input `image_size`, building its cache on first use."""
    folder = ensure_cache(dataset, size, cache_dir, progress=progress, workers=workers)
    opened = _open(folder, size)
    if opened is None:
        raise DataError(f"cache at {folder} is unreadable; delete it and retry")
    images, labels, class_names = opened
    return CachedSplit(images, labels, class_names, image_size, dataset.split, dataset.name, folder)


def ensure_cache(
    dataset: ImageDataset,
    size: int,
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Folder of the valid S×S cache of `dataset`, built atomically if missing or invalid."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = f"{dataset.fingerprint()[:32]}-s{size}-v{CACHE_FORMAT}"
    final = cache_dir / key
    if _open(final, size) is not None:
        return final
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(cache_dir / f".{key}.lock"):
            if _open(final, size) is not None:  # another process built it while we waited
                return final
            temporary = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=cache_dir))
            try:
                _build(dataset, size, temporary, progress=progress, workers=workers)
                if final.exists():  # an invalid leftover (e.g. a failed disk); we hold the lock
                    shutil.rmtree(final)
                os.replace(temporary, final)
            finally:
                shutil.rmtree(temporary, ignore_errors=True)
    except OSError as error:  # unwritable cache directory, disk full (image read errors are DataErrors already)
        raise DataError(f"cannot write the image cache in {cache_dir}: {error.strerror or error}") from None
    return final


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Squash an image to size×size (PIL bilinear, antialiased): uint8 [H, W, 3] -> uint8 [size, size, 3]."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def _build(dataset: ImageDataset, size: int, folder: Path, *, progress: bool, workers: int | None) -> None:
    """Decode + resize every image into folder/images.npy in parallel; then labels.npy; meta.json last."""
    count = len(dataset)
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(count, size, size, 3))

    def fill(start: int) -> int:
        stop = min(start + _CHUNK, count)
        for i in range(start, stop):
            images[i] = resize_square(dataset.read(i), size)
        return stop - start

    workers = workers or min(
        32, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    desc = f"decode {dataset.name} {dataset.split} at {size}px"
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=count, desc=desc, unit="img", disable=not progress) as bar,
    ):
        futures = [pool.submit(fill, start) for start in range(0, count, _CHUNK)]
        try:
            for future in as_completed(futures):
                bar.update(future.result())  # re-raises a worker's DataError
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    images.flush()
    np.save(folder / "labels.npy", np.asarray(dataset.labels, dtype=np.int64))
    meta = {
        "format": CACHE_FORMAT,
        "dataset": dataset.name,
        "split": dataset.split,
        "fingerprint": dataset.fingerprint(),
        "stored_size": size,
        "count": count,
        "class_names": list(dataset.class_names),
    }
    with open(folder / "meta.json", "w") as handle:
        json.dump(meta, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())


def _open(folder: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(images mmap [N, S, S, 3], labels [N], class names) if folder holds a complete, consistent cache, else None."""
    try:
        with open(folder / "meta.json") as handle:
            meta = json.load(handle)
        if meta.get("format") != CACHE_FORMAT or meta.get("stored_size") != size:
            return None
        images = np.load(folder / "images.npy", mmap_mode="r")
        labels = np.load(folder / "labels.npy")
    except (OSError, ValueError):  # missing files, truncated .npy (mmap longer than file), bad JSON
        return None
    count, class_names = meta.get("count"), meta.get("class_names")
    if (
        images.dtype != np.uint8
        or images.shape != (count, size, size, 3)
        or labels.shape != (count,)
        or not isinstance(class_names, list)
        or (count and int(labels.max()) >= len(class_names))
    ):
        return None
    return images, labels.astype(np.int64, copy=False), [str(c) for c in class_names]
