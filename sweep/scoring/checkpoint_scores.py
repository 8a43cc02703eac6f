"""Scoring checkpoints on an experiment's fixed test episodes: the library promotion, the margin study and the
calibration share.

`test_episode_set` samples (once, then reloads) the test episodes of a shot; `score_checkpoint` extracts one
checkpoint's novel features on the trials' device and fine-tunes every episode of every shot there
(evaluation.score_episode_sets), with the spec's seed, so that any two checkpoints scored here are compared on
identical episodes and fine-tuning randomness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import data
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import Experiment

TEST_EPISODE_SEED_OFFSET = 10_000  # test episodes use their own stream, never the validation one


def test_episode_set(spec: SweepSpec, experiment: Experiment, novel: Any, shot: int) -> Any:
    """The fixed test episode set of this experiment for `shot` (sampled once, saved, checked when reloaded)."""
    promotion = spec.promotion
    return data.EpisodeSet.load_or_sample(
        experiment.test_episodes(shot),
        novel.labels,
        n_way=promotion.way,
        n_shot=shot,
        n_query=promotion.queries,
        n_episodes=promotion.test_episodes,
        seed=spec.seed + TEST_EPISODE_SEED_OFFSET,
        class_names=novel.class_names,
    )


def checkpoint_features(
    checkpoint: Path, images: dict[str, np.ndarray], device: torch.device
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Features [N, D] of each named uint8 image array [N, S, S, 3] under one checkpoint's backbone (extracted on
    `device`), and the fine-tuning head settings of its loss."""
    import evaluation

    backbone, head, image_size = evaluation.load_backbone_from_checkpoint(checkpoint, device)
    features = {
        name: evaluation.extract_features(backbone, array, batch_size=256, device=device, image_size=image_size)
        for name, array in images.items()
    }
    return features, head


def score_features(
    features: torch.Tensor,
    labels: np.ndarray,
    episode_sets: dict[int, Any],
    head: dict[str, Any],
    spec: SweepSpec,
    device: torch.device,
) -> dict[int, torch.Tensor]:
    """Per-episode accuracies [E] of features [N, D] with labels [N] for each shot's episode set, fine-tuned as
    promotion does (evaluation.score_episode_sets with the spec's seed and promotion.finetune_epochs)."""
    import evaluation

    return evaluation.score_episode_sets(
        features, labels, episode_sets, head, seed=spec.seed, epochs=spec.promotion.finetune_epochs, device=device
    )


def score_checkpoint(
    checkpoint: Path, novel: Any, episode_sets: dict[int, Any], spec: SweepSpec, device: torch.device
) -> dict[int, torch.Tensor]:
    """Per-episode test accuracies [E] of one checkpoint file for each shot: features extracted once on `device`,
    every episode set fine-tuned there."""
    features, head = checkpoint_features(checkpoint, {"novel": novel.images}, device)
    return score_features(features["novel"], novel.labels, episode_sets, head, spec, device)


def plain_json(value: Any) -> Any:
    """A JSON-ready copy of a tensor, numpy scalar or tuple (json.dumps' `default`)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, tuple):
        return [plain_json(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
