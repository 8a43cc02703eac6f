"""Promotion: the top-k trials by validation → their best checkpoints → the fixed 600-episode test set.

This module is the only place that reads the test ("novel") split: `data.load_split(..., allow_test=True)`.
Every promoted configuration is scored on the same saved test episodes with the same fine-tuning seed, so the
paired comparisons between them are exact.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import torch

from sweep.errors import ExperimentError
from sweep.experiment import Experiment
from sweep.results import load_trials, ranked
from sweep.spec import SweepSpec
from sweep.tuner import CHECKPOINT_FILE

TEST_EPISODE_SEED_OFFSET = 10_000  # test episodes use their own stream, never the validation one


def test_episode_set(spec: SweepSpec, experiment: Experiment, labels: Any, class_names: list[str], shot: int) -> Any:
    """The fixed test episode set of this experiment for `shot` (sampled once, saved, reloaded after)."""
    import data

    path = experiment.test_episodes(shot)
    if path.exists():
        return data.EpisodeSet.load(path)
    promotion = spec.promotion
    episodes = data.EpisodeSet.sample(
        labels,
        promotion.way,
        shot,
        promotion.queries,
        promotion.test_episodes,
        spec.seed + TEST_EPISODE_SEED_OFFSET,
        class_names=class_names,
    )
    episodes.save(path)
    return episodes


def _device(spec: SweepSpec) -> torch.device:
    if spec.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec.device)


def score_checkpoint(
    checkpoint_file: Path, novel: Any, episode_sets: dict[int, Any], spec: SweepSpec, device: torch.device
) -> dict[int, torch.Tensor]:
    """Per-episode test accuracies [E] of one checkpoint, for each shot (features extracted once, reused by every episode)."""
    import evaluation

    backbone, head, image_size = evaluation.load_backbone_from_checkpoint(checkpoint_file, device)
    features = evaluation.extract_features(backbone, novel.images, batch_size=256, device=device, image_size=image_size)
    labels = torch.as_tensor(novel.labels)
    return {
        shot: evaluation.evaluate(
            features, labels, episodes, seed=spec.seed, epochs=spec.promotion.finetune_epochs, **head
        )
        for shot, episodes in episode_sets.items()
    }


def _summary(accuracies: torch.Tensor) -> dict[str, float]:
    import evaluation

    mean, half_width = evaluation.mean_ci95(accuracies.double() * 100)
    return {"mean": float(mean), "ci95": float(half_width), "episodes": int(accuracies.numel())}


def _paired(
    results: list[dict[str, Any]], accuracies: dict[str, dict[int, torch.Tensor]], shots: list[int]
) -> list[dict[str, Any]]:
    import evaluation

    comparisons = []
    for shot in shots:
        for first, second in itertools.combinations(results, 2):
            a, b = accuracies[first["trial_id"]][shot], accuracies[second["trial_id"]][shot]
            stats = evaluation.paired_comparison(a.double() * 100, b.double() * 100)
            comparisons.append(
                {
                    "shot": shot,
                    "a": first["trial_id"],
                    "b": second["trial_id"],
                    **{k: _plain(v) for k, v in stats.items()},
                }
            )
    return comparisons


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def run(
    experiment: Experiment, top_k: int | None = None, selections_path: Path | None = None, address: str | None = None
) -> dict[str, Any]:
    """Score the top-k trials on the test episodes; write promotion.json, merge the selections file; return the result."""
    import data
    from sweep import seeds, selections

    spec = experiment.spec()
    candidates = [record for record in ranked(load_trials(experiment, spec)) if record.best_checkpoint is not None]
    if not candidates:
        raise ExperimentError(f"{experiment.root}: no trial has a validation score and checkpoint to promote")
    promoted = candidates[: top_k or spec.promotion.top_k]

    started = time.perf_counter()
    novel = data.load_split(
        spec.dataset.name, spec.dataset.root, "novel", spec.dataset.image_size, spec.dataset.cache, allow_test=True
    )
    episode_sets = {
        shot: test_episode_set(spec, experiment, novel.labels, novel.class_names, shot) for shot in spec.promotion.shots
    }
    device = _device(spec)

    experiment.promotion_dir.mkdir(exist_ok=True)
    accuracies: dict[str, dict[int, torch.Tensor]] = {}
    results = []
    for rank, record in enumerate(promoted, start=1):
        accuracies[record.trial_id] = score_checkpoint(
            record.best_checkpoint / CHECKPOINT_FILE, novel, episode_sets, spec, device
        )
        torch.save(
            {shot: acc for shot, acc in accuracies[record.trial_id].items()},
            experiment.promotion_dir / f"{record.trial_id}_accuracies.pt",
        )
        results.append(
            {
                "rank": rank,
                "trial_id": record.trial_id,
                "params": record.params,
                "val": {key: value for key, value in record.best.items() if str(key).startswith("val_")},
                "epoch": int(record.best.get("epoch", 0)),
                "checkpoint": str(record.best_checkpoint),
                "test": {str(shot): _summary(acc) for shot, acc in accuracies[record.trial_id].items()},
            }
        )
    if spec.promotion.extra_seeds:

        def test_means(checkpoint_file: Path) -> dict[int, float]:
            scored = score_checkpoint(checkpoint_file, novel, episode_sets, spec, device)
            return {shot: _summary(acc)["mean"] for shot, acc in scored.items()}

        seeds.add_seed_results({"trials": results}, seeds.retrain(spec, experiment, results, address), test_means)
    promotion = {
        "experiment": str(experiment.root),
        "objective": spec.objective,
        "shots": spec.promotion.shots,
        "test_episodes": {str(shot): str(experiment.test_episodes(shot)) for shot in spec.promotion.shots},
        "trials": results,
        "comparisons": _paired(results, accuracies, spec.promotion.shots),
        "seconds": round(time.perf_counter() - started, 1),
    }
    _write_json(experiment.promotion_file, promotion)
    selections.merge(
        selections_path or selections.default_path(experiment), selections.entries_from_promotion(spec, promotion)
    )
    return promotion


def _write_json(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(content, indent=2, default=_plain))
    temporary.replace(path)


def load(experiment: Experiment) -> dict[str, Any] | None:
    """The promotion result of an experiment, or None before promotion."""
    if not experiment.promotion_file.exists():
        return None
    return json.loads(experiment.promotion_file.read_text())
