"""Before a sweep or a margin study does any cluster work: its dataset checked against the spec (one SpecError line
naming the key), the training splits decoded into the image cache, and the fixed validation episodes sampled."""

from __future__ import annotations

from typing import Any

from sweep.errors import SpecError
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import Experiment


def check_dataset(spec: SweepSpec, promote: bool = True) -> None:
    """Everything the sweep needs of its dataset, before any experiment or cluster work: the base and val splits
    open and every image of them decodes (into the image cache the trials then read), the val split holds the
    validation episodes (validation.way classes of validation.shots + queries images), and, when the sweep promotes,
    the novel split holds the promotion episodes (its file list only: the test split is read by promotion alone)."""
    import data

    d = spec.dataset
    v, p = spec.validation, spec.promotion
    _check_episode_sizes(data.build_dataset(d.name, d.root, "val"), "validation", v.way, v.shots, v.queries)
    if promote:
        _check_episode_sizes(data.build_dataset(d.name, d.root, "novel"), "promotion", p.way, p.shots, p.queries)
    data.prepare_splits(d, ("base", "val"))


def _check_episode_sizes(split: Any, key: str, way: int, shots: list[int], queries: int) -> None:
    """SpecError naming `key` unless `split` (an ImageDataset) has `way` classes of max(shots) + queries images."""
    import numpy as np

    counts = np.bincount(np.asarray(split.labels), minlength=len(split.class_names))
    where = f"the {split.split} split of {split.name}"
    if len(counts) < way:
        raise SpecError(f"{key}.way: {way} exceeds the {len(counts)} classes of {where}")
    needed = max(shots) + queries
    smallest = int(np.argmin(counts))
    if counts[smallest] < needed:
        raise SpecError(
            f"{key}.shots: {max(shots)} shots + {queries} queries need {needed} images per class; class "
            f"{split.class_names[smallest]} of {where} has {int(counts[smallest])}"
        )


def prepare_validation_episodes(spec: SweepSpec, experiment: Experiment) -> None:
    """Sample the fixed validation episode sets once, before any trial, so every trial scores on the same episodes."""
    import data

    missing = [shot for shot in spec.validation.shots if not experiment.val_episodes(shot).exists()]
    if not missing:
        return
    from sweep.trial.runner import sample_validation_episodes

    val = data.build_dataset(spec.dataset.name, spec.dataset.root, "val")
    for shot in missing:
        sample_validation_episodes(spec.validation, val.labels, val.class_names, shot, experiment.val_episodes(shot))
