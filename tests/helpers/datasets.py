"""Tiny datasets written by the tests as the field's own tooling writes them (helpers and fixtures; conftest.py
exposes the fixtures): Ravi & Larochelle's CSVs byte for byte, CloserLook's filelists/ folders and JSON lists with
another machine's absolute paths, renmengye's and learn2learn's cache pickles, the CUB_200_2011.tgz archive."""

from __future__ import annotations

import io
import pickle
import random
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from data.section import DatasetConfig


def colour(label: int, i: int) -> tuple[int, int, int]:
    """A distinct RGB colour per (class, image) so reads can be checked by value."""
    return (20 * label + 10) % 256, (7 * i + 30) % 256, (50 + 3 * label + i) % 256


def write_image(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> Path:
    """Write a constant-colour image of (width, height) `size`; format from the suffix (.JPEG is JPEG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None)
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


# ---- CUB-200-2011 ----

CUB_CLASSES = [f"{i:03d}.Bird_{i}" for i in range(1, 9)]  # 8 classes: base 0,2,4,6; val 1,5; novel 3,7


@pytest.fixture
def cub_root(tmp_path: Path) -> Path:
    """tmp/cub/CUB_200_2011/images/<class>/ with 8 classes of 3 JPEG images."""
    root = tmp_path / "cub"
    write_class_folders(root / "CUB_200_2011" / "images", CUB_CLASSES, 3, suffix=".jpg")
    return root


def _jpeg_bytes(rgb: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 10), rgb).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_cub_archive(path: Path) -> Path:
    """CUB_200_2011.tgz as Caltech ships it: attributes.txt beside CUB_200_2011/ (images/<class>/<Name>_<id>.jpg,
    images.txt, classes.txt, image_class_labels.txt, train_test_split.txt, README), 8 classes of 3 images."""
    members: dict[str, bytes] = {"attributes.txt": b"1 has_bill_shape::curved_(up_or_down)\n"}
    image_lines, class_lines, label_lines, split_lines = [], [], [], []
    image_id = 0
    for label, folder in enumerate(CUB_CLASSES):
        class_lines.append(f"{label + 1} {folder}")
        for i in range(3):
            image_id += 1
            name = f"{folder}/{folder.split('.', 1)[1]}_{i + 1:04d}_{796000 + image_id}.jpg"
            members[f"CUB_200_2011/images/{name}"] = _jpeg_bytes(colour(label, i))
            image_lines.append(f"{image_id} {name}")
            label_lines.append(f"{image_id} {label + 1}")
            split_lines.append(f"{image_id} {i % 2}")
    for name, lines in (
        ("images.txt", image_lines),
        ("classes.txt", class_lines),
        ("image_class_labels.txt", label_lines),
        ("train_test_split.txt", split_lines),
    ):
        members[f"CUB_200_2011/{name}"] = ("\n".join(lines) + "\n").encode()
    members["CUB_200_2011/README"] = b"The Caltech-UCSD Birds-200-2011 Dataset\n"
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


# ---- mini-ImageNet: the small fixtures (short wnids) ----

MINI_CLASSES = {"base": ["n01", "n02", "n03"], "val": ["n04", "n05"], "novel": ["n06", "n07"]}
MINI_FILES = {"base": "train", "val": "val", "novel": "test"}


def mini_listing() -> dict[str, list[tuple[str, str]]]:
    """(file name, wnid) per split, 3 images per class, sorted by file name as Ravi & Larochelle's CSVs are."""
    return {
        part: [(f"{wnid}{i:08d}.png", wnid) for wnid in names for i in range(3)] for part, names in MINI_CLASSES.items()
    }


def write_ravi_csv(path: Path, rows: list[tuple[str, str]], bom: bool = False, line_end: str = "\n") -> Path:
    """A split file byte for byte as twitter/meta-learning-lstm's data/miniImagenet/*.csv: 'filename,label' then
    '<filename>,<wnid>' rows, LF line ends, no quoting; `bom` and `line_end` give an Excel "CSV UTF-8" save."""
    text = line_end.join(["filename,label", *(f"{name},{wnid}" for name, wnid in rows)]) + line_end
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


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
        write_ravi_csv(root / f"{MINI_FILES[part]}.csv", rows)
    return root


@pytest.fixture
def mini_json_root(tmp_path: Path) -> Path:
    """CloserLook-style JSON lists with absolute paths from another machine; the images in images/."""
    root = tmp_path / "mini_json"
    write_mini_images(root)
    all_names = [w for names in MINI_CLASSES.values() for w in names]
    for part, rows in mini_listing().items():
        write_closerlook_json(
            root / f"{part}.json",
            all_names,
            [f"/elsewhere/ILSVRC/train/{wnid}/{name}" for name, wnid in rows],
            [all_names.index(wnid) for _, wnid in rows],
        )
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


def write_pickles(root: Path, names: dict[str, str], protocol: int = 4) -> Path:
    """root/mini-imagenet-cache-<names[part]>.pkl for each part."""
    root.mkdir(parents=True, exist_ok=True)
    for part in MINI_CLASSES:
        with open(root / f"mini-imagenet-cache-{names[part]}.pkl", "wb") as handle:
            pickle.dump(mini_pickle_content(part), handle, protocol=protocol)
    return root


@pytest.fixture
def mini_pickle_root(tmp_path: Path) -> Path:
    """renmengye's names: mini-imagenet-cache-{train,val,test}.pkl."""
    return write_pickles(tmp_path / "mini_pkl", MINI_FILES)


@pytest.fixture
def learn2learn_root(tmp_path: Path) -> Path:
    """What learn2learn's MiniImagenet(root, mode) downloads and leaves: mini-imagenet-cache-{train,validation,test}.pkl
    (protocol 2, Python 3) and its own mini-imagenet-bookkeeping-<mode>.pkl beside them."""
    root = write_pickles(tmp_path / "l2l", {"base": "train", "val": "validation", "novel": "test"}, protocol=2)
    for mode in ("train", "validation", "test"):
        (root / f"mini-imagenet-bookkeeping-{mode}.pkl").write_bytes(pickle.dumps({"labels_to_indices": {0: [0]}}))
    return root


# ---- mini-ImageNet as CloserLook's download_miniImagenet.sh leaves it ----

# Real wnids of Ravi & Larochelle's split files (their first classes), 3 images listed per class.
WNIDS = {
    "base": ["n01532829", "n01558993", "n01704323"],
    "val": ["n01855672", "n02091244"],
    "novel": ["n01930112", "n01981276"],
}
LISTED = (1, 2, 4)  # Ravi image numbers listed per class: rows <wnid>00000001.jpg, …02.jpg, …04.jpg
ILSVRC_NUMBERS = (1005, 9, 100, 10)  # <wnid>_<n>.JPEG in the tree; by number: 9, 10, 100, 1005 (not by name)
FOREIGN = "/home/alice/CloserLookFewShot/filelists/miniImagenet"  # where write_miniImagenet_filelist.py ran
ILSVRC_TRAIN = "ILSVRC2015/Data/CLS-LOC/train"


def ravi_rows(part: str) -> list[tuple[str, str]]:
    """(filename, wnid) rows of a split file, in the file's order (sorted by file name)."""
    return [(f"{wnid}{k:08d}.jpg", wnid) for wnid in WNIDS[part] for k in LISTED]


def global_index(wnid: str) -> int:
    """A wnid's position in base + val + novel order (its colour's class index)."""
    return [w for part in WNIDS.values() for w in part].index(wnid)


def write_ilsvrc_tree(train: Path) -> None:
    """train/<wnid>/<wnid>_<n>.JPEG for every class; the image of number rank r (0-based) has colour(class, r)."""
    for wnid in (w for part in WNIDS.values() for w in part):
        for rank, number in enumerate(sorted(ILSVRC_NUMBERS)):
            write_image(train / wnid / f"{wnid}_{number}.JPEG", colour(global_index(wnid), rank))


def write_closerlook_json(path: Path, label_names: list[str], image_names: list[str], image_labels: list[int]) -> Path:
    """A list as CloserLook's write_*_filelist.py writes it: one line, no spaces but after each key's colon."""
    quoted = lambda items: ",".join(f'"{item}"' for item in items)  # noqa: E731
    text = (
        f'{{"label_names": [{quoted(label_names)}],"image_names": [{quoted(image_names)}],'
        f'"image_labels": [{",".join(str(label) for label in image_labels)}]}}'
    )
    path.write_text(text)
    return path


def closerlook_lists(folder: Path, seed: int = 0) -> tuple[list[str], dict[str, tuple[list[str], list[int]]]]:
    """What write_miniImagenet_filelist.py computes when run in `folder` on another machine (FOREIGN) -> (label_names,
    split -> (image paths, global labels)): classes numbered in order of first appearance over base, val, novel; each
    class's images shuffled; row number k is the k-th file of the ILSVRC class folder sorted by the number after `_`."""
    rng = random.Random(seed)
    label_names: list[str] = []
    lists: dict[str, tuple[list[str], list[int]]] = {}
    for part, csv_name in (("base", "train.csv"), ("val", "val.csv"), ("novel", "test.csv")):
        per_class: dict[str, list[str]] = {}
        for line in (folder / csv_name).read_text().splitlines()[1:]:
            filename, wnid = line.split(",")
            if wnid not in per_class:
                label_names.append(wnid)
                per_class[wnid] = []
                names = sorted(
                    (folder / ILSVRC_TRAIN / wnid).iterdir(), key=lambda p: int(re.split(r"[_.]", p.name)[1])
                )
            number = int(filename.split(".")[0][-5:])
            per_class[wnid].append(f"{FOREIGN}/{ILSVRC_TRAIN}/{wnid}/{names[number - 1].name}")
        paths: list[str] = []
        labels: list[int] = []
        for wnid, files in per_class.items():
            rng.shuffle(files)
            paths += files
            labels += [label_names.index(wnid)] * len(files)
        lists[part] = (paths, labels)
    return label_names, lists


@pytest.fixture
def closerlook_mini_root(tmp_path: Path) -> Path:
    """filelists/miniImagenet/ after CloserLook's download_miniImagenet.sh: the Ravi & Larochelle CSVs, the (now
    extracted) ILSVRC2015_CLS-LOC.tar.gz and its ILSVRC2015/ tree, and base/val/novel.json with the paths of the
    machine the script ran on. No images/ folder."""
    root = tmp_path / "filelists" / "miniImagenet"
    for part, name in (("base", "train.csv"), ("val", "val.csv"), ("novel", "test.csv")):
        write_ravi_csv(root / name, ravi_rows(part))
    write_ilsvrc_tree(root / ILSVRC_TRAIN)
    (root / "ILSVRC2015_CLS-LOC.tar.gz").write_bytes(b"\x1f\x8b" + b"\0" * 30)  # left behind by the script
    label_names, lists = closerlook_lists(root)
    for part, (paths, labels) in lists.items():
        write_closerlook_json(root / f"{part}.json", label_names, paths, labels)
    return root


def section(
    name: str, root: str | Path | None, image_size: int, cache_dir: str | Path | None = None, **geometry: Any
) -> DatasetConfig:
    """The dataset section data.load_split takes: `name` at `root`, cached under `cache_dir` for `image_size`, with
    `crop_scale_min` (the low end of crop_scale) and any other DatasetConfig field in `geometry`."""
    if "crop_scale_min" in geometry:
        geometry["crop_scale"] = (geometry.pop("crop_scale_min"), 1.0)
    as_text = {
        key: None if value is None else str(value) for key, value in {"root": root, "cache_dir": cache_dir}.items()
    }
    return DatasetConfig(name=name, image_size=image_size, **as_text, **geometry)
