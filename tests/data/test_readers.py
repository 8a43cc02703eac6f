"""Dataset readers: each layout, label remapping, class splits, fingerprints and the glyph hook."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import data
from data import DataError, build_dataset
from data.readers import minimagenet

from helpers.datasets import CUB_CLASSES, MINI_CLASSES, colour, write_image


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
    for split in ("base", "val", "novel"):  # the old name opens the same dataset, so the same cache
        old = build_dataset("mini-imagenet->cub", root, split)
        new = build_dataset("mini2cub", root, split)
        assert (old.name, old.class_names, old.fingerprint()) == (new.name, new.class_names, new.fingerprint())


def test_glyphs_delegates_to_glyph_module(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeGlyphs:
        @staticmethod
        def build_glyph_dataset(split: str, root: object) -> str:
            calls.append((split, root))
            return "dataset"

    monkeypatch.setitem(sys.modules, "data.glyphs", FakeGlyphs)
    monkeypatch.setattr(data, "glyphs", FakeGlyphs, raising=False)
    assert build_dataset("glyphs", None, "val") == "dataset" and calls == [("val", None)]


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
