"""A generic dataset laid out as root/{base,val,novel}/<class>/<image>; classes sorted by folder name."""

from __future__ import annotations

from pathlib import Path

from data.errors import DataError
from data.readers.base import FileImageDataset, class_folder_dataset, require_dir

NAME = "imagefolder"


def build(root: Path, split: str, name: str = NAME) -> FileImageDataset:
    """Split folder root/<split>/ -> dataset; labels 0..C-1 in sorted class-folder order."""
    if split not in ("base", "val", "novel"):
        raise DataError(f"unknown split {split!r} for {NAME}; choose one of base, val, novel")
    root = require_dir(Path(root), "dataset root")
    folder = require_dir(root / split, f"{split} split folder")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"no class folders in {folder}")
    return class_folder_dataset(name, split, root, classes)
