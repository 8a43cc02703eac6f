"""Where a trial's checkpoints lie (torch-free).

The checkpoint format, its save and its load are evaluation/checkpoint.py's (evaluation.checkpoint.Checkpoint); the
file inside a checkpoint directory is data.paths.CHECKPOINT_FILE. A run or Tune trial whose loss diverged holds
data.paths.DIVERGED_MARKER, with the error's message.

Run directory of `negmargin train`:
    <out>/checkpoints/epoch_XXXX/checkpoint.pt  one per validation epoch
    <out>/checkpoints/best/checkpoint.pt        the best by the run's selection metric
"""

from __future__ import annotations

from pathlib import Path

from data.paths import CHECKPOINT_FILE


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
