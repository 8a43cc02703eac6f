"""What a sweep will write into its experiment directory, estimated before the first trial and compared with the
free space of the experiment's filesystem.

A trial keeps KEPT_CHECKPOINTS checkpoints (Tune's CheckpointConfig(num_to_keep)), and each running trial writes one
more before its worst is deleted; a checkpoint holds the backbone and head weights and Adam's two moments of each
(float32), plus its training state. Each trial also writes its results (Tune's JSON and CSV rows) and TensorBoard
curves, and the experiment its episode sets, Optuna study and report: PER_TRIAL_FILES and PER_EXPERIMENT_FILES,
measured on the glyph preset and rounded up.
"""

from __future__ import annotations

from pathlib import Path

from sweep.schema.spec import SweepSpec
from sweep.storage.faults import free_bytes, human_bytes

KEPT_CHECKPOINTS = 2  # sweep.tuning.tuner's CheckpointConfig(num_to_keep=2)
FLOAT_BYTES = 4
COPIES_PER_WEIGHT = 3  # the weight and Adam's two moments
CHECKPOINT_OVERHEAD = 64 * 1024  # pickle framing, the schedule, the config
PER_TRIAL_FILES = 128 * 1024  # result.json, progress.csv, params, TensorBoard curves of one trial
PER_EXPERIMENT_FILES = 1024 * 1024  # episode sets, optuna.db, Tune's state and its good copy, report, figure


def checkpoint_bytes(spec: SweepSpec, num_classes: int) -> int:
    """One trial checkpoint of `spec`'s backbone and head over `num_classes` base classes, in bytes."""
    import models

    backbone = models.build_backbone(spec.backbone)
    in_dim = models.feature_dim(backbone, spec.dataset.image_size)
    weights = sum(parameter.numel() for parameter in backbone.parameters()) + in_dim * (num_classes + 1)
    return weights * FLOAT_BYTES * COPIES_PER_WEIGHT + CHECKPOINT_OVERHEAD


def sweep_bytes(spec: SweepSpec, checkpoint: int) -> int:
    """Everything the sweep writes: checkpoints kept × their size × trials, one checkpoint more per running trial,
    the trials' results and TensorBoard files, the experiment's own files."""
    per_trial = checkpoint * KEPT_CHECKPOINTS + PER_TRIAL_FILES
    return spec.num_samples * per_trial + spec.max_concurrent * checkpoint + PER_EXPERIMENT_FILES


def base_classes(spec: SweepSpec) -> int:
    """The number of classes of the spec's base split (what the head is trained over)."""
    import data

    return len(data.build_dataset(spec.dataset.name, spec.dataset.root, "base").class_names)


def shortfall(spec: SweepSpec, root: Path, already_written: int = 0) -> tuple[int, int, int] | None:
    """(bytes the sweep will still write, one checkpoint's bytes, bytes free at `root`) when the free space is below
    that; None when it fits (or the free space cannot be read). `already_written`: what its trials wrote so far."""
    free = free_bytes(root)
    if free is None:
        return None
    checkpoint = checkpoint_bytes(spec, base_classes(spec))
    needed = max(sweep_bytes(spec, checkpoint) - already_written, checkpoint)
    return (needed, checkpoint, free) if free < needed else None


def warning_line(root: Path, needed: int, free: int) -> str:
    """The one warning line: both figures and what happens if the space runs out."""
    return (
        f"Warning:     the sweep may write {human_bytes(needed)} to {root}, which has {human_bytes(free)} free; "
        "if it fills up the sweep stops in one line (exit 4) and the same command resumes it once space is freed"
    )
