"""Tiny datasets written by the tests in each supported layout (helpers and fixtures; conftest.py exposes them)."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def colour(label: int, i: int) -> tuple[int, int, int]:
    """A distinct RGB colour per (class, image) so reads can be checked by value."""
    return (20 * label + 10) % 256, (7 * i + 30) % 256, (50 + 3 * label + i) % 256


def write_image(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> Path:
    """Write a constant-colour image of (width, height) `size`; format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)
    return path


def write_class_folders(folder: Path, classes: list[str], per_class: int, suffix: str = ".png") -> None:
    """folder/<class>/img<i><suffix> for each class, colours from colour(class index, i)."""
    for label, name in enumerate(classes):
        for i in range(per_class):
            write_image(folder / name / f"img{i}{suffix}", colour(label, i))


@pytest.fixture
def imagefolder_root(tmp_path: Path) -> Path:
    """root/{base,val,novel}/<class>/ with 3, 2, 2 classes of 4 PNG images."""
    root = tmp_path / "folder"
    write_class_folders(root / "base", ["b0", "b1", "b2"], 4)
    write_class_folders(root / "val", ["v0", "v1"], 4)
    write_class_folders(root / "novel", ["n0", "n1"], 4)
    return root


CUB_CLASSES = [f"{i:03d}.Bird_{i}" for i in range(1, 9)]  # 8 classes: base 0,2,4,6; val 1,5; novel 3,7


@pytest.fixture
def cub_root(tmp_path: Path) -> Path:
    """tmp/cub/CUB_200_2011/images/<class>/ with 8 classes of 3 JPEG images."""
    root = tmp_path / "cub"
    write_class_folders(root / "CUB_200_2011" / "images", CUB_CLASSES, 3, suffix=".jpg")
    return root


MINI_CLASSES = {"base": ["n01", "n02", "n03"], "val": ["n04", "n05"], "novel": ["n06", "n07"]}
MINI_FILES = {"base": "train", "val": "val", "novel": "test"}


def mini_listing() -> dict[str, list[tuple[str, str]]]:
    """(file name, wnid) per split, 3 images per class, listed in a shuffled-looking order."""
    return {
        part: [(f"{wnid}{i:08d}.png", wnid) for i in (2, 0, 1) for wnid in reversed(names)]
        for part, names in MINI_CLASSES.items()
    }


def write_mini_images(root: Path) -> None:
    """root/images/<file> for every listed image; colour from (global class index, image number)."""
    order = [w for names in MINI_CLASSES.values() for w in names]
    for rows in mini_listing().values():
        for filename, wnid in rows:
            write_image(root / "images" / filename, colour(order.index(wnid), int(filename[-6:-4])))


@pytest.fixture
def mini_csv_root(tmp_path: Path) -> Path:
    """Ravi & Larochelle layout: train/val/test.csv + images/."""
    root = tmp_path / "mini"
    write_mini_images(root)
    for part, rows in mini_listing().items():
        with open(root / f"{MINI_FILES[part]}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["filename", "label"])
            writer.writerows(rows)
    return root


@pytest.fixture
def mini_json_root(tmp_path: Path) -> Path:
    """CloserLook layout: base/val/novel.json with absolute paths from another machine; images in images/."""
    root = tmp_path / "mini_json"
    write_mini_images(root)
    all_names = [w for names in MINI_CLASSES.values() for w in names]
    for part, rows in mini_listing().items():
        meta = {
            "label_names": all_names,
            "image_names": [f"/elsewhere/ILSVRC/train/{wnid}/{name}" for name, wnid in rows],
            "image_labels": [all_names.index(wnid) for _, wnid in rows],
        }
        (root / f"{part}.json").write_text(json.dumps(meta))
    return root


def mini_pickle_content(part: str) -> dict:
    """A cache-pickle dict: image_data uint8 [N, 6, 6, 3] (value = 10 * class + image), class_dict wnid -> indices."""
    names = MINI_CLASSES[part]
    images = np.zeros((3 * len(names), 6, 6, 3), dtype=np.uint8)
    class_dict = {}
    for label, wnid in enumerate(reversed(names)):  # indices interleaved, dict not in sorted order
        class_dict[wnid] = [label + len(names) * k for k in range(3)]
        for k, index in enumerate(class_dict[wnid]):
            images[index] = 10 * names.index(wnid) + k
    return {"image_data": images, "class_dict": class_dict}


@pytest.fixture
def mini_pickle_root(tmp_path: Path) -> Path:
    """mini-imagenet-cache-{train,val,test}.pkl."""
    root = tmp_path / "mini_pkl"
    root.mkdir()
    for part in MINI_CLASSES:
        with open(root / f"mini-imagenet-cache-{MINI_FILES[part]}.pkl", "wb") as handle:
            pickle.dump(mini_pickle_content(part), handle, protocol=4)
    return root
