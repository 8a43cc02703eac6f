"""mini-ImageNet in any of the layouts its users have, detected in `root` by what each layout needs.

Layouts, tried in this order (the first whose files are all present wins; when none fits, the error names each
layout and what it lacked):
1. Ravi & Larochelle CSVs + images/: root/{train,val,test}.csv (header `filename,label`) and root/images/<filename>.
2. CloserLook JSON lists: root/{base,val,novel}.json (label_names, image_names, image_labels) as its
   write_miniImagenet_filelist.py writes them. Listed paths are used as written when they exist, else re-rooted: each
   trailing part of the listed path is tried under root, longest first (so /home/alice/…/ILSVRC2015/Data/CLS-LOC/train/
   <wnid>/<file> is found as root/ILSVRC2015/…), then under root's ILSVRC train folder, and last root/images/<file>.
3. Ravi & Larochelle CSVs over an ILSVRC train tree: the CSVs and root/ILSVRC2015/Data/CLS-LOC/train (or
   ILSVRC/Data/CLS-LOC/train) with no JSON lists; row <wnid><8 digits>.jpg is image number k (the last 5 digits) of
   <wnid>/ in the tree sorted by the number after `_`, the mapping CloserLook's write_miniImagenet_filelist.py uses.
4. Pickle caches: root/mini-imagenet-cache-{train,val,test}.pkl (renmengye) or -validation.pkl (learn2learn),
   image_data uint8 [N, 84, 84, 3] and class_dict wnid -> indices, read by data.safe_pickle (no code runs) and only
   when a cache has to be built.
Every split's files (and every listed image) are checked whichever split is opened, before any image is decoded.
Splits: base = train, val = val, novel = test, all = the three concatenated. Within a split classes are sorted by
name; in `all` the base classes come first, then val, then novel (CloserLook's global label order).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from data.errors import DataError
from data.readers.base import FileImageDataset, ImageDataset, LazyArrayDataset, remap_labels, require_dir
from data.readers.layouts import FileIndex, Layout, Need, check_listed, detect
from data.safe_pickle import load_pickle

NAME = "mini-imagenet"
PARTS = ("base", "val", "novel")
CSV_FILES = {"base": "train.csv", "val": "val.csv", "novel": "test.csv"}
JSON_FILES = {"base": "base.json", "val": "val.json", "novel": "novel.json"}
PICKLE_FILES = {
    "base": ("mini-imagenet-cache-train.pkl",),
    "val": ("mini-imagenet-cache-val.pkl", "mini-imagenet-cache-validation.pkl"),
    "novel": ("mini-imagenet-cache-test.pkl",),
}
ILSVRC_TRAIN = ("ILSVRC2015/Data/CLS-LOC/train", "ILSVRC/Data/CLS-LOC/train")
CSV_HEADER = ("filename", "label")
PICKLE_IMAGE_SIZE = 84  # the cache pickles hold 84x84 images: the native side the image cache is capped at

_CSV_NEEDS = {part: Need((CSV_FILES[part],)) for part in PARTS}
CSV_IMAGES = Layout("Ravi & Larochelle CSVs + images/", {**_CSV_NEEDS, "images": Need(("images",), "dir")})
CLOSERLOOK_JSON = Layout("CloserLook JSON lists", {part: Need((JSON_FILES[part],)) for part in PARTS})
CSV_ILSVRC = Layout("CSVs over an ILSVRC train tree", {**_CSV_NEEDS, "tree": Need(ILSVRC_TRAIN, "dir")})
PICKLES = Layout("pickle caches", {part: Need(PICKLE_FILES[part]) for part in PARTS})
LAYOUTS = (CSV_IMAGES, CLOSERLOOK_JSON, CSV_ILSVRC, PICKLES)

Listing = tuple[list[str], list[str]]  # image paths [N] (strings: 60,000 Path objects cost seconds), class per image


def build(root: Path, split: str, name: str = NAME) -> ImageDataset:
    """mini-ImageNet split ("base", "val", "novel" or "all") from whichever layout `root` holds."""
    parts = _parts(split)
    root = require_dir(Path(root), "mini-ImageNet root")
    layout, found = detect(root, LAYOUTS, "mini-ImageNet")
    if layout is PICKLES:
        return _pickle_dataset(name, split, [found[part] for part in parts])
    read = _split_reader(layout, root, found, FileIndex())
    listings = {part: read(part) for part in PARTS}  # every split checked, whichever is opened
    _check_disjoint(root, listings)
    return _file_dataset(name, split, root, [listings[part] for part in parts])


def _split_reader(layout: Layout, root: Path, found: dict[str, Path], index: FileIndex) -> Callable[[str], Listing]:
    """part -> that split's listing in `layout`, every listed image checked to exist (nothing decoded)."""
    if layout is CSV_IMAGES:
        return lambda part: _csv_over_folder(found[part], found["images"], index)
    if layout is CLOSERLOOK_JSON:
        return lambda part: _read_json(root, found[part], index)
    return lambda part: _csv_over_ilsvrc(found[part], found["tree"], index)


def _parts(split: str) -> tuple[str, ...]:
    if split == "all":
        return PARTS
    if split not in PARTS:
        raise DataError(f"unknown split {split!r} for {NAME}; choose one of base, val, novel, all")
    return (split,)


def _check_disjoint(root: Path, listings: dict[str, Listing]) -> None:
    seen: dict[str, str] = {}
    for part, (_, classes) in listings.items():
        for wnid in sorted(set(classes)):
            if wnid in seen:
                raise DataError(f"{root}: class {wnid} is in two splits ({seen[wnid]} and {part})")
            seen[wnid] = part


def _file_dataset(name: str, split: str, root: Path, listings: list[Listing]) -> FileImageDataset:
    """Concatenate per-part listings; classes sorted within each part, parts in base/val/novel order."""
    paths: list[str] = []
    labels: list[np.ndarray] = []
    class_names: list[str] = []
    for part_paths, part_classes in listings:
        part_labels, part_names = remap_labels(part_classes)
        paths += part_paths
        labels.append(part_labels + len(class_names))
        class_names += [str(c) for c in part_names]
    return FileImageDataset(name, split, root, paths, np.concatenate(labels), class_names)


def read_csv(path: Path) -> list[tuple[str, str]]:
    """A Ravi & Larochelle split file -> [(filename, label)]; a UTF-8 byte-order mark and CRLF line ends are fine."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = tuple(field.strip() for field in next(reader, ()))
            rows = [row for row in reader if row]
    except (csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable CSV ({error})") from None
    if header[:2] != CSV_HEADER:
        raise DataError(f"{path}: expected a header 'filename,label', found {','.join(header)!r}")
    if not rows:
        raise DataError(f"{path}: no rows after the header")
    if any(len(row) < 2 for row in rows):
        raise DataError(f"{path}: row {next(i for i, r in enumerate(rows, 2) if len(r) < 2)} has no label")
    return [(row[0].strip(), row[1].strip()) for row in rows]


def _csv_over_folder(path: Path, images: Path, index: FileIndex) -> Listing:
    rows = read_csv(path)
    paths = [os.path.join(images, filename) for filename, _ in rows]
    check_listed(path, paths, index)
    return paths, [label for _, label in rows]


_ILSVRC_NUMBER = re.compile(r"_(\d+)\.")


def _csv_over_ilsvrc(path: Path, tree: Path, index: FileIndex) -> Listing:
    """CSV rows mapped to ILSVRC train files: row <wnid><digits>.jpg -> file number int(digits[-5:]) of <wnid>/, the
    class folder's images ordered by the number after `_` (n01532829_1005.JPEG -> 1005), counted from 1."""
    ordered: dict[str, list[str]] = {}
    paths, labels = [], []
    for filename, wnid in read_csv(path):
        if wnid not in ordered:
            names = [n for n in index.names(tree / wnid) if _ILSVRC_NUMBER.search(n) and not n.startswith(".")]
            if not names:
                raise DataError(f"{path}: class {wnid} has no images in {tree / wnid}")
            ordered[wnid] = sorted(names, key=lambda n: int(_ILSVRC_NUMBER.search(n).group(1)))  # type: ignore[union-attr]
        stem = filename.rsplit(".", 1)[0]
        if not stem[-5:].isdigit() or not 1 <= int(stem[-5:]) <= len(ordered[wnid]):
            raise DataError(f"{path}: {filename} names no image of the {len(ordered[wnid])} in {tree / wnid}")
        paths.append(os.path.join(tree, wnid, ordered[wnid][int(stem[-5:]) - 1]))
        labels.append(wnid)
    return paths, labels


def _read_json(root: Path, path: Path, index: FileIndex) -> Listing:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            meta = json.load(handle)
        names, image_names, image_labels = meta["label_names"], meta["image_names"], meta["image_labels"]
        classes = [str(names[int(label)]) for label in image_labels]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    except (KeyError, TypeError, IndexError, ValueError) as error:
        raise DataError(
            f"{path}: expected label_names, image_names, image_labels ({type(error).__name__}: {error})"
        ) from None
    if len(image_names) != len(classes):
        raise DataError(f"{path}: {len(image_names)} image_names but {len(classes)} image_labels")
    reroot = _Reroot(root, index)
    paths = [reroot(str(image)) for image in image_names]
    missing = [i for i, p in enumerate(paths) if p is None]
    if missing:
        more = f"; {len(missing) - 1} more of its images are missing" if len(missing) > 1 else ""
        raise DataError(
            f"image file not found: {image_names[missing[0]]} (listed in {path}; also tried each trailing part of it "
            f"under {root}{more})"
        )
    return paths, classes  # type: ignore[return-value]


class _Reroot:
    """Finds a listed image: as written, else each trailing part of the path (longest first) under root and then
    under each ILSVRC train folder in root, else root/images/<file>. The last hit's (folder, parts dropped) is tried
    first, so a list of 38,400 images costs about one lookup each."""

    def __init__(self, root: Path, index: FileIndex) -> None:
        self.index = index
        self.bases = [str(root), *(str(root / tree) for tree in ILSVRC_TRAIN if (root / tree).is_dir())]
        self.images = str(root / "images")
        self.last: tuple[str, int] | None = None

    def __call__(self, listed: str) -> str | None:
        if os.path.isabs(listed) and self.index.has(listed):
            return listed
        parts = [p for p in listed.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts:
            return None
        if _DRIVE.fullmatch(parts[0]):  # C: of a list written on Windows
            parts = parts[1:]
        if self.last is not None and self.last[1] < len(parts):
            candidate = os.path.join(self.last[0], *parts[self.last[1] :])
            if self.index.has(candidate):
                return candidate
        for base in self.bases:
            for drop in range(len(parts)):
                candidate = os.path.join(base, *parts[drop:])
                if self.index.has(candidate):
                    self.last = (base, drop)
                    return candidate
        fallback = os.path.join(self.images, parts[-1])
        return fallback if self.index.has(fallback) else None


_DRIVE = re.compile(r"[A-Za-z]:")


def _pickle_dataset(name: str, split: str, files: list[Path]) -> LazyArrayDataset:
    identity = []
    for path in files:
        stat = path.stat()
        identity.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    source_id = f"{NAME}-pickle|{split}|" + ";".join(identity)
    return LazyArrayDataset(name, split, _pickle_loader(files), source_id, native_size=PICKLE_IMAGE_SIZE)


def _pickle_loader(files: list[Path]) -> Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]:
    def load() -> tuple[np.ndarray, np.ndarray, list[str]]:
        images: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        class_names: list[str] = []
        for path in files:
            part_images, part_labels, part_names = _read_pickle(path)
            images.append(part_images)
            labels.append(part_labels + len(class_names))
            class_names += part_names
        return np.concatenate(images), np.concatenate(labels), class_names

    return load


def describe(value: object) -> str:
    """What a pickled value is, for an error: 'a list of 3 items (first: an int)', 'a float32 array (2, 84, 84, 3)'."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        first = f" (first: {describe(value[0])})" if value else ""
        return f"a {type(value).__name__} of {len(value)} items{first}"
    if isinstance(value, dict):
        return f"a dict with keys {', '.join(sorted(map(str, value))[:5]) or 'none'}"
    article = "an" if type(value).__name__[0] in "aeiou" else "a"
    return f"{article} {type(value).__name__}"


def _read_pickle(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One cache pickle -> (images uint8 [N, H, W, 3], labels [N] by sorted wnid, sorted wnids)."""
    content = load_pickle(path)
    if not isinstance(content, dict) or "image_data" not in content or "class_dict" not in content:
        raise DataError(f"{path}: expected a dict with keys image_data and class_dict, found {describe(content)}")
    images, class_dict = content["image_data"], content["class_dict"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise DataError(f"{path}: image_data must be a uint8 array [N, H, W, 3], found {describe(images)}")
    if not isinstance(class_dict, dict) or not class_dict:
        raise DataError(
            f"{path}: class_dict must be a non-empty dict wnid -> image indices, found {describe(class_dict)}"
        )
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
