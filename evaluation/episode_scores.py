"""Episode scoring, once: features × episode sets × fine-tuning settings → per-episode accuracies per shot.

A trial's validation (sweep.trial.runner), promotion, the margin study and the calibration
(sweep.scoring.checkpoint_scores) and `evaluate_checkpoint` all score through `score_episode_sets`, and summarise
through `accuracy_summary`, so "the accuracy of these features on these episodes" has one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from evaluation.episode_accuracy import EpisodeIndex, evaluate
from evaluation.stats import mean_ci95


def score_episode_sets(
    features: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    episode_sets: Mapping[int, EpisodeIndex],
    head: Mapping[str, Any],
    *,
    seed: int,
    epochs: int | None = None,
    device: torch.device | str | None = None,
) -> dict[int, torch.Tensor]:
    """Per-episode query accuracies [E] in [0, 1] per shot: features [N, D] with labels [N], every episode of each
    shot's set fine-tuned at once with the fine-tuning `head` (evaluation.finetune_head), `seed` and `epochs`
    (FinetuneSettings' default when None) on `device`."""
    labels_t = torch.as_tensor(labels)
    settings = dict(head) if epochs is None else {**head, "epochs": epochs}
    return {
        shot: evaluate(features, labels_t, episodes, seed=seed, device=device, **settings)
        for shot, episodes in episode_sets.items()
    }


def accuracy_summary(accuracies: torch.Tensor) -> dict[str, float]:
    """{mean, ci95, episodes}: mean and 95% half-width in percent of per-episode accuracies [E] in [0, 1]."""
    mean, half_width = mean_ci95(accuracies.double() * 100)
    return {"mean": float(mean), "ci95": float(half_width), "episodes": int(accuracies.numel())}
