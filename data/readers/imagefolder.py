"""A generic dataset of split folders of class folders: root/<split>/<class>/<image>; classes sorted by folder name.

Split folders are named base/val/novel, or train/val/test (how tiered-ImageNet and CIFAR-FS image folders come;
validation/ is taken for val/ too). The requested split must be there; every split folder that is there is listed and
checked (class folders holding images) whichever split is opened, so a broken val/ fails before base/ is decoded.
"""

from __future__ import annotations

from pathlib import Path

from data.errors import DataError
from data.readers.base import FileImageDataset, class_folder_dataset, class_folders, list_class_images, require_dir
from data.readers.layouts import archive_note

NAME = "imagefolder"
SPLIT_FOLDERS = {"base": ("base", "train"), "val": ("val", "validation"), "novel": ("novel", "test")}
EXPECTED = "base/, val/, novel/ (or train/, val/, test/)"


def split_folders(root: Path) -> dict[str, Path]:
    """The split folders present under root, by split; two names for one split raise DataError."""
    found: dict[str, Path] = {}
    for split, names in SPLIT_FOLDERS.items():
        present = [root / n for n in names if (root / n).is_dir()]
        if len(present) > 1:
            raise DataError(f"{root}: both {present[0].name}/ and {present[1].name}/ would be the {split} split")
        if present:
            found[split] = present[0]
    return found


def _found(root: Path) -> str:
    folders = sorted(p.name + "/" for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    shown = ", ".join(folders[:6]) + (f", … ({len(folders)} folders)" if len(folders) > 6 else "")
    return f"found {shown}" if folders else "found no folders"


def build(root: Path, split: str, name: str = NAME) -> FileImageDataset:
    """Split folder root/<split>/ -> dataset; labels 0..C-1 in sorted class-folder order."""
    if split not in SPLIT_FOLDERS:
        raise DataError(f"unknown split {split!r} for {NAME}; choose one of base, val, novel")
    root = require_dir(Path(root), "dataset root")
    folders = split_folders(root)
    if split not in folders:
        raise DataError(
            f"{split} split folder not found in {root}: expected {EXPECTED}; {_found(root)}{archive_note(root)}"
        )
    listed = {part: class_folders(folder) for part, folder in folders.items()}
    images = {part: list_class_images(classes) for part, classes in listed.items()}  # every split checked
    return class_folder_dataset(name, split, root, listed[split], images[split])
