"""ImageDataset: one split of a dataset as (image source, label) pairs; file-list and in-memory implementations."""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from data.errors import DataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
ClassKey = TypeVar("ClassKey", str, int)  # a raw class key as a reader finds it (a folder name, a number)
NATIVE_SIZE_SAMPLE = 64  # image headers read to estimate a file split's native side (evenly spaced, deterministic)


def decode_image(path: Path) -> np.ndarray:
    """Decode one image file to RGB -> uint8 [H, W, 3]; a missing or corrupt file raises DataError naming it."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot decode image {path}: {error}") from None


def image_side(path: Path) -> int:
    """The short side of an image file in pixels, from its header alone (nothing is decoded)."""
    try:
        with Image.open(path) as image:
            return min(image.size)
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot decode image {path}: {error}") from None


def remap_labels(raw: Sequence[ClassKey]) -> tuple[np.ndarray, list[ClassKey]]:
    """Map raw class keys to 0..C-1 in sorted key order -> (labels int64 [N], sorted keys)."""
    keys = sorted(set(raw))
    index = {key: i for i, key in enumerate(keys)}
    return np.fromiter((index[key] for key in raw), dtype=np.int64, count=len(raw)), keys


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "little"))
        hasher.update(part)
    return hasher.hexdigest()


def label_digest_parts(labels: np.ndarray, class_names: Sequence[str]) -> tuple[bytes, bytes]:
    """Bytes that identify a labelling: labels [N] and class names."""
    return np.ascontiguousarray(labels, dtype="<i8").tobytes(), "\n".join(class_names).encode()


class ImageDataset(ABC):
    """One split: `labels` int64 [N] in 0..C-1, `class_names` [C], `read(i)` -> uint8 [H, W, 3] RGB."""

    name: str
    split: str
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def read(self, i: int) -> np.ndarray:
        """Decoded RGB image i -> uint8 [H, W, 3]."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Stable hex digest of what the split holds (file list, sizes, labels, class names): the cache key."""

    def native_size(self) -> int | None:
        """The split's native image side in pixels (short side; a median where images differ), None if unknown:
        the cache never stores the split larger than this (data/geometry.py stored_size)."""
        return None

    def __repr__(self) -> str:
        counts = f"{len(self)} images, {len(self.class_names)} classes"
        return f"{type(self).__name__}({self.name!r}, {self.split!r}, {counts})"


def check_labelling(source: str, n_images: int, labels: np.ndarray, class_names: Sequence[str]) -> None:
    """Raise DataError unless there are images and labels cover exactly 0..C-1 for C = len(class_names)."""
    if n_images == 0:
        raise DataError(f"{source}: no images")
    if len(labels) != n_images:
        raise DataError(f"{source}: {n_images} images but {len(labels)} labels")
    present = np.unique(labels)
    if len(present) != len(class_names) or present[0] != 0 or present[-1] != len(class_names) - 1:
        raise DataError(f"{source}: labels do not cover classes 0..{len(class_names) - 1} exactly")


class FileImageDataset(ImageDataset):
    """A split read from image files under `root`; the fingerprint hashes relative paths, sizes, mtimes, labels."""

    def __init__(
        self,
        name: str,
        split: str,
        root: Path,
        paths: Sequence[str | Path],
        labels: np.ndarray,
        class_names: Sequence[str],
    ) -> None:
        check_labelling(f"{name} {split} split under {root}", len(paths), labels, class_names)
        self.name, self.split, self.root = name, split, Path(root)
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = [str(c) for c in class_names]
        self._fingerprint: str | None = None
        self._native_size: int | None = None

    def read(self, i: int) -> np.ndarray:
        """Decode file i -> uint8 [H, W, 3]."""
        return decode_image(self.paths[i])

    def native_size(self) -> int:
        """The median short side of NATIVE_SIZE_SAMPLE evenly spaced files (lower median), read from their headers."""
        if self._native_size is None:
            picks = np.unique(np.linspace(0, len(self.paths) - 1, min(len(self.paths), NATIVE_SIZE_SAMPLE)).round())
            sides = sorted(image_side(self.paths[int(i)]) for i in picks)
            self._native_size = sides[(len(sides) - 1) // 2]
        return self._native_size

    def fingerprint(self) -> str:
        """Hash of (path relative to root, size, mtime) per file plus labels and class names; stats each file once."""
        if self._fingerprint is None:
            listing = []
            for path in self.paths:
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    raise DataError(f"image file not found: {path}") from None
                listing.append(f"{_relative(path, self.root)}\t{stat.st_size}\t{stat.st_mtime_ns}")
            self._fingerprint = _digest(
                b"files", "\n".join(listing).encode(), *label_digest_parts(self.labels, self.class_names)
            )
        return self._fingerprint


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


class ArrayImageDataset(ImageDataset):
    """A split held in memory: images uint8 [N, H, W, 3]; fingerprint from `source_id` or, if None, the pixels."""

    def __init__(
        self,
        name: str,
        split: str,
        images: np.ndarray,
        labels: np.ndarray,
        class_names: Sequence[str],
        source_id: str | None = None,
    ) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise DataError(f"{name} {split}: images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
        check_labelling(f"{name} {split} split", len(images), labels, class_names)
        self.name, self.split, self.images = name, split, images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = [str(c) for c in class_names]
        self.source_id = source_id
        self._fingerprint: str | None = None

    def read(self, i: int) -> np.ndarray:
        """Image i -> uint8 [H, W, 3]."""
        return self.images[i]

    def native_size(self) -> int:
        """The short side of the stored array's images."""
        return int(min(self.images.shape[1:3]))

    def fingerprint(self) -> str:
        """Hash of the source id (or the pixel bytes), labels and class names."""
        if self._fingerprint is None:
            source = (
                self.source_id.encode()
                if self.source_id is not None
                else hashlib.sha256(np.ascontiguousarray(self.images).data).hexdigest().encode()
            )
            self._fingerprint = _digest(b"array", source, *label_digest_parts(self.labels, self.class_names))
        return self._fingerprint


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder` (by extension, hidden files skipped), sorted by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def require_dir(path: Path, what: str) -> Path:
    """Return `path` if it is a directory, else raise DataError naming it."""
    if not path.is_dir():
        raise DataError(f"{what} not found: {path}")
    return path


def class_folders(folder: Path) -> list[Path]:
    """The class folders directly in `folder` (hidden ones skipped), sorted by name; none raises DataError."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"no class folders in {folder}")
    return classes


def list_class_images(class_dirs: Sequence[Path]) -> list[list[Path]]:
    """The images of each class folder -> [C] lists; a folder with none raises DataError naming it."""
    images = [list_images(folder) for folder in class_dirs]
    for folder, listed in zip(class_dirs, images):
        if not listed:
            raise DataError(f"class folder has no images: {folder}")
    return images


def class_folder_dataset(
    name: str, split: str, root: Path, class_dirs: Sequence[Path], images: Sequence[Sequence[Path]] | None = None
) -> FileImageDataset:
    """A split whose classes are `class_dirs` (label = position in the list), with `images` [C] per class (listed
    from each folder when None)."""
    images = list_class_images(class_dirs) if images is None else images
    paths = [path for listed in images for path in listed]
    labels = np.repeat(np.arange(len(class_dirs), dtype=np.int64), [len(listed) for listed in images])
    return FileImageDataset(name, split, root, paths, labels, [d.name for d in class_dirs])


class LazyArrayDataset(ImageDataset):
    """An in-memory split loaded on first use by `loader() -> (images uint8 [N, H, W, 3], labels [N], class_names)`.

    The fingerprint comes from `source_id` alone (it must identify the source files), and the native side from
    `native_size` (what the source format promises; None = unknown), so finding an existing cache never loads the data.
    """

    def __init__(
        self,
        name: str,
        split: str,
        loader: Callable[[], tuple[np.ndarray, np.ndarray, list[str]]],
        source_id: str,
        native_size: int | None = None,
    ) -> None:
        self.name, self.split, self.source_id = name, split, source_id
        self._native_size = native_size
        self._loader = loader
        self._loaded: ArrayImageDataset | None = None
        self._lock = threading.Lock()

    def _data(self) -> ArrayImageDataset:
        with self._lock:
            if self._loaded is None:
                images, labels, class_names = self._loader()
                self._loaded = ArrayImageDataset(self.name, self.split, images, labels, class_names, self.source_id)
            return self._loaded

    @property
    def labels(self) -> np.ndarray:  # type: ignore[override]
        """Labels int64 [N] (loads the data)."""
        return self._data().labels

    @property
    def class_names(self) -> list[str]:  # type: ignore[override]
        """Class names [C] (loads the data)."""
        return self._data().class_names

    def read(self, i: int) -> np.ndarray:
        """Image i -> uint8 [H, W, 3] (loads the data)."""
        return self._data().images[i]

    def native_size(self) -> int | None:
        """The side the source format promises (given at construction); does not load the data."""
        return self._native_size

    def fingerprint(self) -> str:
        """Hash of the source id; does not load the data."""
        return _digest(b"lazy-array", self.source_id.encode())
