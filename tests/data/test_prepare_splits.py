"""data.prepare_splits: every split decoded into the cache; a bad image leaves the cache directory as it was."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data
from data.section import DatasetConfig


def _folder(root: Path) -> None:
    """base and val of an image folder: 3 classes of 4 images, 16 × 16."""
    rng = np.random.default_rng(0)
    for split in ("base", "val"):
        for label in range(3):
            (root / split / f"c{label}").mkdir(parents=True)
            for index in range(4):
                pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / f"c{label}" / f"{index}.png")


def _section(tmp_path: Path, cache: Path) -> DatasetConfig:
    return DatasetConfig(name="imagefolder", root=str(tmp_path / "folder"), cache_dir=str(cache), image_size=16)


def test_every_split_is_decoded_once_into_the_cache(tmp_path):
    _folder(tmp_path / "folder")
    section = _section(tmp_path, tmp_path / "cache")
    data.prepare_splits(section, ("base", "val"))
    for split in ("base", "val"):
        cached = data.load_split(section, split, progress=False)
        assert cached.images.shape[0] == 12 and cached.images.dtype == np.uint8


def test_a_corrupt_image_removes_the_cache_directory_this_call_made(tmp_path):
    _folder(tmp_path / "folder")
    (tmp_path / "folder" / "val" / "c2" / "3.png").write_bytes(np.random.default_rng(5).bytes(400))
    with pytest.raises(data.DataError):
        data.prepare_splits(_section(tmp_path, tmp_path / "cache"), ("base", "val"))
    assert not (tmp_path / "cache").exists()


def test_a_corrupt_image_keeps_what_the_cache_directory_held_before(tmp_path):
    _folder(tmp_path / "folder")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "another-dataset").mkdir()
    (tmp_path / "folder" / "base" / "c0" / "1.png").write_bytes(b"not a png")
    with pytest.raises(data.DataError):
        data.prepare_splits(_section(tmp_path, cache), ("base", "val"))
    assert [entry.name for entry in cache.iterdir()] == ["another-dataset"]
