"""Dataset readers: each layout, label remapping, class splits, fingerprints and the glyph hook."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import data
from data import DataError, build_dataset, load_split
from data.readers import base as base_readers
from data.readers import minimagenet
from sweep.schema import spec as spec_module
from sweep.schema.first_points import first_points
from sweep.schema.published import starting_points
from sweep.schema.trial_config import TrialConfig

from helpers.datasets import (
    CUB_CLASSES,
    FOREIGN,
    ILSVRC_TRAIN,
    MINI_CLASSES,
    MINI_FILES,
    WNIDS,
    closerlook_lists,
    colour,
    global_index,
    mini_listing,
    section,
    write_class_folders,
    write_closerlook_json,
    write_cub_archive,
    write_ilsvrc_tree,
    write_image,
    write_ravi_csv,
)


def test_imagefolder_reads_labels_classes_and_pixels(imagefolder_root: Path) -> None:
    base = build_dataset("imagefolder", imagefolder_root, "base")
    assert (base.name, base.split, len(base)) == ("imagefolder", "base", 12)
    assert base.class_names == ["b0", "b1", "b2"]
    assert base.labels.dtype == np.int64 and base.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    image = base.read(5)  # class b1, img1
    assert image.dtype == np.uint8 and image.shape == (10, 12, 3)
    assert (image == np.array(colour(1, 1), dtype=np.uint8)).all()
    assert build_dataset("imagefolder", imagefolder_root, "novel").class_names == ["n0", "n1"]


def test_fingerprint_is_stable_and_tracks_files(imagefolder_root: Path) -> None:
    first = build_dataset("imagefolder", imagefolder_root, "base").fingerprint()
    assert first == build_dataset("imagefolder", imagefolder_root, "base").fingerprint()
    assert first != build_dataset("imagefolder", imagefolder_root, "val").fingerprint()
    write_image(imagefolder_root / "base" / "b0" / "img0.png", (1, 2, 3), size=(30, 30))
    assert first != build_dataset("imagefolder", imagefolder_root, "base").fingerprint()


@pytest.mark.parametrize("inside", [False, True])
def test_cub_closerlook_split(cub_root: Path, inside: bool) -> None:
    root = cub_root / "CUB_200_2011" if inside else cub_root
    expected = {"base": [0, 2, 4, 6], "val": [1, 5], "novel": [3, 7]}
    for split, indices in expected.items():
        dataset = build_dataset("cub", root, split)
        assert dataset.class_names == [CUB_CLASSES[i] for i in indices]
        assert dataset.labels.tolist() == [k for k in range(len(indices)) for _ in range(3)]
    pixel = build_dataset("cub", root, "val").read(3)[5, 5].astype(int)  # class index 5, img0 (JPEG: approx)
    assert np.abs(pixel - np.array(colour(5, 0))).max() <= 3


def _check_mini(root: Path) -> None:
    base = build_dataset("mini-imagenet", root, "base")
    assert base.class_names == MINI_CLASSES["base"]
    assert sorted(np.bincount(base.labels).tolist()) == [3, 3, 3]
    everything = build_dataset("mini-imagenet", root, "all")
    assert everything.class_names == MINI_CLASSES["base"] + MINI_CLASSES["val"] + MINI_CLASSES["novel"]
    novel = build_dataset("mini-imagenet", root, "novel")
    assert novel.class_names == ["n06", "n07"] and set(novel.labels.tolist()) == {0, 1}
    # "all" labels are the split labels offset by the earlier splits' class counts
    assert everything.labels.tolist() == (
        base.labels.tolist()
        + (build_dataset("mini-imagenet", root, "val").labels + 3).tolist()
        + (novel.labels + 5).tolist()
    )


def test_mini_imagenet_csv(mini_csv_root: Path) -> None:
    _check_mini(mini_csv_root)
    base = build_dataset("mini-imagenet", mini_csv_root, "base")
    i = next(k for k, p in enumerate(base.paths) if p.name == "n0200000001.png")
    assert base.class_names[base.labels[i]] == "n02"
    assert (base.read(i) == np.array(colour(1, 1), dtype=np.uint8)).all()


def test_mini_imagenet_closerlook_json_resolves_foreign_paths(mini_json_root: Path) -> None:
    _check_mini(mini_json_root)
    base = build_dataset("mini-imagenet", mini_json_root, "base")
    assert all(p.parent == mini_json_root / "images" for p in base.paths)


def test_mini_imagenet_pickle_is_lazy_and_correct(mini_pickle_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = minimagenet.load_pickle
    monkeypatch.setattr(minimagenet, "load_pickle", lambda path: calls.append(path) or real(path))
    base = build_dataset("mini-imagenet", mini_pickle_root, "base")
    base.fingerprint()
    assert calls == []  # finding a cache must not load the pickle
    _check_mini(mini_pickle_root)
    for i in range(len(base)):  # value = 10 * position of the wnid in its split + image number in the class
        assert base.read(i)[0, 0, 0] // 10 == base.labels[i]


def test_layout_preference_csv_over_pickle(mini_csv_root: Path, mini_pickle_root: Path) -> None:
    for pkl in mini_pickle_root.iterdir():
        os.link(pkl, mini_csv_root / pkl.name)
    assert isinstance(build_dataset("mini-imagenet", mini_csv_root, "base"), data.FileImageDataset)


def test_mini_to_cub(tmp_path: Path, mini_csv_root: Path, cub_root: Path) -> None:
    root = tmp_path / "cross"
    root.mkdir()
    (root / "mini-imagenet").symlink_to(mini_csv_root)
    (root / "CUB_200_2011").symlink_to(cub_root / "CUB_200_2011")
    base = build_dataset("mini2cub", root, "base")
    assert (base.name, base.split, len(base.class_names)) == ("mini2cub", "base", 7)
    val = build_dataset("mini2cub", root, "val")
    assert val.class_names == [CUB_CLASSES[1], CUB_CLASSES[5]]
    assert val.fingerprint() == build_dataset("cub", cub_root, "val").fingerprint()  # caches are shared
    old_name = {"name": "mini-imagenet->cub", "root": str(root)}  # a trial config that still says the old name
    config = TrialConfig.model_validate({"dataset": old_name, "backbone": "resnet18", "loss": "neg-cosine"})
    for split in ("base", "val", "novel"):  # the old name opens the same dataset, so the same cache
        old = build_dataset(config.dataset.name, config.dataset.root, split)
        new = build_dataset("mini2cub", root, split)
        assert (old.name, old.class_names, old.fingerprint()) == (new.name, new.class_names, new.fingerprint())


def test_glyphs_delegates_to_glyph_module(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeGlyphs:
        @staticmethod
        def build_glyph_dataset(split: str, root: object, variant: str) -> str:
            calls.append((split, root, variant))
            return "dataset"

    monkeypatch.setitem(sys.modules, "data.glyphs", FakeGlyphs)
    monkeypatch.setattr(data, "glyphs", FakeGlyphs, raising=False)
    assert build_dataset("glyphs", None, "val") == "dataset" == build_dataset("glyphs-mini", None, "base")
    assert calls == [("val", None, "glyphs"), ("base", None, "glyphs-mini")]


def test_array_dataset_validates_and_fingerprints_pixels() -> None:
    images = np.zeros((4, 5, 5, 3), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1])
    a = data.ArrayImageDataset("toy", "base", images, labels, ["x", "y"])
    images2 = images.copy()
    images2[0, 0, 0, 0] = 1
    assert a.fingerprint() != data.ArrayImageDataset("toy", "base", images2, labels, ["x", "y"]).fingerprint()
    with pytest.raises(DataError, match="cover classes"):
        data.ArrayImageDataset("toy", "base", images, np.array([0, 2, 0, 2]), ["x", "y"])


# ---- bad input: one DataError naming the file, folder or name ----


def test_unknown_dataset_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'tiered'"):
        build_dataset("tiered", tmp_path, "base")
    with pytest.raises(DataError, match=f"not found: {tmp_path / 'nope'}"):
        build_dataset("cub", tmp_path / "nope", "base")
    with pytest.raises(DataError, match="needs a root"):
        build_dataset("imagefolder", None, "base")
    with pytest.raises(DataError, match="no mini-ImageNet layout"):
        build_dataset("mini-imagenet", tmp_path, "base")
    with pytest.raises(DataError, match="no CUB-200-2011 layout .*CUB_200_2011/images/"):
        build_dataset("cub", tmp_path, "base")


def test_unknown_split(imagefolder_root: Path) -> None:
    with pytest.raises(DataError, match="unknown split 'test'"):
        build_dataset("imagefolder", imagefolder_root, "test")


def test_missing_split_file_fails_whichever_split_is_opened(mini_csv_root: Path, mini_json_root: Path) -> None:
    (mini_csv_root / "test.csv").unlink()
    with pytest.raises(DataError, match=r"Ravi & Larochelle CSVs \+ images/ \(lacks test\.csv\)"):
        build_dataset("mini-imagenet", mini_csv_root, "base")
    (mini_json_root / "val.json").unlink()
    with pytest.raises(DataError, match=r"CloserLook JSON lists \(lacks val\.json\)"):
        build_dataset("mini-imagenet", mini_json_root, "novel")


def test_malformed_csv_and_json(mini_csv_root: Path, mini_json_root: Path) -> None:
    (mini_csv_root / "val.csv").write_text("file,class\na.png,n04\n")
    with pytest.raises(DataError, match=r"val\.csv: expected a header 'filename,label', found 'file,class'"):
        build_dataset("mini-imagenet", mini_csv_root, "val")
    (mini_json_root / "base.json").write_text('{"label_names": []}')
    with pytest.raises(DataError, match=r"base\.json: expected label_names"):
        build_dataset("mini-imagenet", mini_json_root, "base")


def test_missing_listed_image_fails_when_the_dataset_is_opened(mini_csv_root: Path, mini_json_root: Path) -> None:
    missing = mini_csv_root / "images" / "n0100000001.png"
    missing.unlink()
    (mini_csv_root / "images" / "n0100000002.png").unlink()
    with pytest.raises(DataError, match=f"image file not found: {missing} .listed in .*train.csv; 1 more of its"):
        build_dataset("mini-imagenet", mini_csv_root, "base")
    (mini_json_root / "images" / "n0100000001.png").unlink()
    with pytest.raises(DataError, match="image file not found: /elsewhere/.*n0100000001.png .listed in .*base.json"):
        build_dataset("mini-imagenet", mini_json_root, "base")


def test_corrupt_image(imagefolder_root: Path) -> None:
    bad = imagefolder_root / "base" / "b1" / "img2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    dataset = build_dataset("imagefolder", imagefolder_root, "base")
    with pytest.raises(DataError, match=f"cannot decode image {bad}"):
        dataset.read(dataset.paths.index(bad))


def test_empty_class_folder(imagefolder_root: Path) -> None:
    (imagefolder_root / "val" / "v2").mkdir()
    with pytest.raises(DataError, match="class folder has no images: .*v2"):
        build_dataset("imagefolder", imagefolder_root, "val")


def test_pickle_with_wrong_structure(mini_pickle_root: Path) -> None:
    import pickle

    path = mini_pickle_root / "mini-imagenet-cache-val.pkl"
    path.write_bytes(pickle.dumps({"images": [1, 2]}))
    with pytest.raises(DataError, match="mini-imagenet-cache-val.pkl: expected a dict with keys image_data"):
        _ = build_dataset("mini-imagenet", mini_pickle_root, "val").labels


def test_malicious_dataset_pickle_is_refused_unrun(mini_pickle_root: Path) -> None:
    import pickle

    marker = mini_pickle_root / "pwned"

    class Payload:
        def __reduce__(self) -> tuple:
            return os.system, (f"touch {marker}",)

    path = mini_pickle_root / "mini-imagenet-cache-train.pkl"
    path.write_bytes(pickle.dumps({"image_data": Payload(), "class_dict": {}}))
    with pytest.raises(DataError, match=rf"{path}: refused to unpickle global (posix|os|nt)\.system"):
        _ = build_dataset("mini-imagenet", mini_pickle_root, "base").labels
    assert not marker.exists()


# ---- the layouts users really have, written as the field's own tooling writes them ----


def _pairs(dataset: data.ImageDataset) -> set[tuple[Path, str]]:
    return {(path, dataset.class_names[label]) for path, label in zip(dataset.paths, dataset.labels)}


def _one_line_error(call, match: str) -> str:
    with pytest.raises(DataError, match=match) as caught:
        call()
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_closerlook_folder_reads_its_json_lists_not_the_csvs(closerlook_mini_root: Path) -> None:
    root = closerlook_mini_root  # train/val/test.csv beside base/val/novel.json and ILSVRC2015/, no images/
    label_names, lists = closerlook_lists(root)
    for part in ("base", "val", "novel"):
        dataset = build_dataset("mini-imagenet", root, part)
        assert dataset.class_names == WNIDS[part]
        paths, labels = lists[part]  # CloserLook's own pairs, its foreign paths re-rooted under root
        expected = {(root / p[len(FOREIGN) + 1 :], label_names[label]) for p, label in zip(paths, labels)}
        assert _pairs(dataset) == expected and len(dataset) == len(paths) == 3 * len(WNIDS[part])
    base = build_dataset("mini-imagenet", root, "base")
    i = base.paths.index(root / ILSVRC_TRAIN / "n01558993" / "n01558993_1005.JPEG")  # rank 3 by number
    assert base.class_names[base.labels[i]] == "n01558993"
    assert np.abs(base.read(i)[4, 4].astype(int) - colour(global_index("n01558993"), 3)).max() <= 3
    assert build_dataset("mini-imagenet", root, "all").class_names == label_names  # CloserLook's global order


def test_csvs_over_an_ilsvrc_tree_match_closerlook_to_the_pair(closerlook_mini_root: Path) -> None:
    root = closerlook_mini_root
    from_json = {part: _pairs(build_dataset("mini-imagenet", root, part)) for part in ("base", "val", "novel", "all")}
    for part in ("base", "val", "novel"):
        (root / f"{part}.json").unlink()  # before write_miniImagenet_filelist.py has run
    for part, pairs in from_json.items():
        dataset = build_dataset("mini-imagenet", root, part)
        assert _pairs(dataset) == pairs
        assert all(p.parent.parent == root / ILSVRC_TRAIN for p in dataset.paths)
    base = build_dataset("mini-imagenet", root, "base")  # row ...00000004.jpg is the 4th file by number: _1005
    assert {p.name for p in base.paths if p.parent.name == "n01532829"} == {
        f"n01532829_{n}.JPEG" for n in (9, 10, 1005)
    }


def test_no_layout_names_each_one_tried_what_it_lacked_and_the_archive(closerlook_mini_root: Path) -> None:
    root = closerlook_mini_root
    for part in ("base", "val", "novel"):
        (root / f"{part}.json").unlink()
    shutil.rmtree(root / "ILSVRC2015")  # the state right after the download, before tar -zxvf
    message = _one_line_error(lambda: build_dataset("mini-imagenet", root, "val"), "no mini-ImageNet layout")
    assert message == (
        f"no mini-ImageNet layout in {root}: tried Ravi & Larochelle CSVs + images/ (lacks images/); "
        "CloserLook JSON lists (lacks base.json, val.json, novel.json); "
        "CSVs over an ILSVRC train tree (lacks ILSVRC2015/Data/CLS-LOC/train/ or ILSVRC/Data/CLS-LOC/train/); "
        "pickle caches (lacks mini-imagenet-cache-train.pkl, mini-imagenet-cache-val.pkl or "
        "mini-imagenet-cache-validation.pkl, mini-imagenet-cache-test.pkl); "
        f"ILSVRC2015_CLS-LOC.tar.gz is not extracted: run `tar -xzf {root / 'ILSVRC2015_CLS-LOC.tar.gz'} -C {root}`"
    )


@pytest.mark.parametrize(
    "listed",
    [
        FOREIGN + "/ILSVRC2015/Data/CLS-LOC/train/{wnid}/{name}",  # another Linux machine
        "/scratch/imagenet/train/{wnid}/{name}",  # only <wnid>/<file> in common
        "ILSVRC2015/Data/CLS-LOC/train/{wnid}/{name}",  # relative
        "{root}/ILSVRC2015/Data/CLS-LOC/train/{wnid}/{name}",  # this machine, as written
    ],
)
def test_json_paths_from_elsewhere_are_rerooted_by_their_trailing_parts(tmp_path: Path, listed: str) -> None:
    root = tmp_path / "mini"
    write_ilsvrc_tree(root / ILSVRC_TRAIN)
    (root / ILSVRC_TRAIN / "n01532829" / "n01532829_9.JPEG").rename(root / "n01532829_9.JPEG")  # a stray copy
    names = [w for part in WNIDS.values() for w in part]
    for part in ("base", "val", "novel"):
        rows = [(wnid, f"{wnid}_{n}.JPEG") for wnid in WNIDS[part] for n in (10, 100)]
        image_names = [listed.format(root=root, wnid=wnid, name=name) for wnid, name in rows]
        write_closerlook_json(root / f"{part}.json", names, image_names, [names.index(w) for w, _ in rows])
    base = build_dataset("mini-imagenet", root, "base")
    assert base.paths[0] == root / ILSVRC_TRAIN / "n01532829" / "n01532829_10.JPEG"
    assert all(p.parent == root / ILSVRC_TRAIN / base.class_names[label] for p, label in zip(base.paths, base.labels))


def test_learn2learn_pickle_names(learn2learn_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = []
    real = minimagenet.load_pickle
    monkeypatch.setattr(minimagenet, "load_pickle", lambda path: loaded.append(path.name) or real(path))
    val = build_dataset("mini-imagenet", learn2learn_root, "val")
    assert loaded == []  # opening the val split decodes nothing, not even the base split
    assert val.class_names == MINI_CLASSES["val"] and loaded == ["mini-imagenet-cache-validation.pkl"]
    assert [val.read(i)[0, 0, 0] // 10 for i in range(len(val))] == val.labels.tolist()
    assert build_dataset("mini-imagenet", learn2learn_root, "all").class_names == sum(MINI_CLASSES.values(), [])


def _spy_decoding(monkeypatch: pytest.MonkeyPatch) -> list:
    decoded: list = []
    real = base_readers.decode_image
    monkeypatch.setattr(base_readers, "decode_image", lambda path: decoded.append(path) or real(path))
    real_pickle = minimagenet.load_pickle
    monkeypatch.setattr(minimagenet, "load_pickle", lambda path: decoded.append(path) or real_pickle(path))
    return decoded


def _break_csv_val(root: Path) -> str:
    (root / "images" / "n0400000001.png").unlink()
    return f"image file not found: {root / 'images' / 'n0400000001.png'} .listed in {root / 'val.csv'}"


def _break_json_novel(root: Path) -> str:
    (root / "images" / "n0700000002.png").unlink()
    return "image file not found: /elsewhere/ILSVRC/train/n07/n0700000002.png .listed in .*novel.json"


def _break_pickle_val(root: Path) -> str:
    (root / "mini-imagenet-cache-val.pkl").unlink()
    return r"pickle caches \(lacks mini-imagenet-cache-val.pkl or mini-imagenet-cache-validation.pkl\)"


def _break_folder_val(root: Path) -> str:
    (root / "val" / "v2").mkdir()
    return f"class folder has no images: {root / 'val' / 'v2'}"


def _break_cub_novel(root: Path) -> str:
    shutil.rmtree(root / "CUB_200_2011" / "images" / CUB_CLASSES[7])
    (root / "CUB_200_2011" / "images" / CUB_CLASSES[7]).mkdir()
    return f"class folder has no images: .*{CUB_CLASSES[7]}"


@pytest.mark.parametrize(
    "name, fixture, breaks",
    [
        ("mini-imagenet", "mini_csv_root", _break_csv_val),
        ("mini-imagenet", "mini_json_root", _break_json_novel),
        ("mini-imagenet", "mini_pickle_root", _break_pickle_val),
        ("imagefolder", "imagefolder_root", _break_folder_val),
        ("cub", "cub_root", _break_cub_novel),
    ],
)
def test_every_split_is_checked_before_any_decoding(
    name: str, fixture: str, breaks, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = request.getfixturevalue(fixture)
    message = breaks(root)
    decoded = _spy_decoding(monkeypatch)
    _one_line_error(lambda: load_split(section(name, root, 8, tmp_path / "cache"), "base", progress=False), message)
    assert decoded == [] and not (tmp_path / "cache").exists()


def test_mini2cub_checks_cub_before_decoding_mini(
    tmp_path: Path, mini_csv_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cross"
    root.mkdir()
    (root / "mini-imagenet").symlink_to(mini_csv_root)
    (root / "CUB_200_2011").mkdir()  # an empty folder where the extracted CUB should be
    decoded = _spy_decoding(monkeypatch)
    _one_line_error(
        lambda: load_split(section("mini2cub", root, 8, tmp_path / "cache"), "base", progress=False),
        f"no CUB-200-2011 layout in {root}",
    )
    assert decoded == []


def _write_train_val_test(root: Path, val_name: str = "val") -> None:
    write_class_folders(root / "train", ["n01", "n02", "n03"], 2)
    write_class_folders(root / val_name, ["n04", "n05"], 2)
    write_class_folders(root / "test", ["n06", "n07"], 2)


@pytest.mark.parametrize("val_name", ["val", "validation"])
def test_imagefolder_train_val_test(tmp_path: Path, val_name: str) -> None:
    root = tmp_path / "tiered"  # as tiered-ImageNet and CIFAR-FS image folders come
    _write_train_val_test(root, val_name)
    expected = {"base": ["n01", "n02", "n03"], "val": ["n04", "n05"], "novel": ["n06", "n07"]}
    for split, classes in expected.items():
        dataset = build_dataset("imagefolder", root, split)
        assert dataset.class_names == classes and dataset.labels.tolist() == [
            c for c in range(len(classes)) for _ in "ab"
        ]
    pixel = build_dataset("imagefolder", root, "novel").read(3)[0, 0]  # class n07, img1
    assert pixel.tolist() == list(colour(1, 1))


def test_imagefolder_says_what_it_found_and_what_it_expects(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    write_class_folders(root, ["n01", "n02"], 1)  # class folders with no split level
    _one_line_error(
        lambda: build_dataset("imagefolder", root, "base"),
        re.escape(
            f"base split folder not found in {root}: expected base/, val/, novel/ (or train/, val/, test/); "
            "found n01/, n02/"
        )
        + "$",
    )
    _write_train_val_test(root)
    write_class_folders(root / "base", ["n08"], 1)
    _one_line_error(lambda: build_dataset("imagefolder", root, "val"), "both base/ and train/ would be the base split")


def test_mini2cub_is_shell_safe_and_the_old_name_an_alias(tmp_path: Path) -> None:
    assert all(shlex.quote(name) == name for name in data.list_datasets())  # typed unquoted in any shell
    assert "mini-imagenet->cub" not in data.list_datasets()
    new = [point.params for point in starting_points("mini2cub", "resnet18", "neg-cosine", [5])]
    assert new and new[0]["margin"] == -0.05 and new[0]["weight_decay"] == 5e-5 and new[0]["scale"] == 30.0
    for preset in ("resnet18-mini2cub-neg-cosine-5shot", "resnet18-mini2cub-neg-softmax-5shot"):
        text = spec_module.preset_path(preset).read_text()
        assert "name: mini2cub," in text
        old_spec = tmp_path / f"{preset}.yaml"
        old_spec.write_text(text.replace("name: mini2cub,", "name: mini-imagenet->cub,"))
        old, new_spec = spec_module.load(old_spec), spec_module.load(spec_module.preset_path(preset))
        assert old.dataset.name == "mini2cub"  # an alias is stored as its dataset's name
        assert first_points(old) == first_points(new_spec) and first_points(old)[0]["margin"] in (-0.05, -0.005)


def test_mini2cub_in_closerlook_filelists(tmp_path: Path, closerlook_mini_root: Path) -> None:
    filelists = closerlook_mini_root.parent  # filelists/miniImagenet and filelists/CUB/CUB_200_2011
    write_class_folders(filelists / "CUB" / "CUB_200_2011" / "images", CUB_CLASSES, 2, suffix=".jpg")
    base = build_dataset("mini2cub", filelists, "base")
    assert base.class_names == sum(WNIDS.values(), []) and len(base) == 7 * 3
    assert build_dataset("mini2cub", filelists, "novel").class_names == [CUB_CLASSES[3], CUB_CLASSES[7]]


@pytest.mark.parametrize("excel", [False, True])
def test_csv_with_a_utf8_byte_order_mark(mini_csv_root: Path, excel: bool) -> None:
    for part, rows in mini_listing().items():  # Excel's "CSV UTF-8": BOM, and CRLF line ends
        write_ravi_csv(mini_csv_root / f"{MINI_FILES[part]}.csv", rows, bom=True, line_end="\r\n" if excel else "\n")
    assert (mini_csv_root / "val.csv").read_bytes().startswith(b"\xef\xbb\xbffilename,label")
    _check_mini(mini_csv_root)


@pytest.mark.parametrize(
    "image_data, found",
    [
        ([1, 2], "a list of 2 items (first: an int)"),
        (0.5, "a float"),
        (np.zeros((2, 6, 6, 3), dtype=np.float32), "a float32 array of shape (2, 6, 6, 3)"),
        (np.zeros((2, 6, 6), dtype=np.uint8), "a uint8 array of shape (2, 6, 6)"),
    ],
)
def test_pickle_with_wrong_image_data_says_what_it_found(mini_pickle_root: Path, image_data, found: str) -> None:
    import pickle

    path = mini_pickle_root / "mini-imagenet-cache-val.pkl"
    path.write_bytes(pickle.dumps({"image_data": image_data, "class_dict": {"n04": [0]}}))
    _one_line_error(
        lambda: build_dataset("mini-imagenet", mini_pickle_root, "val").labels,
        re.escape(f"{path}: image_data must be a uint8 array [N, H, W, 3], found {found}") + "$",
    )


def test_unextracted_cub_archive_is_named_with_the_command(tmp_path: Path) -> None:
    root = tmp_path / "CUB"
    root.mkdir()
    archive = write_cub_archive(root / "CUB_200_2011.tgz")
    message = _one_line_error(lambda: build_dataset("cub", root, "base"), "no CUB-200-2011 layout")
    command = f"tar -xzf {archive} -C {root}"
    assert message.endswith(f"; CUB_200_2011.tgz is not extracted: run `{command}`")
    subprocess.run(shlex.split(command), check=True)  # the command it names works
    assert sorted(p.name for p in root.iterdir()) == ["CUB_200_2011", "CUB_200_2011.tgz", "attributes.txt"]
    base = build_dataset("cub", root, "base")
    assert base.class_names == [CUB_CLASSES[i] for i in (0, 2, 4, 6)] and len(base) == 12
    assert base.paths[0].name == "Bird_1_0001_796001.jpg"


def test_unextracted_zip_of_an_image_folder(tmp_path: Path, imagefolder_root: Path) -> None:
    root = tmp_path / "download"
    root.mkdir()
    shutil.make_archive(str(root / "cifar-fs"), "zip", imagefolder_root)
    message = _one_line_error(lambda: build_dataset("imagefolder", root, "base"), "base split folder not found")
    command = f"unzip {root / 'cifar-fs.zip'} -d {root}"
    assert message.endswith(f"; cifar-fs.zip is not extracted: run `{command}`")
    subprocess.run(shlex.split(command), check=True, stdout=subprocess.DEVNULL)  # the command it names works
    assert build_dataset("imagefolder", root, "base").class_names == ["b0", "b1", "b2"]
