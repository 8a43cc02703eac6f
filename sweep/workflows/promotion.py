"""Promotion: the top-k trials by validation → their best checkpoints → the fixed 600-episode test set.

Trials are ranked by the objective at their best checkpoint, which the spec's selection metric picks
(`SweepSpec.selection`: 5-shot validation in the paper's presets, as the published code; sweep/storage/results.py).

This module and the margin study (sweep.study) are the only places that read the test ("novel") split:
`data.load_split(..., allow_test=True)`.
Everything runs on the trials' device (`device` of the spec, resolved by sweep.trial.training.resolve_device, as a
trial and `negmargin evaluate` resolve theirs): feature extraction and the batched fine-tuning of every episode.
Every promoted configuration is scored on the same saved test episodes with the same fine-tuning seed, so the
paired comparisons between them are exact.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any, cast

import torch

import data
from data.atomic import write_text_atomically
from data.paths import checkpoint_file
from evaluation.device import resolve_device
from sweep.errors import ExperimentError
from sweep.scoring.checkpoint_scores import accuracy_summary, plain_json, score_checkpoint, test_episode_set
from sweep.storage.experiment import Experiment
from sweep.storage.results import TrialRecord, load_trials, ranked


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
                    **{k: plain_json(v) for k, v in stats.items()},
                }
            )
    return comparisons


def _entry(
    record: Any, rank: int | str, accuracies: dict[int, torch.Tensor], selection_from_epoch: int
) -> dict[str, Any]:
    """promotion.json's entry of one scored trial."""
    return {
        "rank": rank,
        "trial_id": record.trial_id,
        "params": record.params,
        "val": {key: value for key, value in record.best.items() if str(key).startswith("val_")},
        "epoch": int(record.best.get("epoch", 0)),
        "eligible_epochs": eligible_epochs(record, selection_from_epoch),
        "checkpoint": str(record.best_checkpoint),
        "test": {str(shot): accuracy_summary(acc) for shot, acc in accuracies.items()},
    }


def eligible_epochs(record: Any, selection_from_epoch: int) -> list[int]:
    """The validated epochs whose checkpoints could be a trial's best (sweep.storage.results.eligible_rows)."""
    from sweep.storage.results import eligible_rows

    history = eligible_rows(record.history, selection_from_epoch)
    return sorted(int(epoch) for epoch in history["epoch"]) if "epoch" in history else []


def _baseline_section(
    found: Any, note: str, results: list[dict[str, Any]], scored: dict[str, list[dict[int, torch.Tensor]]]
) -> dict[str, Any]:
    """promotion.json's "baseline": which trial, its scores, and every promoted trial's paired difference to it per
    shot (over its seeds when promotion retrained some)."""
    from sweep.scoring import baseline

    if found is None:
        return {"note": note}
    base_id = found.record.trial_id
    differences = {
        trial["trial_id"]: {
            str(shot): baseline.paired_difference(
                [runs[shot] for runs in scored[trial["trial_id"]]], [runs[shot] for runs in scored[base_id]]
            )
            for shot in scored[base_id][0]
        }
        for trial in results
    }
    return {"note": note, "label": found.label, "trial_id": base_id, "differences": differences}


def run(
    experiment: Experiment, top_k: int | None = None, selections_path: Path | None = None, address: str | None = None
) -> dict[str, Any]:
    """Score the top-k trials and the baseline on the test episodes; write promotion.json, merge the selections
    file; return it."""
    from sweep.scoring import baseline
    from sweep.storage import selections
    from sweep.tuning.grid_runner import SeedRun
    from sweep.workflows import extra_seeds as seeds

    spec = experiment.spec()
    records = load_trials(experiment, spec)
    candidates = [record for record in ranked(records) if record.best_checkpoint is not None]
    if not candidates:
        raise ExperimentError(f"{experiment.root}: no trial has a validation score and checkpoint to promote")
    promoted = candidates[: top_k or spec.promotion.top_k]
    found, note = baseline.find_baseline(records, spec)
    outside = [found.record] if found is not None and found.record not in promoted else []

    device = resolve_device(spec.device)  # the trials' device; a bad one fails before the test split is read
    started = time.perf_counter()
    novel = data.load_split(spec.dataset, "novel", allow_test=True, progress=False)
    episode_sets = {shot: test_episode_set(spec, experiment, novel, shot) for shot in spec.promotion.shots}

    experiment.promotion_dir.mkdir(exist_ok=True)
    scored: dict[str, list[dict[int, torch.Tensor]]] = {}  # trial id -> per-episode accuracies per shot, per seed
    entries = []
    scoring: list[tuple[int | str, TrialRecord]] = [*enumerate(promoted, start=1), *(("baseline", r) for r in outside)]
    for rank, record in scoring:
        checkpoint = cast(Path, record.best_checkpoint)  # every promoted trial and the baseline have one
        accuracies = score_checkpoint(checkpoint_file(checkpoint), novel, episode_sets, spec, device)
        scored[record.trial_id] = [accuracies]
        torch.save(dict(accuracies), experiment.promotion_dir / f"{record.trial_id}_accuracies.pt")
        entries.append(_entry(record, rank, accuracies, spec.selection_from_epoch))
    results = entries[: len(promoted)]
    baseline_entry = entries[len(promoted)] if outside else None
    if spec.promotion.extra_seeds:
        retrained = results + ([baseline_entry] if baseline_entry else [])

        def test_means(run: SeedRun) -> dict[int, float]:
            checkpoint = cast(Path, run.checkpoint)  # add_seed_results asks only for the runs that have one
            accuracies = score_checkpoint(checkpoint, novel, episode_sets, spec, device)
            scored[run.trial_id].append(accuracies)
            return {shot: accuracy_summary(acc)["mean"] for shot, acc in accuracies.items()}

        seeds.add_seed_results({"trials": retrained}, seeds.retrain(spec, experiment, retrained, address), test_means)
    promotion = {
        "experiment": str(experiment.root),
        "objective": spec.objective,
        "selection_metric": spec.selection,
        "shots": spec.promotion.shots,
        "test_episodes": {str(shot): str(experiment.test_episodes(shot)) for shot in spec.promotion.shots},
        "trials": results,
        "comparisons": _paired(results, {t: runs[0] for t, runs in scored.items()}, spec.promotion.shots),
        "baseline": {
            **_baseline_section(found, note, results, scored),
            **({"entry": baseline_entry} if baseline_entry else {}),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_text_atomically(experiment.promotion_file, json.dumps(promotion, indent=2, default=plain_json))
    selections.merge(
        selections_path or selections.default_path(experiment), selections.entries_from_promotion(spec, promotion)
    )
    return promotion
