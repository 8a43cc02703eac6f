"""Names of data on disk: the image cache directory, episode-set files, the checkpoint file inside a checkpoint
directory and the marker of a diverged run (a leaf: imports nothing of ours, nor torch)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "NEGMARGIN_CACHE"
CHECKPOINT_FILE = "checkpoint.pt"  # the file of a checkpoint directory (a Tune checkpoint, a run's checkpoints/best)
DIVERGED_MARKER = "diverged.txt"  # in a run or Tune trial directory whose loss diverged, with the error's message


def default_cache_dir() -> Path:
    """$NEGMARGIN_CACHE, else ~/.cache/negmargin."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "negmargin")


def episode_file_name(split: str, shot: int) -> str:
    """The file name of a split's fixed episode set: val_1shot.pt, test_5shot.pt, …"""
    return f"{split}_{shot}shot.pt"


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file of `path`: the path itself, or CHECKPOINT_FILE inside a checkpoint directory."""
    path = Path(path)
    return path / CHECKPOINT_FILE if path.is_dir() else path
