"""Standalone reporter of `negmargin train`: TensorBoard scalars + HParams, checkpoints, summary.json, a progress bar.

Run directory:
    <out>/config.yaml                          the validated config, as run
    <out>/events.out.tfevents.*                scalars (train/* per epoch, val/* per validation) and HParams
    <out>/checkpoints/epoch_XXXX/checkpoint.pt one per validation epoch
    <out>/checkpoints/best/checkpoint.pt       best by the first configured shot's val accuracy
    <out>/summary.json                         final and best metrics, written at the end
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm

from evaluation.checkpoint import CHECKPOINT_FILE

DIVERGED_MARKER = "diverged.txt"  # written beside a run (or a Tune trial) whose loss diverged
TRAIN_SCALARS = ("train_loss", "train_acc", "lr", "images_per_s")


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


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint dict (CPU tensors), loaded with weights_only=True."""
    return torch.load(path, map_location="cpu", weights_only=True)


def atomic_save(state: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file beside `path`, then rename: a reader never sees half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def hparam_values(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Flat {dotted key: scalar} of a config dict for TensorBoard HParams (lists as text, None left out)."""
    values: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            values.update(hparam_values(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            values[name] = value
        elif value is not None:
            values[name] = str(value)
    return values


class RunDirReporter:
    """Reporter of one standalone run into `out` (see the module docstring for the layout)."""

    def __init__(
        self, out: Path, config: dict[str, Any], selection_metric: str, *, start_epoch: int = 0, progress: bool = True
    ) -> None:
        self.out = Path(out)
        self.config = config
        self.selection_metric = selection_metric
        # purge_step drops events a crashed run logged after its last checkpoint, so curves do not fold back.
        self.writer = SummaryWriter(log_dir=str(self.out), purge_step=start_epoch + 1 if start_epoch else None)
        self.best_metrics: dict[str, Any] | None = None
        self.last_metrics: dict[str, Any] | None = None
        best = best_checkpoint_path(self.out)
        if start_epoch and best.exists():
            self.best_metrics = load_checkpoint(best)["metrics"]
        self._postfix: dict[str, str] = {}
        self.bar = tqdm(
            total=config["epochs"], initial=start_epoch, unit="epoch", desc=self.out.name, disable=not progress
        )

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        """Per-epoch training scalars and the progress bar."""
        epoch = metrics["epoch"]
        for key in TRAIN_SCALARS:
            self.writer.add_scalar(f"train/{key}", metrics[key], epoch)
        self._postfix.update(loss=f"{metrics['train_loss']:.3f}", acc=f"{metrics['train_acc']:.1f}")
        self.bar.set_postfix(self._postfix, refresh=False)
        self.bar.update(1)

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any]) -> None:
        """Validation scalars, the epoch checkpoint, and the best one when this report improves on it."""
        epoch = metrics["epoch"]
        for key, value in metrics.items():
            if key.startswith("val_"):
                self.writer.add_scalar(f"val/{key.removeprefix('val_')}", value, epoch)
        self.writer.flush()
        path = epoch_checkpoint_path(self.out, epoch)
        atomic_save(checkpoint, path)
        score = metrics[self.selection_metric]
        if self.best_metrics is None or score > self.best_metrics[self.selection_metric]:
            best = best_checkpoint_path(self.out)
            best.parent.mkdir(parents=True, exist_ok=True)
            tmp = best.with_name(f".{best.name}.tmp")
            shutil.copyfile(path, tmp)
            os.replace(tmp, best)
            self.best_metrics = dict(metrics)
        self.last_metrics = dict(metrics)
        self._postfix[self.selection_metric] = f"{score:.2f}"
        self.bar.set_postfix(self._postfix)

    def close(self, final_metrics: dict[str, Any]) -> dict[str, Any]:
        """HParams with the final metrics, summary.json; returns the summary."""
        final = {key: value for key, value in final_metrics.items() if _is_number(value)}
        metric_tags = {f"final/{key}": float(value) for key, value in final.items()}
        experiment, start, end = hparams(hparam_values(self.config), metric_tags)
        file_writer = self.writer.file_writer
        for summary in (experiment, start, end):
            file_writer.add_summary(summary)
        for tag, value in metric_tags.items():
            self.writer.add_scalar(tag, value, int(final_metrics.get("epoch", 0)))
        self.writer.close()
        self.bar.close()
        summary = {
            "out": str(self.out),
            "final_metrics": final_metrics,
            "best_metric": self.selection_metric,
            "best_metrics": self.best_metrics,
            "best_checkpoint": str(best_checkpoint_path(self.out)) if self.best_metrics else None,
            "config": self.config,
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def abort(self) -> None:
        """Flush what was written and close (a failed run keeps its events and checkpoints)."""
        self.writer.close()
        self.bar.close()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
