"""mini-ImageNet in any of its three common layouts, detected in `root`.

Layouts, tried in this order (the first whose files are present wins):
- Ravi & Larochelle CSVs: root/{train,val,test}.csv (columns filename,label) with images in root/images/
  (full-size images: preferred, so larger input sizes are not upsampled from 84 px).
- CloserLook JSON lists: root/{base,val,novel}.json (label_names, image_names, image_labels). Image names are used
  as written if they exist, else looked up under root (relative path, images/<file>, <class folder>/<file>, <file>).
- Pickles: root/mini-imagenet-cache-{train,val,test}.pkl (image_data uint8 [N, 84, 84, 3], class_dict wnid ->
  indices), read by data.safe_pickle (no code runs), loaded only when a cache has to be built.
Splits: base = train, val = val, novel = test, all = the three concatenated. Within a split classes are sorted by
name; in `all` the base classes come first, then val, then novel (CloserLook's global label order).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from data.errors import DataError
from data.readers.base import FileImageDataset, ImageDataset, LazyArrayDataset, remap_labels, require_dir
from data.safe_pickle import load_pickle

NAME = "mini-imagenet"
PARTS = ("base", "val", "novel")
CSV_FILES = {"base": "train.csv", "val": "val.csv", "novel": "test.csv"}
JSON_FILES = {"base": "base.json", "val": "val.json", "novel": "novel.json"}
PICKLE_FILES = {part: f"mini-imagenet-cache-{CSV_FILES[part][:-4]}.pkl" for part in PARTS}
PICKLE_IMAGE_SIZE = 84  # the cache pickles hold 84x84 images: the native side the image cache is capped at

Listing = tuple[list[Path], list[str]]  # image paths [N], class name per image [N]


def build(root: Path, split: str, name: str = NAME) -> ImageDataset:
    """mini-ImageNet split ("base", "val", "novel" or "all") from whichever layout `root` holds."""
    root = require_dir(Path(root), "mini-ImageNet root")
    parts = _parts(split)
    if any((root / f).is_file() for f in CSV_FILES.values()):
        return _file_dataset(name, split, root, [_read_csv(root, part) for part in parts])
    if any((root / f).is_file() for f in JSON_FILES.values()):
        return _file_dataset(name, split, root, [_read_json(root, part) for part in parts])
    if any((root / f).is_file() for f in PICKLE_FILES.values()):
        return _pickle_dataset(name, split, root, parts)
    raise DataError(
        f"no mini-ImageNet layout in {root}: expected train.csv/val.csv/test.csv with images/, "
        "base.json/val.json/novel.json, or mini-imagenet-cache-{train,val,test}.pkl"
    )


def _parts(split: str) -> tuple[str, ...]:
    if split == "all":
        return PARTS
    if split not in PARTS:
        raise DataError(f"unknown split {split!r} for {NAME}; choose one of base, val, novel, all")
    return (split,)


def _file_dataset(name: str, split: str, root: Path, listings: list[Listing]) -> FileImageDataset:
    """Concatenate per-part listings; classes sorted within each part, parts in base/val/novel order."""
    paths: list[Path] = []
    labels: list[np.ndarray] = []
    class_names: list[str] = []
    for part_paths, part_classes in listings:
        part_labels, part_names = remap_labels(part_classes)
        if set(part_names) & set(class_names):
            raise DataError(f"{root}: class {sorted(set(part_names) & set(class_names))[0]} is in two splits")
        paths += part_paths
        labels.append(part_labels + len(class_names))
        class_names += [str(c) for c in part_names]
    return FileImageDataset(name, split, root, paths, np.concatenate(labels), class_names)


def _read_csv(root: Path, part: str) -> Listing:
    path = root / CSV_FILES[part]
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise DataError(f"split file not found: {path}") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable CSV ({error})") from None
    if not rows or not {"filename", "label"} <= set(rows[0]):
        raise DataError(f"{path}: expected a header 'filename,label' and at least one row")
    images = root / "images"
    return [images / row["filename"] for row in rows], [row["label"] for row in rows]


def _read_json(root: Path, part: str) -> Listing:
    path = root / JSON_FILES[part]
    try:
        with open(path) as handle:
            meta = json.load(handle)
        names, image_names, image_labels = meta["label_names"], meta["image_names"], meta["image_labels"]
        classes = [str(names[int(label)]) for label in image_labels]
    except FileNotFoundError:
        raise DataError(f"split file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    except (KeyError, TypeError, IndexError, ValueError) as error:
        raise DataError(
            f"{path}: expected label_names, image_names, image_labels ({type(error).__name__}: {error})"
        ) from None
    if len(image_names) != len(classes):
        raise DataError(f"{path}: {len(image_names)} image_names but {len(classes)} image_labels")
    return [_resolve(root, str(image), path) for image in image_names], classes


def _resolve(root: Path, listed: str, listing: Path) -> Path:
    """Find a JSON-listed image: as written, else under root (relative, images/<file>, <folder>/<file>, <file>)."""
    written = Path(listed)
    candidates = [written] if written.is_absolute() else [root / written]
    candidates += [root / "images" / written.name, root / written.parent.name / written.name, root / written.name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"{listing}: listed image not found: {listed} (also looked under {root})")


def _pickle_dataset(name: str, split: str, root: Path, parts: tuple[str, ...]) -> LazyArrayDataset:
    files = [root / PICKLE_FILES[part] for part in parts]
    identity = []
    for path in files:
        if not path.is_file():
            raise DataError(f"split file not found: {path}")
        stat = path.stat()
        identity.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    source_id = f"{NAME}-pickle|{split}|" + ";".join(identity)
    return LazyArrayDataset(name, split, _pickle_loader(files), source_id, native_size=PICKLE_IMAGE_SIZE)


def _pickle_loader(files: list[Path]) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]:
    def load() -> tuple[np.ndarray, np.ndarray, list[str]]:
        images, labels, class_names = [], [], []
        for path in files:
            part_images, part_labels, part_names = _read_pickle(path)
            images.append(part_images)
            labels.append(part_labels + len(class_names))
            class_names += part_names
        return np.concatenate(images), np.concatenate(labels), class_names

    return load


def _read_pickle(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One cache pickle -> (images uint8 [N, H, W, 3], labels [N] by sorted wnid, sorted wnids)."""
    content = load_pickle(path)
    if not isinstance(content, dict) or "image_data" not in content or "class_dict" not in content:
        raise DataError(f"{path}: expected a dict with keys image_data and class_dict")
    images, class_dict = content["image_data"], content["class_dict"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise DataError(f"{path}: image_data must be a uint8 array [N, H, W, 3]")
    if not isinstance(class_dict, dict) or not class_dict:
        raise DataError(f"{path}: class_dict must be a non-empty dict wnid -> image indices")
    wnids = sorted(class_dict, key=str)
    labels = np.full(len(images), -1, dtype=np.int64)
    for label, wnid in enumerate(wnids):
        indices = np.asarray(class_dict[wnid], dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(images)):
            raise DataError(f"{path}: class {wnid} lists an image index outside 0..{len(images) - 1}")
        if (labels[indices] != -1).any():
            raise DataError(f"{path}: class {wnid} lists an image that another class lists too")
        labels[indices] = label
    if (labels == -1).any():
        raise DataError(f"{path}: {int((labels == -1).sum())} images are in no class of class_dict")
    return images, labels, [str(wnid) for wnid in wnids]
