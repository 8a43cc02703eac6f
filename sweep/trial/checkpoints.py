"""Checkpoint file names and their atomic save and safe load: torch is imported only to save or load one.

A checkpoint is a directory holding CHECKPOINT_FILE (a Tune checkpoint, a run's checkpoints/epoch_XXXX or
checkpoints/best); its content is described in evaluation/checkpoint.py. A run or Tune trial whose loss diverged
holds DIVERGED_MARKER, with the error's message.

Run directory of `negmargin train`:
    <out>/checkpoints/epoch_XXXX/checkpoint.pt  one per validation epoch
    <out>/checkpoints/best/checkpoint.pt        the best by the run's selection metric
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data.atomic import write_atomically

CHECKPOINT_FILE = "checkpoint.pt"
DIVERGED_MARKER = "diverged.txt"


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file of `path`: the path itself, or CHECKPOINT_FILE inside a checkpoint directory."""
    path = Path(path)
    return path / CHECKPOINT_FILE if path.is_dir() else path


def epoch_checkpoint_path(out: Path, epoch: int) -> Path:
    """<out>/checkpoints/epoch_XXXX/checkpoint.pt."""
    return out / "checkpoints" / f"epoch_{epoch:04d}" / CHECKPOINT_FILE


def best_checkpoint_path(out: Path) -> Path:
    """<out>/checkpoints/best/checkpoint.pt."""
    return out / "checkpoints" / "best" / CHECKPOINT_FILE


def last_checkpoint_path(out: Path) -> Path | None:
    """The epoch checkpoint of the highest epoch under <out>/checkpoints, or None."""
    found = sorted((out / "checkpoints").glob(f"epoch_*/{CHECKPOINT_FILE}"))
    return found[-1] if found else None


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """torch.save `state` to `path` atomically: a reader never sees half a checkpoint."""
    import torch

    write_atomically(path, lambda stream: torch.save(state, stream))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint dict (CPU tensors), loaded with weights_only=True."""
    import torch

    return torch.load(checkpoint_file(path), map_location="cpu", weights_only=True)
