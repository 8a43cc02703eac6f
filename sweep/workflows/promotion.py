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
import time
from pathlib import Path
from typing import Any, Literal, cast

import torch

import data
from data.paths import checkpoint_file
from evaluation.device import resolve_device
from sweep.errors import ExperimentError
from sweep.scoring.checkpoint_scores import accuracy_summary, plain_json, score_checkpoint, test_episode_set
from sweep.storage import promotion_file
from sweep.storage.experiment import Experiment
from sweep.storage.promotion_file import (
    BaselineDifference,
    BaselineSection,
    Comparison,
    PromotedTrial,
    Promotion,
    ShotScore,
)
from sweep.storage.results import TrialRecord, load_trials, ranked


def _paired(
    results: list[PromotedTrial], accuracies: dict[str, dict[int, torch.Tensor]], shots: list[int]
) -> list[Comparison]:
    import evaluation

    comparisons = []
    for shot in shots:
        for first, second in itertools.combinations(results, 2):
            a, b = accuracies[first.trial_id][shot], accuracies[second.trial_id][shot]
            stats = evaluation.paired_comparison(a.double() * 100, b.double() * 100)
            comparisons.append(Comparison(shot=shot, a=first.trial_id, b=second.trial_id, **stats))
    return comparisons


def _entry(
    record: TrialRecord, rank: int | Literal["baseline"], accuracies: dict[int, torch.Tensor], selection_from_epoch: int
) -> PromotedTrial:
    """promotion.json's entry of one scored trial."""
    return PromotedTrial(
        rank=rank,
        trial_id=record.trial_id,
        params={name: plain_json(value) for name, value in record.params.items()},
        val={str(key): float(value) for key, value in record.best.items() if str(key).startswith("val_")},
        epoch=int(record.best.get("epoch", 0)),
        eligible_epochs=eligible_epochs(record, selection_from_epoch),
        checkpoint=str(record.best_checkpoint),
        test={str(shot): ShotScore(**accuracy_summary(acc)) for shot, acc in accuracies.items()},
    )


def eligible_epochs(record: Any, selection_from_epoch: int) -> list[int]:
    """The validated epochs whose checkpoints could be a trial's best (sweep.storage.results.eligible_rows)."""
    from sweep.storage.results import eligible_rows

    history = eligible_rows(record.history, selection_from_epoch)
    return sorted(int(epoch) for epoch in history["epoch"]) if "epoch" in history else []


def _baseline_section(
    found: Any,
    note: str,
    results: list[PromotedTrial],
    scored: dict[str, list[dict[int, torch.Tensor]]],
    entry: PromotedTrial | None,
) -> BaselineSection:
    """promotion.json's "baseline": which trial, its entry when it ranked below the promoted ones, and every promoted
    trial's paired difference to it per shot (over its seeds when promotion retrained some)."""
    from sweep.scoring import baseline

    if found is None:
        return BaselineSection(note=note)
    base_id = found.record.trial_id
    differences = {
        trial.trial_id: {
            str(shot): BaselineDifference(
                **baseline.paired_difference(
                    [runs[shot] for runs in scored[trial.trial_id]], [runs[shot] for runs in scored[base_id]]
                )
            )
            for shot in scored[base_id][0]
        }
        for trial in results
    }
    return BaselineSection(note=note, label=found.label, trial_id=base_id, differences=differences, entry=entry)


def run(
    experiment: Experiment, top_k: int | None = None, selections_path: Path | None = None, address: str | None = None
) -> Promotion:
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
    scoring: list[tuple[int | Literal["baseline"], TrialRecord]] = [
        *enumerate(promoted, start=1),
        *(("baseline", r) for r in outside),
    ]
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
            checkpoint = cast(Path, run.checkpoint)  # with_seed_results asks only for the runs that have one
            accuracies = score_checkpoint(checkpoint, novel, episode_sets, spec, device)
            scored[run.trial_id].append(accuracies)
            return {shot: accuracy_summary(acc)["mean"] for shot, acc in accuracies.items()}

        runs = seeds.retrain(spec, experiment, retrained, address)
        retrained = seeds.with_seed_results(retrained, runs, test_means)
        results, baseline_entry = retrained[: len(results)], (retrained[-1] if baseline_entry else None)
    promotion = Promotion(
        experiment=str(experiment.root),
        objective=spec.objective,
        selection_metric=spec.selection,
        shots=list(spec.promotion.shots),
        test_episodes={str(shot): str(experiment.test_episodes(shot)) for shot in spec.promotion.shots},
        trials=results,
        comparisons=_paired(results, {t: runs[0] for t, runs in scored.items()}, spec.promotion.shots),
        baseline=_baseline_section(found, note, results, scored, baseline_entry),
        seconds=round(time.perf_counter() - started, 1),
    )
    promotion_file.write(experiment.promotion_file, promotion)
    selections.merge(
        selections_path or selections.default_path(experiment), selections.entries_from_promotion(spec, promotion)
    )
    return promotion
