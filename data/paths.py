"""Names of data on disk: the image cache directory and episode-set files (a leaf: imports nothing of ours)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "NEGMARGIN_CACHE"


def default_cache_dir() -> Path:
    """$NEGMARGIN_CACHE, else ~/.cache/negmargin."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "negmargin")


def episode_file_name(split: str, shot: int) -> str:
    """The file name of a split's fixed episode set: val_1shot.pt, test_5shot.pt, …"""
    return f"{split}_{shot}shot.pt"
