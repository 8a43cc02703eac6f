"""Standalone reporter of `negmargin train`: TensorBoard scalars + HParams, checkpoints, summary.json, a progress bar.

Run directory:
    <out>/config.yaml                          the validated config, as run
    <out>/events.out.tfevents.*                scalars (train/* per epoch, val/* per validation) and HParams
    <out>/checkpoints/epoch_XXXX/checkpoint.pt one per validation epoch
    <out>/checkpoints/best/checkpoint.pt       best by the config's selection metric (TrialConfig.selection)
    <out>/summary.json                         final and best metrics, written at the end
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm

from data.atomic import write_atomically, write_text_atomically
from evaluation.checkpoint import Checkpoint
from sweep.errors import TrialConfigError
from sweep.schema.objectives import objective_value, selection_score
from sweep.schema.trial_config import TrialConfig
from sweep.trial.checkpoints import best_checkpoint_path, epoch_checkpoint_path, last_checkpoint_path

TRAIN_SCALARS = ("train_loss", "train_acc", "lr", "images_per_s")
DEFAULT_RUNS_DIR = Path("runs")


def default_out_dir(config: TrialConfig, runs_dir: Path = DEFAULT_RUNS_DIR) -> Path:
    """runs/<YYYYmmdd-HHMMSS>-<backbone>-<loss>-<6 hex>: never shared by two runs."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return runs_dir / f"{stamp}-{config.backbone}-{config.loss}-{secrets.token_hex(3)}"


def prepare_out_dir(out: Path | None, config: TrialConfig, resume: bool) -> tuple[Path, Checkpoint | None]:
    """The run directory and, with `resume`, its last checkpoint; refuses to reuse a non-empty directory otherwise."""
    if resume:
        if out is None:
            raise TrialConfigError("--resume needs --out DIR (the run directory to continue)")
        last = last_checkpoint_path(out)
        if last is None:
            raise TrialConfigError(f"--out {out}: no checkpoints/epoch_*/checkpoint.pt to resume from")
        return out, Checkpoint.load(last)
    if out is None:
        out = default_out_dir(config)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TrialConfigError(
            f"--out {out}: exists and is not empty; choose a new directory or pass --resume to continue it"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out, None


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
        best = best_checkpoint_path(self.out)
        if start_epoch and best.exists():
            self.best_metrics = Checkpoint.load(best, mmap=True).metrics
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

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint) -> None:
        """Validation scalars, the epoch checkpoint, and the best one when this report improves on it."""
        epoch = metrics["epoch"]
        for key, value in metrics.items():
            if key.startswith("val_"):
                self.writer.add_scalar(f"val/{key.removeprefix('val_')}", value, epoch)
        self.writer.flush()
        path = epoch_checkpoint_path(self.out, epoch)
        checkpoint.save(path)
        score = objective_value(metrics, self.selection_metric)
        ranked_by = self.config.get("selection_from_epoch", 1)
        new_score = selection_score(metrics, self.selection_metric, ranked_by)
        best_score = (
            None if self.best_metrics is None else selection_score(self.best_metrics, self.selection_metric, ranked_by)
        )
        if best_score is None or (new_score is not None and new_score > best_score):
            with open(path, "rb") as saved:
                write_atomically(best_checkpoint_path(self.out), lambda stream: shutil.copyfileobj(saved, stream))
            self.best_metrics = dict(metrics)
        self._postfix[self.selection_metric] = f"{score:.2f}"
        self.bar.set_postfix(self._postfix)

    def close(self, final_metrics: dict[str, Any]) -> dict[str, Any]:
        """HParams with the final metrics, summary.json; returns the summary."""
        final = {key: value for key, value in final_metrics.items() if _is_number(value)}
        metric_tags = {f"final/{key}": float(value) for key, value in final.items()}
        experiment, start, end = hparams(hparam_values(self.config), metric_tags)
        file_writer = self.writer.file_writer
        for summary in (experiment, start, end):
            file_writer.add_summary(summary)  # type: ignore[attr-defined]  # torch types file_writer as its initial None
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
        write_text_atomically(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    def abort(self) -> None:
        """Flush what was written and close (a failed run keeps its events and checkpoints)."""
        self.writer.close()
        self.bar.close()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
