"""The embedded glyph benchmark: size, script-disjoint splits, labels, determinism, pinned bytes, look-alike filter.

The whole set is generated once per session into a temporary cache (about 20-60 s on 2 CPU cores).
"""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import features

from data.errors import DataError
from data.glyph_classes import SCRIPTS, font_path, glyph_classes, is_drawn
from data.glyphs import GlyphSetParams, build_glyph_dataset, cache_file, load_glyph_set, render_class, render_classes

SPLITS = ("base", "val", "novel")

# sha256 of the images array bytes of the default build (seed 0, 40 samples per class, 32 px), as generated with
# Pillow 13.0.0 / FreeType 2.14.3 and matplotlib 3.11.2's fonts. The rendered bytes depend on the Pillow and FreeType
# versions (rasteriser, resampling) and on the font files: when one of them changes, check a few images by eye and
# update the hash deliberately (and bump data.glyphs.GENERATOR_VERSION when the generator code changes the bytes).
PINNED_RENDERER = {"pillow": "13.0.0", "freetype": "2.14.3"}
PINNED_IMAGES_SHA256 = "d355798f4bf802af886ee9a249670464373036df80dc15de572c5deabca8f0fa"


@pytest.fixture(scope="module")
def cache_dir(glyph_cache: Path) -> Path:
    """The suite's cache directory holding the generated default build (tests/conftest.py)."""
    return glyph_cache


@pytest.fixture(scope="module")
def splits(cache_dir: Path) -> dict[str, object]:
    """The three splits, read from the cache."""
    return {split: build_glyph_dataset(split, cache_dir) for split in SPLITS}


def script_of(class_name: str) -> str:
    """Script part of a class name like "armenian:U+0531"."""
    return class_name.split(":")[0]


def char_of(class_name: str) -> str:
    """Character of a class name like "armenian:U+0531"."""
    return chr(int(class_name.split("U+")[1], 16))


def test_set_size_and_image_format(splits: dict) -> None:
    total_classes = sum(len(s.class_names) for s in splits.values())
    assert total_classes >= 300
    for dataset in splits.values():
        assert np.bincount(dataset.labels).min() >= 40
        image = dataset.read(len(dataset) - 1)
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        assert dataset.name == "glyphs"


def test_labels_are_zero_to_c_minus_one_per_split(splits: dict) -> None:
    for split, dataset in splits.items():
        assert dataset.split == split
        assert dataset.labels.dtype == np.int64 and len(dataset) == len(dataset.labels)
        assert np.array_equal(np.unique(dataset.labels), np.arange(len(dataset.class_names)))


def test_splits_are_disjoint_by_script_and_by_class(splits: dict) -> None:
    scripts = {split: {script_of(name) for name in d.class_names} for split, d in splits.items()}
    chars = {split: {char_of(name) for name in d.class_names} for split, d in splits.items()}
    for a, b in (("base", "val"), ("base", "novel"), ("val", "novel")):
        assert not scripts[a] & scripts[b]
        assert not chars[a] & chars[b]
    assert {"latin", "cyrillic", "symbols"} <= scripts["base"]
    assert {"greek", "digits"} <= scripts["val"]
    assert {"armenian", "hebrew"} <= scripts["novel"]
    assert scripts == {split: {s.name for s in SCRIPTS if s.split == split} for split in SPLITS}


def test_split_proportions_are_roughly_64_16_20(splits: dict) -> None:
    counts = {split: len(d.class_names) for split, d in splits.items()}
    total = sum(counts.values())
    assert 0.58 <= counts["base"] / total <= 0.70
    assert 0.10 <= counts["val"] / total <= 0.22
    assert 0.15 <= counts["novel"] / total <= 0.26


def test_all_split_concatenates_the_three(cache_dir: Path, splits: dict) -> None:
    everything = build_glyph_dataset("all", cache_dir)
    assert everything.class_names == [n for s in SPLITS for n in splits[s].class_names]
    assert len(everything) == sum(len(d) for d in splits.values())


def test_lookalikes_across_and_within_scripts_are_dropped(splits: dict) -> None:
    present = {char_of(name) for d in splits.values() for name in d.class_names}
    assert len(present & {"A", "\u0391", "\u0410"}) == 1  # Latin A, Greek Alpha, Cyrillic A
    assert len(present & {"l", "I", "1"}) == 1
    assert len(present & {"O", "0", "o"}) == 1
    assert len(present & {"c", "C"}) == 1
    assert len(present & {"O", "\u0585", "\u0555"}) == 1  # Latin O, Armenian oh (small and capital)


def test_characters_are_letters_digits_or_symbols_drawn_by_each_font(splits: dict) -> None:
    for glyph_class in glyph_classes():
        assert unicodedata.category(glyph_class.char)[0] in "LNS"
        assert all(is_drawn(glyph_class.char, path) for path in glyph_class.font_paths)


def test_blank_and_missing_glyphs_are_detected() -> None:
    assert is_drawn("A", font_path("DejaVuSerif.ttf"))
    assert not is_drawn(" ", font_path("DejaVuSerif.ttf"))  # blank
    assert not is_drawn("\u05d0", font_path("DejaVuSerif.ttf"))  # no Hebrew in DejaVu Serif
    assert not is_drawn("\u0531", font_path("STIXGeneral.ttf"))  # no Armenian in STIX


def test_images_vary_within_a_class_and_are_not_blank(splits: dict) -> None:
    dataset = splits["novel"]
    first_class = [dataset.read(i) for i in np.flatnonzero(dataset.labels == 0)]
    assert all(image.std() > 1.0 for image in first_class)
    assert len({image.tobytes() for image in first_class}) == len(first_class)


def test_regenerating_a_few_classes_gives_identical_bytes(cache_dir: Path) -> None:
    params = GlyphSetParams()
    cached = load_glyph_set(cache_file(cache_dir, params))  # generated by 2 worker processes
    classes = glyph_classes()
    for index in (0, len(classes) // 2, len(classes) - 1):
        rows = np.flatnonzero(cached.class_index == index)
        regenerated = render_class(classes[index], params)  # this process, alone
        assert regenerated.tobytes() == cached.images[rows].tobytes()


def test_generated_bytes_match_the_pinned_hash(cache_dir: Path) -> None:
    renderer = {"pillow": PIL.__version__, "freetype": str(features.version("freetype2"))}
    images = load_glyph_set(cache_file(cache_dir, GlyphSetParams())).images
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
    assert digest == PINNED_IMAGES_SHA256, (
        f"glyph bytes changed (renderer {renderer}, pinned for {PINNED_RENDERER}): inspect and update the pin"
    )


def test_cache_is_one_file_and_is_reused(cache_dir: Path, splits: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [p.suffix for p in cache_dir.iterdir()] == [".npz"]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr("data.glyphs.generate_glyph_set", refuse)
    reread = build_glyph_dataset("val", cache_dir)
    assert reread.class_names == splits["val"].class_names and np.array_equal(reread.labels, splits["val"].labels)


def test_small_build_with_other_parameters_gets_its_own_cache_file(tmp_path: Path) -> None:
    small = GlyphSetParams(samples_per_class=2, image_size=16)
    assert cache_file(tmp_path, small) != cache_file(tmp_path, GlyphSetParams())
    images = render_class(glyph_classes()[0], small)
    assert images.shape == (2, 16, 16, 3) and images.dtype == np.uint8


def test_fingerprint_is_stable_per_split_and_needs_no_data(tmp_path: Path) -> None:
    base = build_glyph_dataset("base", tmp_path)
    assert base.fingerprint() == build_glyph_dataset("base", tmp_path / "elsewhere").fingerprint()
    assert base.fingerprint() != build_glyph_dataset("novel", tmp_path).fingerprint()
    assert not any(tmp_path.iterdir())  # nothing was generated


def test_unknown_split_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown split 'test' for glyphs"):
        build_glyph_dataset("test", tmp_path)
    assert issubclass(DataError, ValueError)


def test_default_root_is_the_negmargin_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEGMARGIN_CACHE", str(tmp_path))
    assert build_glyph_dataset("val", None).cache_dir == tmp_path


def test_generation_does_not_depend_on_worker_count() -> None:
    params = GlyphSetParams(samples_per_class=3, image_size=16)
    classes = glyph_classes()[:6]
    assert render_classes(classes, params, workers=1).tobytes() == render_classes(classes, params, workers=2).tobytes()
