"""CUB-200-2011 with the CloserLook class split (classes sorted by folder name; index i: base if i % 2 == 0,
val if i % 4 == 1, novel if i % 4 == 3). `root` is CUB_200_2011 itself or the folder that contains it."""

from __future__ import annotations

from pathlib import Path

from data.errors import DataError
from data.readers.base import FileImageDataset, class_folder_dataset, require_dir

NAME = "cub"
SPLIT_OF_INDEX = {0: "base", 1: "val", 2: "base", 3: "novel"}  # keyed by class index % 4


def images_dir(root: Path) -> Path:
    """The CUB images/ folder under root (root/CUB_200_2011/images or root/images)."""
    root = require_dir(Path(root), "CUB root")
    for candidate in (root / "CUB_200_2011" / "images", root / "images"):
        if candidate.is_dir():
            return candidate
    raise DataError(f"no CUB_200_2011/images folder under {root}")


def build(root: Path, split: str, name: str = NAME) -> FileImageDataset:
    """CUB split ("base", "val" or "novel"); labels remapped to 0..C-1 in class-folder order."""
    if split not in ("base", "val", "novel"):
        raise DataError(f"unknown split {split!r} for {NAME}; choose one of base, val, novel")
    folder = images_dir(root)
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"no class folders in {folder}")
    chosen = [c for i, c in enumerate(classes) if SPLIT_OF_INDEX[i % 4] == split]
    if not chosen:
        raise DataError(f"{folder}: {len(classes)} class folders leave the {split} split empty")
    return class_folder_dataset(name, split, folder, chosen)
