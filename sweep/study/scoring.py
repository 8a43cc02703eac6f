"""Scoring a study's runs: the experiment's fixed novel test episodes, fixed episodes over the held-out base images,
and the paper's discriminability (Eq. 2–4) of both feature sets.

The novel episodes are promotion's (sweep.workflows.promotion.test_episode_set: the study is a promotion step and may
read the test split); the base ones are drawn once over the held-out part (data.split_base, the same part the runs were
trained without) and saved in study/episodes. Every run is scored on the same episodes with the same fine-tuning
seed, so the comparisons between margins are paired. A run's scores are saved in study/scores and reused while its
best checkpoint is the same.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

import data
import evaluation
from evaluation.checkpoint import Checkpoint
from sweep.errors import SpecError
from sweep.schema.spec import SweepSpec
from sweep.scoring import checkpoint_scores
from sweep.storage.experiment import Experiment
from sweep.study.layout import StudyDir
from sweep.study.margins import label
from sweep.study.request import BASE_EPISODE_SEED_OFFSET, StudyRequest
from sweep.study.tune_grid import MarginRun, holdout_spec

DOMAINS = ("novel", "base")  # base = the held-out base images


@dataclass(frozen=True)
class Domain:
    """Images uint8 [N, S, S, 3] and labels [N] a run is scored on, with a fixed episode set per shot."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    episode_sets: dict[int, data.EpisodeSet]


@dataclass(frozen=True)
class RunScores:
    """Per-episode accuracies [E] in [0, 1] per domain and shot, {"inter", "intra", "phi"} per domain, and the
    metrics the trial reported with its best checkpoint (epoch, train_acc, val_acc_<k>shot, …)."""

    accuracies: dict[str, dict[int, torch.Tensor]]
    discriminability: dict[str, dict[str, float]]
    checkpoint_metrics: dict[str, float]


def held_out_base(spec: SweepSpec, request: StudyRequest) -> data.CachedSplit:
    """The held-out part of the base split: the images the study's runs were trained without (their dataset section,
    hold-out included, read through data.load_base_parts as the runs read theirs)."""
    return data.load_base_parts(holdout_spec(spec, request).dataset, progress=False)[1]


def base_queries(held_out_labels: np.ndarray, spec: SweepSpec, holdout_fraction: float) -> int:
    """Queries per class of the base episodes: promotion's count, fewer when the held-out part is smaller (every
    class gives shot + queries images); SpecError when it cannot give even one query at the largest shot."""
    smallest = int(np.bincount(np.asarray(held_out_labels)).min())
    queries = min(spec.promotion.queries, smallest - max(spec.promotion.shots))
    if queries < 1:
        raise SpecError(
            f"--holdout-fraction {holdout_fraction}: holds out {smallest} image(s) of the smallest base class, but "
            f"{max(spec.promotion.shots)}-shot base episodes need at least {max(spec.promotion.shots) + 1}"
        )
    return queries


def check_holdout(spec: SweepSpec, holdout_fraction: float, holdout_seed: int) -> int:
    """The base episodes' query count for this held-out fraction, from the base split's labels alone (no images
    decoded): for checking a request before any cluster work."""
    labels = np.asarray(data.build_dataset(spec.dataset.name, spec.dataset.root, "base").labels)
    _, held_out = data.holdout_indices(labels, holdout_fraction, holdout_seed)
    return base_queries(labels[held_out], spec, holdout_fraction)


def check_novel(spec: SweepSpec) -> None:
    """SpecError unless the novel split (its file list only) can give promotion's test episodes at every shot."""
    labels = data.build_dataset(spec.dataset.name, spec.dataset.root, "novel").labels
    promotion = spec.promotion
    try:
        data.EpisodeSet.sample(labels, promotion.way, max(promotion.shots), promotion.queries, 1, seed=0)
    except data.DataError as error:
        raise SpecError(f"test episodes ({promotion.way}-way, {promotion.queries} queries): {error}") from None


def domains(spec: SweepSpec, experiment: Experiment, study: StudyDir, request: StudyRequest) -> dict[str, Domain]:
    """The novel test split with the experiment's test episodes, and the held-out base images with the study's."""
    ds, promotion = spec.dataset, spec.promotion
    novel = data.load_split(ds, "novel", allow_test=True, progress=False)
    held = held_out_base(spec, request)
    queries = base_queries(held.labels, spec, request.holdout_fraction)
    base_sets = {
        shot: data.EpisodeSet.load_or_sample(
            study.base_episodes(shot),
            held.labels,
            n_way=promotion.way,
            n_shot=shot,
            n_query=queries,
            n_episodes=promotion.test_episodes,
            seed=spec.seed + BASE_EPISODE_SEED_OFFSET,
            class_names=held.class_names,
        )
        for shot in promotion.shots
    }
    novel_sets = {shot: checkpoint_scores.test_episode_set(spec, experiment, novel, shot) for shot in promotion.shots}
    return {
        "novel": Domain("novel", novel.images, novel.labels, novel_sets),
        "base": Domain("base", held.images, held.labels, base_sets),
    }


def score_run(run: MarginRun, domains: dict[str, Domain], spec: SweepSpec, device: torch.device) -> RunScores:
    """Features of every domain under the run's best checkpoint, its episodes fine-tuned, its discriminability."""
    images = {name: domain.images for name, domain in domains.items()}
    checkpoint = cast(Path, run.checkpoint)  # scores_of scores the runs that have one
    features, head = checkpoint_scores.checkpoint_features(checkpoint, images, device)
    accuracies = {
        name: checkpoint_scores.score_features(features[name], domain.labels, domain.episode_sets, head, spec, device)
        for name, domain in domains.items()
    }
    separation = {name: evaluation.discriminability(features[name], domain.labels) for name, domain in domains.items()}
    return RunScores(accuracies, separation, reported_metrics(checkpoint))


def reported_metrics(checkpoint: Path) -> dict[str, float]:
    """The numeric metrics a trial reported with this checkpoint file (memory-mapped: the weights are not read)."""
    metrics = Checkpoint.load(checkpoint, mmap=True).metrics
    return {key: float(value) for key, value in metrics.items() if isinstance(value, (int, float))}


def scores_of(
    runs: list[MarginRun], domains: dict[str, Domain], spec: SweepSpec, study: StudyDir, device: torch.device
) -> dict[tuple[float, int], RunScores]:
    """The scores of every run that has a checkpoint, by (margin, seed): read from study/scores when they were
    made from the same checkpoint, else scored and saved there."""
    from data.atomic import write_atomically

    scored = {}
    for run in runs:
        if run.checkpoint is None:
            continue
        path = study.scores_file(label(run.margin), run.seed)
        saved = _load_scores(path, str(run.checkpoint))
        if saved is None:
            saved = score_run(run, domains, spec, device)
            state: dict[str, Any] = {
                "checkpoint": str(run.checkpoint),
                "accuracies": saved.accuracies,
                "discriminability": saved.discriminability,
                "checkpoint_metrics": saved.checkpoint_metrics,
            }
            write_atomically(path, functools.partial(torch.save, state))
        scored[(run.margin, run.seed)] = saved
    return scored


def _load_scores(path: Any, checkpoint: str) -> RunScores | None:
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or state.get("checkpoint") != checkpoint:
        return None
    return RunScores(state["accuracies"], state["discriminability"], state.get("checkpoint_metrics", {}))
