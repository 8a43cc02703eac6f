"""Fixtures shared by the whole suite. This folder is on sys.path (pytest puts a conftest's folder there), so the
test modules import their helpers as `helpers.*`."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def glyph_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding the generated default glyph set: generated once for the whole suite."""
    from data.glyphs import build_glyph_dataset

    folder = tmp_path_factory.mktemp("glyph-cache")
    assert len(build_glyph_dataset("base", folder).labels) > 0  # generates and caches the whole set
    return folder
