"""CUB-200-2011 with the CloserLook class split (classes sorted by folder name; index i: base if i % 2 == 0,
val if i % 4 == 1, novel if i % 4 == 3).

`root` is the folder CUB_200_2011.tgz was extracted in (it holds CUB_200_2011/images/, as CloserLook's
filelists/CUB/ does), or CUB_200_2011 itself. The class folders of every split are listed, and must hold images,
whichever split is opened.
"""

from __future__ import annotations

from pathlib import Path

from data.errors import DataError
from data.readers.base import FileImageDataset, class_folder_dataset, class_folders, list_class_images, require_dir
from data.readers.layouts import Layout, Need, detect

NAME = "cub"
SPLITS = ("base", "val", "novel")
SPLIT_OF_INDEX = {0: "base", 1: "val", 2: "base", 3: "novel"}  # keyed by class index % 4
LAYOUTS = (
    Layout("extracted CUB_200_2011.tgz", {"images": Need(("CUB_200_2011/images",), "dir")}),
    Layout("CUB_200_2011 itself", {"images": Need(("images",), "dir")}),
)


def images_dir(root: Path) -> Path:
    """The CUB images/ folder under root (root/CUB_200_2011/images or root/images)."""
    root = require_dir(Path(root), "CUB root")
    return detect(root, LAYOUTS, "CUB-200-2011")[1]["images"]


def build(root: Path, split: str, name: str = NAME) -> FileImageDataset:
    """CUB split ("base", "val" or "novel"); labels remapped to 0..C-1 in class-folder order."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {NAME}; choose one of base, val, novel")
    folder = images_dir(root)
    classes = class_folders(folder)
    images = list_class_images(classes)  # every split's classes, whichever split is opened
    for part in SPLITS:
        if not any(SPLIT_OF_INDEX[i % 4] == part for i in range(len(classes))):
            raise DataError(f"{folder}: {len(classes)} class folders leave the {part} split empty")
    chosen = [i for i in range(len(classes)) if SPLIT_OF_INDEX[i % 4] == split]
    return class_folder_dataset(name, split, folder, [classes[i] for i in chosen], [images[i] for i in chosen])
