"""Promotion: the top-k trials by validation → their best checkpoints → the fixed 600-episode test set.

Trials are ranked by the objective at their best checkpoint, which the spec's selection metric picks
(`SweepSpec.selection`: 5-shot validation in the paper's presets, as the published code; sweep/storage/results.py).
The answer per shot is chosen among the promoted trials on validation (sweep.storage.selections): each trial's own
or, with promotion.extra_seeds, its mean over the configuration's training seeds (sweep.workflows.extra_seeds).

This module and the margin study (sweep.study) are the only places that read the test ("novel") split:
`data.load_split(..., allow_test=True)`.
Everything runs on the trials' device (`device` of the spec, resolved by sweep.trial.training.resolve_device, as a
trial and `negmargin evaluate` resolve theirs): feature extraction and the batched fine-tuning of every episode.
Every promoted configuration is scored on the same saved test episodes with the same fine-tuning seed, so the
paired comparisons between them are exact. Scores are kept by training seed (the promoted trial's own, spec.seed, and
each extra seed that trained), and each promoted trial is compared with the baseline on the seeds both have
(evaluation.compare_to_baseline), optionally Holm-corrected over the promoted trials.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch

import data
from data.paths import checkpoint_file
from evaluation.baseline_comparison import BaselineComparison, SeedAccuracies, compare_family
from evaluation.device import resolve_device
from evaluation.episode_scores import accuracy_summary
from sweep.errors import ExperimentError
from sweep.scoring.checkpoint_scores import plain_json, score_checkpoint, test_episode_set
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
from sweep.storage.results import TrialRecord, load_trials, ranked, validation_metrics

if TYPE_CHECKING:
    from sweep.tuning.grid_runner import SeedRun


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
        val=validation_metrics(record.best),
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


def baseline_difference(comparison: BaselineComparison) -> BaselineDifference:
    """promotion.json's record of one comparison with the baseline: the pooled statistics, the seeds paired (how
    many and which), each one's mean difference, the Holm-adjusted p-value when corrected, and the verdict."""
    return BaselineDifference(
        **comparison.paired(),
        seeds=len(comparison.seeds),
        seed_ids=comparison.seeds,
        per_seed=comparison.per_seed_diff,
        t_pvalue_holm=comparison.t_pvalue_holm,
        verdict=comparison.verdict,
    )


def baseline_differences(
    scored: dict[str, dict[int, dict[int, torch.Tensor]]], trial_ids: list[str], base_id: str, holm: bool = False
) -> dict[str, dict[str, BaselineDifference]]:
    """{trial id: {shot: its difference to the baseline}} from per-episode accuracies {trial id: {training seed:
    {shot: [E]}}}, each trial paired with the baseline on the seeds both have; with `holm`, Holm-corrected over the
    trials at each shot."""
    differences: dict[str, dict[str, BaselineDifference]] = {trial_id: {} for trial_id in trial_ids}
    for shot in next(iter(scored[base_id].values())):
        candidates = {trial_id: _at_shot(scored[trial_id], shot) for trial_id in trial_ids}
        found = compare_family(candidates, _at_shot(scored[base_id], shot), holm_adjust=holm)
        for trial_id, comparison in found.items():
            differences[trial_id][str(shot)] = baseline_difference(comparison)
    return differences


def seed_scorer(
    scored: dict[str, dict[int, dict[int, torch.Tensor]]], score: Callable[[Path], dict[int, torch.Tensor]]
) -> Callable[[SeedRun], dict[int, float]]:
    """What extra_seeds.with_seed_results calls for a retrained run that has a checkpoint: `score` it (per-episode
    accuracies [E] per shot), keep them in `scored` under the run's trial and training seed, give its test means."""

    def test_means(run: SeedRun) -> dict[int, float]:
        accuracies = score(cast(Path, run.checkpoint))  # with_seed_results asks only for the runs that have one
        scored[run.trial_id][run.seed] = accuracies
        return {shot: accuracy_summary(acc)["mean"] for shot, acc in accuracies.items()}

    return test_means


def _at_shot(by_seed: dict[int, dict[int, torch.Tensor]], shot: int) -> SeedAccuracies:
    """{training seed: per-episode accuracies [E] at `shot`}."""
    return {seed: accuracies[shot] for seed, accuracies in by_seed.items()}


def _baseline_section(
    found: Any,
    note: str,
    results: list[PromotedTrial],
    scored: dict[str, dict[int, dict[int, torch.Tensor]]],
    entry: PromotedTrial | None,
    holm: bool,
) -> BaselineSection:
    """promotion.json's "baseline": which trial, its entry when it ranked below the promoted ones, and every promoted
    trial's paired difference to it per shot (over the seeds both have when promotion retrained some)."""
    if found is None:
        return BaselineSection(note=note)
    base_id = found.record.trial_id
    differences = baseline_differences(scored, [trial.trial_id for trial in results], base_id, holm)
    return BaselineSection(note=note, label=found.label, trial_id=base_id, differences=differences, entry=entry)


def run(
    experiment: Experiment,
    top_k: int | None = None,
    selections_path: Path | None = None,
    address: str | None = None,
    holm: bool = False,
) -> Promotion:
    """Score the top-k trials and the baseline on the test episodes; write promotion.json, merge the selections
    file; return it. With `holm`, the differences to the baseline are Holm-corrected over the promoted trials."""
    from sweep.scoring import baseline
    from sweep.storage import selections
    from sweep.workflows import extra_seeds as seeds

    spec = experiment.spec()
    selections_path = selections_path or selections.default_path(experiment)
    selections.read(selections_path)  # a damaged selections file fails here, before anything is scored or written
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
    scored: dict[str, dict[int, dict[int, torch.Tensor]]] = {}  # trial id -> training seed -> shot -> accuracies [E]
    entries = []
    scoring: list[tuple[int | Literal["baseline"], TrialRecord]] = [
        *enumerate(promoted, start=1),
        *(("baseline", r) for r in outside),
    ]
    for rank, record in scoring:
        checkpoint = cast(Path, record.best_checkpoint)  # every promoted trial and the baseline have one
        accuracies = score_checkpoint(checkpoint_file(checkpoint), novel, episode_sets, spec, device)
        scored[record.trial_id] = {spec.seed: accuracies}  # a sweep's trials train with the spec's seed
        torch.save(dict(accuracies), experiment.promotion_dir / f"{record.trial_id}_accuracies.pt")
        entries.append(_entry(record, rank, accuracies, spec.selection_from_epoch))
    results = entries[: len(promoted)]
    baseline_entry = entries[len(promoted)] if outside else None
    if spec.promotion.extra_seeds:
        retrained = results + ([baseline_entry] if baseline_entry else [])

        def score(checkpoint: Path) -> dict[int, torch.Tensor]:
            return score_checkpoint(checkpoint, novel, episode_sets, spec, device)

        runs = seeds.retrain(spec, experiment, retrained, address)
        retrained = seeds.with_seed_results(retrained, runs, seed_scorer(scored, score), spec.objective)
        results, baseline_entry = retrained[: len(results)], (retrained[-1] if baseline_entry else None)
    promotion = Promotion(
        experiment=str(experiment.root),
        objective=spec.objective,
        selection_metric=spec.selection,
        shots=list(spec.promotion.shots),
        test_episodes={str(shot): str(experiment.test_episodes(shot)) for shot in spec.promotion.shots},
        trials=results,
        comparisons=_paired(results, {t: runs[spec.seed] for t, runs in scored.items()}, spec.promotion.shots),
        baseline=_baseline_section(found, note, results, scored, baseline_entry, holm),
        seconds=round(time.perf_counter() - started, 1),
    )
    promotion_file.write(experiment.promotion_file, promotion)
    selections.merge(selections_path, selections.entries_from_promotion(spec, promotion))
    return promotion
