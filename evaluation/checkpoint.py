"""The checkpoint format: one typed definition, its atomic save and its safe load (the only code that reads or writes
a checkpoint file), and the backbone it rebuilds for evaluation.

A checkpoint is a torch.save'd dict of tensors and plain containers (loaded with weights_only=True, so a file that
asks to build any other object is refused):
  "model_spec":       {"backbone": str, "backbone_kwargs": dict, "loss": str, "image_size": int,
                       "num_classes": int | None, "scale": float | None, "margin": float | None}   (ModelSpec)
  "backbone_state":   the backbone's state_dict
  "epoch":            int, the last trained epoch
  "metrics":          {name: number}, what the trial reported with it
  "config":           the trial config it was trained with (TrialConfig.model_dump()); its "dataset" section says
                      how the images were cached, so `negmargin evaluate` reads the trial's cache again
and, in a checkpoint a trial can resume from (TrainingState; written by sweep.trial at every validation epoch):
  "head_state", "optimizer_state", "scheduler_state": state_dicts of the margin head, Adam and the LR schedule
  "iteration":        int, optimizer steps taken
  "rng_state":        {"device_type": str, "shuffle", "augment", "torch_cpu": uint8 tensors, "torch_cuda" on CUDA}
A file holding "model_spec" and "backbone_state" only is a valid (evaluation-only) checkpoint.
torch.save writes a zip archive whose directory comes last, so a file cut short (a full disk, an I/O error, a copy
into the experiment interrupted) lacks it: `is_whole` tells, reading only the file's end.
Where checkpoints lie (a file, or a directory holding data.paths.CHECKPOINT_FILE) is named in data/paths.py.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from data.atomic import write_atomically
from data.paths import checkpoint_file
from evaluation.errors import EvaluationError
from evaluation.finetune import finetune_head

_REFUSED_GLOBAL = re.compile(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)")


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds the trained network: backbone name (models.list_backbones()) and its build arguments, the loss
    (models.LOSSES; it sets the fine-tuning head), the model input size in pixels, and the training head's size and
    settings (num_classes, β = scale, margin m)."""

    backbone: str
    backbone_kwargs: dict[str, Any]
    loss: str
    image_size: int
    num_classes: int | None = None
    scale: float | None = None
    margin: float | None = None


@dataclass(frozen=True)
class TrainingState:
    """What resuming a trial needs besides the backbone: head, optimizer and schedule states, the optimizer steps
    taken, and every random stream ({"device_type", "shuffle", "augment", "torch_cpu"[, "torch_cuda"]})."""

    head_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    scheduler_state: dict[str, Any]
    iteration: int
    rng_state: dict[str, Any]


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint: the network (spec + backbone weights), the epoch and metrics it was reported with, the trial
    config it was trained with, and the training state a resumed trial continues from (None: evaluation only)."""

    model: ModelSpec
    backbone_state: dict[str, torch.Tensor]
    epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    training: TrainingState | None = None

    @property
    def dataset(self) -> dict[str, Any]:
        """The "dataset" section of the trial config it was trained with ({} if it carries none)."""
        section = self.config.get("dataset")
        return dict(section) if isinstance(section, dict) else {}

    def state(self) -> dict[str, Any]:
        """The torch.save-able dict of this checkpoint (the layout in the module docstring)."""
        state: dict[str, Any] = {
            "model_spec": dict(vars(self.model)),
            "backbone_state": self.backbone_state,
            "epoch": self.epoch,
            "metrics": dict(self.metrics),
            "config": self.config,
        }
        if self.training is not None:
            state.update(vars(self.training))
        return state

    def save(self, path: str | Path) -> Path:
        """torch.save this checkpoint to `path` atomically (a reader never sees half a file); returns `path`."""
        state = self.state()
        return write_atomically(path, lambda stream: torch.save(state, stream))

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> Checkpoint:
        """The checkpoint in a file or checkpoint directory, tensors on the CPU (memory-mapped with `mmap`: weights
        are read only when used); EvaluationError naming the file if it is missing, unreadable or not a checkpoint."""
        path = checkpoint_file(path)
        if not path.is_file():
            raise EvaluationError(f"checkpoint {path} does not exist")
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except Exception as error:  # not a torch file, or holds objects weights_only refuses
            raise EvaluationError(f"checkpoint {path} cannot be read: {_unreadable_reason(error)}") from None
        return _from_state(state, path)


def is_whole(path: str | Path) -> bool:
    """Whether the checkpoint file at `path` (or in the checkpoint directory `path`) was written to its end: its zip
    directory, which torch.save writes last, is there and names no entry beyond the file's end. Reads the directory
    only (no weights, nothing unpickled)."""
    import zipfile

    path = checkpoint_file(path)
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return bool(entries) and all(entry.header_offset + entry.compress_size <= size for entry in entries)


def _from_state(state: object, path: Path) -> Checkpoint:
    """The Checkpoint of a loaded dict, every field checked; EvaluationError naming the first problem."""
    if not isinstance(state, dict):
        raise EvaluationError(f"checkpoint {path} is not a dict (got {type(state).__name__})")
    for key in ("model_spec", "backbone_state"):
        if key not in state:
            raise EvaluationError(f"checkpoint {path} has no key {key!r} (not a negmargin trial checkpoint?)")
    _expect(state, "backbone_state", dict, path)
    _expect(state, "metrics", dict, path, optional=True)
    _expect(state, "config", dict, path, optional=True)
    _expect(state, "epoch", int, path, optional=True)
    training = None
    if "optimizer_state" in state:
        for key, kind in (("head_state", dict), ("optimizer_state", dict), ("scheduler_state", dict)):
            _expect(state, key, kind, path)
        _expect(state, "iteration", int, path)
        _expect(state, "rng_state", dict, path)
        training = TrainingState(
            state["head_state"],
            state["optimizer_state"],
            state["scheduler_state"],
            state["iteration"],
            state["rng_state"],
        )
    return Checkpoint(
        _model_spec(state["model_spec"], path),
        state["backbone_state"],
        epoch=state.get("epoch", 0),
        metrics=state.get("metrics", {}),
        config=state.get("config", {}),
        training=training,
    )


def _expect(state: dict, key: str, kind: type, path: Path, *, optional: bool = False) -> None:
    if optional and key not in state:
        return
    if not isinstance(state.get(key), kind):
        raise EvaluationError(
            f"checkpoint {path}: {key!r} must be a {kind.__name__}, got {type(state.get(key)).__name__}"
        )


def _model_spec(spec: object, path: Path) -> ModelSpec:
    """The checked "model_spec" entry of a loaded checkpoint."""
    if not isinstance(spec, dict):
        raise EvaluationError(f"checkpoint {path}: 'model_spec' must be a dict")
    for key, kind in (("backbone", str), ("backbone_kwargs", dict), ("loss", str), ("image_size", int)):
        if not isinstance(spec.get(key), kind):
            raise EvaluationError(
                f"checkpoint {path}: model_spec[{key!r}] must be a {kind.__name__}, got {spec.get(key)!r}"
            )
    if spec["image_size"] < 1:
        raise EvaluationError(f"checkpoint {path}: model_spec['image_size'] must be >= 1, got {spec['image_size']}")
    known = {key: spec[key] for key in ModelSpec.__dataclass_fields__ if key in spec}
    return ModelSpec(**known)


def _first_line(error: BaseException) -> str:
    """First line of an exception message (torch's unpickling errors span many lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _unreadable_reason(error: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, in one line: the object it asked to build, or torch's own
    first line (never its advice to retry with weights_only=False)."""
    refused = _REFUSED_GLOBAL.search(str(error))
    if refused:
        return f"it asks to build a {refused.group(1)} object, and checkpoints are loaded as tensors only"
    if "Weights only load failed" in str(error):
        return "it holds objects other than tensors and plain containers, and checkpoints are loaded as tensors only"
    return _first_line(error)


def training_dataset(path: str | Path) -> dict[str, Any]:
    """The "dataset" section of the trial config a checkpoint was trained with, {} if it carries none (memory-mapped:
    the weights are not read)."""
    return Checkpoint.load(path, mmap=True).dataset


def backbone_of(checkpoint: Checkpoint, device: torch.device | str, path: str | Path) -> tuple[nn.Module, dict]:
    """(backbone of `checkpoint` in eval mode on `device`, fine-tuning head settings of its loss); `path` names it in
    errors."""
    import models  # lazily: building a backbone is this function's job only

    spec = checkpoint.model
    try:
        head = finetune_head(spec.loss)
    except EvaluationError as error:
        raise EvaluationError(f"checkpoint {path}: model_spec['loss']: {error}") from None
    try:
        backbone = models.build_backbone(spec.backbone, **spec.backbone_kwargs)
    except models.ModelConfigError as error:
        raise EvaluationError(f"checkpoint {path}: {error}") from None
    try:
        backbone.load_state_dict(checkpoint.backbone_state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise EvaluationError(
            f"checkpoint {path}: backbone_state does not fit backbone {spec.backbone!r}: {_first_line(error)}"
        ) from None
    return backbone.to(device).eval(), head


def load_backbone_from_checkpoint(path: str | Path, device: torch.device | str) -> tuple[nn.Module, dict, int]:
    """(backbone in eval mode on `device`, fine-tuning head settings of its loss, image size) of a checkpoint."""
    path = checkpoint_file(path)
    checkpoint = Checkpoint.load(path)
    backbone, head = backbone_of(checkpoint, device, path)
    return backbone, head, checkpoint.model.image_size
