"""Decode-once cache: round trip, memory mapping, reuse, the test-split guard, atomic builds, `data prepare`."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

import data.cache as cache
from data import DataError, build_dataset, load_split
from sweep.cli.data import register

from helpers.datasets import section, write_image


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_stored_at_the_smallest_crops_resolution_where_the_source_has_it(tmp_path: Path) -> None:
    """84 px at crop scale 0.08: 297 px (ceil(84 / √0.08)), from 400x320 files; lower with a smaller crop range or
    max_stored_size; never above the files' native side."""
    root = tmp_path / "photos"
    for split in ("base", "val"):
        for label in range(2):
            for i in range(2):
                write_image(root / split / f"{split}{label}" / f"{i}.png", (40 * label, 10 * i, 90), size=(400, 320))
    cache_dir = tmp_path / "cache"
    split = load_split(section("imagefolder", root, 84, cache_dir), "base", progress=False)
    assert split.stored_size == 297 and split.images.shape == (4, 297, 297, 3)
    assert (
        load_split(section("imagefolder", root, 84, cache_dir, crop_scale_min=0.5), "base", progress=False).stored_size
        == 119
    )
    assert (
        load_split(section("imagefolder", root, 84, cache_dir, max_stored_size=128), "val", progress=False).stored_size
        == 128
    )
    assert (
        load_split(section("imagefolder", root, 224, cache_dir), "val", progress=False).stored_size == 320
    )  # native cap


def test_native_size_is_the_median_short_side_of_the_files(tmp_path: Path) -> None:
    for i, size in enumerate([(50, 40), (30, 60), (90, 80), (20, 20), (70, 45)]):
        write_image(tmp_path / "base" / "c" / f"{i}.png", (1, 2, 3), size=size)
    assert build_dataset("imagefolder", tmp_path, "base").native_size() == 40  # short sides 40 30 80 20 45


def test_round_trip_memory_mapped(imagefolder_root: Path, tmp_path: Path) -> None:
    split = load_split(
        section("imagefolder", imagefolder_root, 8, tmp_path / "cache"), "base", progress=False, workers=2
    )
    assert isinstance(split.images, np.memmap) and split.images.dtype == np.uint8
    assert split.images.shape == (12, 10, 10, 3) and split.stored_size == 10
    assert (split.image_size, split.split, split.dataset) == (8, "base", "imagefolder")
    dataset = build_dataset("imagefolder", imagefolder_root, "base")
    assert split.labels.tolist() == dataset.labels.tolist() and split.class_names == ["b0", "b1", "b2"]
    for i in range(len(dataset)):  # constant-colour images stay exactly constant after resizing
        assert np.array_equal(split.images[i], np.broadcast_to(dataset.read(i)[0, 0], (10, 10, 3)))
    assert (split.path / "meta.json").is_file() and split.path.parent == tmp_path / "cache"


def test_resize_squashes_whole_image() -> None:
    image = np.zeros((10, 20, 3), dtype=np.uint8)
    image[:, 10:] = 200  # right half bright
    out = cache.resize_square(image, 8)
    assert out.shape == (8, 8, 3)
    assert (out[:, :3] == 0).all() and (out[:, 5:] == 200).all()  # both halves kept, nothing cropped


def test_second_load_reuses_cache(imagefolder_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_split(section("imagefolder", imagefolder_root, 8, tmp_path), "val", progress=False)
    monkeypatch.setattr(cache, "_build", lambda *a, **k: pytest.fail("rebuilt an existing cache"))
    second = load_split(section("imagefolder", imagefolder_root, 8, tmp_path), "val", progress=False)
    assert second.path == first.path and np.array_equal(second.images, first.images)


def test_cache_dir_from_environment(imagefolder_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEGMARGIN_CACHE", str(tmp_path / "env"))
    split = load_split(section("imagefolder", imagefolder_root, 8), "val", progress=False)
    assert split.path.parent == tmp_path / "env"


def test_test_split_only_with_allow_test(imagefolder_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the test split is read only by promotion"):
        load_split(section("imagefolder", imagefolder_root, 8, tmp_path), "novel", progress=False)
    with pytest.raises(DataError, match="the test split is read only by promotion"):
        load_split(section("mini-imagenet", tmp_path, 8, tmp_path), "all", progress=False)
    assert (
        len(load_split(section("imagefolder", imagefolder_root, 8, tmp_path), "novel", allow_test=True, progress=False))
        == 8
    )


def test_corrupt_image_leaves_no_cache(imagefolder_root: Path, tmp_path: Path) -> None:
    bad = imagefolder_root / "base" / "b2" / "img3.png"
    good = bad.read_bytes()
    bad.write_bytes(b"garbage")
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataError, match=f"cannot decode image {bad}"):
        load_split(section("imagefolder", imagefolder_root, 8, cache_dir), "base", progress=False, workers=3)
    assert not cache_dir.exists() or _entries(cache_dir) == []  # no cache folder, no temporary folder
    bad.write_bytes(good)
    assert len(load_split(section("imagefolder", imagefolder_root, 8, cache_dir), "base", progress=False)) == 12


def test_interrupted_build_leaves_nothing_loadable(
    imagefolder_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = cache.resize_square, []

    def dies_midway(image: np.ndarray, size: int) -> np.ndarray:
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(image, size)

    monkeypatch.setattr(cache, "resize_square", dies_midway)
    monkeypatch.setattr(cache, "_CHUNK", 2)
    with pytest.raises(KeyboardInterrupt):
        load_split(section("imagefolder", imagefolder_root, 8, tmp_path / "c"), "base", progress=False, workers=2)
    assert _entries(tmp_path / "c") == []
    monkeypatch.setattr(cache, "resize_square", real)
    assert len(load_split(section("imagefolder", imagefolder_root, 8, tmp_path / "c"), "base", progress=False)) == 12


def test_incomplete_cache_folder_is_rebuilt(imagefolder_root: Path, tmp_path: Path) -> None:
    split = load_split(section("imagefolder", imagefolder_root, 8, tmp_path), "val", progress=False)
    folder, expected = split.path, np.array(split.images)
    del split
    (folder / "meta.json").unlink()
    with open(folder / "images.npy", "r+b") as handle:  # truncate the pixels as a crash would
        handle.truncate(200)
    rebuilt = load_split(section("imagefolder", imagefolder_root, 8, tmp_path), "val", progress=False)
    assert rebuilt.path == folder and np.array_equal(rebuilt.images, expected)


def test_missing_image_names_file_and_leaves_no_cache(mini_csv_root: Path, tmp_path: Path) -> None:
    missing = mini_csv_root / "images" / "n0500000002.png"
    missing.unlink()
    with pytest.raises(DataError, match=f"image file not found: {missing}"):
        load_split(section("mini-imagenet", mini_csv_root, 8, tmp_path / "c"), "val", progress=False)
    assert not (tmp_path / "c").exists() or _entries(tmp_path / "c") == []


def test_pickle_layout_through_cache(mini_pickle_root: Path, tmp_path: Path) -> None:
    split = load_split(
        section("mini-imagenet", mini_pickle_root, 8, tmp_path, max_stored_size=8), "base", progress=False
    )
    assert split.images.shape == (9, 8, 8, 3)  # the fixture's 6 px images, stored at max_stored_size 8
    assert build_dataset("mini-imagenet", mini_pickle_root, "base").native_size() == 84  # the pickles' format
    assert (split.images[:, 0, 0, 0] // 10 == split.labels).all()


def test_prepare_command(imagefolder_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="negmargin")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "data",
            "prepare",
            "imagefolder",
            "--root",
            str(imagefolder_root),
            "--size",
            "8",
            "--cache",
            str(tmp_path / "c"),
            "--no-progress",
            "--workers",
            "2",
        ]
    )
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["imagefolder base", "imagefolder val", "imagefolder novel"]
    assert all("10x10" in line for line in lines)
    assert len(_entries(tmp_path / "c")) == 3
    # the prepared test split is then found by promotion without decoding again
    novel = load_split(
        section("imagefolder", imagefolder_root, 8, tmp_path / "c"), "novel", allow_test=True, progress=False
    )
    assert str(novel.path) in lines[2]


def test_concurrent_loads_build_once(imagefolder_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    real, builds, gate = cache._build, [], threading.Barrier(2)
    monkeypatch.setattr(cache, "_build", lambda *a, **k: builds.append(1) or real(*a, **k))

    def load(_: int) -> Path:
        gate.wait()
        return load_split(section("imagefolder", imagefolder_root, 8, tmp_path / "c"), "val", progress=False).path

    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(load, range(2)))
    assert paths[0] == paths[1] and builds == [1]


def test_unwritable_cache_dir(imagefolder_root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DataError, match=f"cannot write the image cache in {blocker}"):
        load_split(section("imagefolder", imagefolder_root, 8, blocker), "val", progress=False)
