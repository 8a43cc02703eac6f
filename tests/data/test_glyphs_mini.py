"""glyphs-mini, the mini-ImageNet-shaped glyph benchmark: 64 / 16 / 20 classes by script, 60 images each, 32 px,
deterministic (pinned bytes), its own cache file beside the full benchmark's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from data import build_dataset
from data.glyphs import VARIANTS, cache_file, chosen_classes, load_glyph_set

# sha256 of the images bytes of glyphs-mini, generated with the renderer pinned in test_glyphs.py (Pillow 13.0.0,
# FreeType 2.14.3, matplotlib 3.11.2's fonts): update it deliberately, as that pin, when the renderer changes.
PINNED_MINI_SHA256 = "536eec6d70f605f20f95807dd8f7ef7976315f72423a84ad2db3331024433533"


@pytest.fixture(scope="module")
def mini_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("glyphs-mini")
    assert len(build_dataset("glyphs-mini", str(folder), "base").labels) > 0  # generates the set
    return folder


@pytest.fixture(scope="module")
def splits(mini_cache: Path) -> dict:
    return {split: build_dataset("glyphs-mini", str(mini_cache), split) for split in ("base", "val", "novel")}


def test_shaped_like_mini_imagenet(splits: dict) -> None:
    assert {split: len(d.class_names) for split, d in splits.items()} == {"base": 64, "val": 16, "novel": 20}
    for dataset in splits.values():
        assert np.bincount(dataset.labels).tolist() == [60] * len(dataset.class_names)
        assert dataset.read(0).shape == (32, 32, 3) and dataset.read(0).dtype == np.uint8
        assert dataset.name == "glyphs-mini"


def test_splits_by_script_novel_scripts_unseen(splits: dict) -> None:
    scripts = {split: {name.split(":")[0] for name in d.class_names} for split, d in splits.items()}
    assert scripts["base"] <= {"latin", "cyrillic", "symbols"}
    assert scripts["val"] <= {"greek", "digits", "asomtavruli"}
    assert scripts["novel"] <= {"armenian", "hebrew", "mkhedruli"}
    assert len(scripts["novel"]) == 3 and len(scripts["base"]) >= 2  # the seeded choice spans the scripts


def test_deterministic_and_pinned(mini_cache: Path) -> None:
    params = VARIANTS["glyphs-mini"]
    assert [c.name for c in chosen_classes(params)] == [c.name for c in chosen_classes(params)]
    path = cache_file(mini_cache, params)
    assert path != cache_file(mini_cache, VARIANTS["glyphs"])  # its own file; glyphs stays as it is
    images = load_glyph_set(path).images
    assert images.shape == (100 * 60, 32, 32, 3)
    assert hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest() == PINNED_MINI_SHA256


def test_a_glyphs_mini_class_renders_as_the_same_class_of_glyphs(mini_cache: Path) -> None:
    """Same generator: a class's first samples do not depend on which variant rendered it (per-class streams)."""
    from data.glyphs import GlyphSetParams, render_class

    glyph_class = chosen_classes(VARIANTS["glyphs-mini"])[0]
    full = render_class(glyph_class, GlyphSetParams(samples_per_class=3))
    mini = render_class(glyph_class, GlyphSetParams(samples_per_class=3, classes_per_split=(64, 16, 20)))
    assert np.array_equal(full, mini)
