"""The report of a sweep as data: the selected hyperparameters, one row per trial, how each stopped trial ended,
and the promoted configurations with their test accuracy.

`build(experiment)` reads the experiment (Tune results, promotion.json, the Optuna study); `assemble(...)` makes the
same report from records already read, which is what the tests and the writers use. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sweep.report.stops import stop_notes
from sweep.schema.first_points import FirstPoint, plan_first_points
from sweep.schema.hyperparameters import SEARCHED_PARAMETERS
from sweep.schema.spec import SweepSpec
from sweep.storage import optuna_study, selections
from sweep.storage.experiment import Experiment
from sweep.storage.promotion_file import Promotion
from sweep.storage.results import TrialRecord, load_trials
from sweep.storage.selections import Selection


@dataclass
class Report:
    """Everything a sweep report shows, as plain data and pandas tables."""

    experiment: Experiment
    spec: SweepSpec
    records: list[TrialRecord]
    trials: pd.DataFrame  # one row per trial, best objective first
    promoted: pd.DataFrame  # one row per promoted trial, by rank
    selected: list[Selection]  # per shot: the selections entry (sweep.storage.selections) this promotion gives
    stops: list[dict[str, Any]]  # per trial that did not run its full budget: epoch, reason, a sentence
    optuna_numbers: dict[str, int] = field(default_factory=dict)  # Ray trial id -> Optuna trial number


# The `start` column: where a trial's point came from when it was one of the first points (sweep.schema.first_points).
START_LEGEND = (
    "start: script = the authors' run script, paper = a value of the paper, ours = our own starting point "
    "(not published), spec = the spec's points_to_evaluate; – = sampled by Optuna"
)


def _start(record: TrialRecord, first: list[FirstPoint]) -> str | None:
    """The origin of the first point `record` ran, or None for a sampled point."""
    for point in first:
        if all(record.params.get(key) == value for key, value in point.params.items()):
            return point.origin
    return None


def _trial_row(
    record: TrialRecord, spec: SweepSpec, optuna_number: int | None, first: list[FirstPoint]
) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": record.trial_id, "optuna": optuna_number, "start": _start(record, first)}
    row.update({name: record.params.get(name) for name in SEARCHED_PARAMETERS})
    row.update({"epochs": record.epochs_run, "stop": record.stop_reason, "best_epoch": record.best.get("epoch")})
    for shot in spec.validation.shots:
        row[f"val_{shot}shot"] = record.best.get(f"val_acc_{shot}shot")
        row[f"val_ci95_{shot}shot"] = record.best.get(f"val_ci_{shot}shot")
    row["objective"] = record.best_objective
    return row


def _promoted_rows(promotion: Promotion | None) -> list[dict[str, Any]]:
    """One row per promoted trial, by rank, then the baseline when it ranked below them (rank "baseline"); each with
    its test accuracy and its paired test difference to the baseline per shot (evaluation.compare_to_baseline), and
    with promotion.extra_seeds its test mean ± std and validation mean across seeds."""
    if promotion is None:
        return []
    found = promotion.baseline
    rows = []
    for trial in promotion.scored_trials():
        row: dict[str, Any] = {"rank": trial.rank, "trial": trial.trial_id, "epoch": trial.epoch}
        row.update({name: trial.params.get(name) for name in SEARCHED_PARAMETERS})
        for shot, test in trial.test.items():
            row[f"test_{shot}shot"] = test.mean
            row[f"ci95_{shot}shot"] = test.ci95
        for shot, difference in found.differences.get(trial.trial_id, {}).items():
            row[f"vs_baseline_{shot}shot"] = difference.mean_diff
            row[f"vs_baseline_ci95_{shot}shot"] = difference.ci95
            row[f"vs_baseline_p_{shot}shot"] = difference.t_pvalue
        if trial.trial_id == found.trial_id:
            for shot in trial.test:
                row.update({f"vs_baseline_{shot}shot": 0.0, f"vs_baseline_ci95_{shot}shot": 0.0})
        for shot, seeds in trial.seeds.items():
            row[f"seeds_{shot}shot"] = f"{seeds.mean:.2f} ± {seeds.std:.2f} (n={seeds.n})"
            if seeds.val_mean is not None:  # what the answer is chosen on (sweep.storage.selections.chosen_on)
                row[f"seeds_val_{shot}shot"] = f"{seeds.val_mean:.2f} (n={len(seeds.val_runs)})"
        if trial.seeds_failed:
            row["seeds_failed"] = ", ".join(f"seed {run.seed} {run.reason.split(':')[0]}" for run in trial.seeds_failed)
        rows.append(row)
    return rows


def assemble(
    experiment: Experiment,
    spec: SweepSpec,
    records: list[TrialRecord],
    promotion: Promotion | None,
    optuna_numbers: dict[str, int] | None = None,
) -> Report:
    """The report of `records` (sweep.storage.results) and `promotion` (promotion.json, or None before promotion)."""
    numbers = optuna_numbers or {}
    first, _ = plan_first_points(spec)
    trials = pd.DataFrame([_trial_row(record, spec, numbers.get(record.trial_id), first) for record in records])
    if not trials.empty:
        trials = trials.sort_values("objective", ascending=False, na_position="last").reset_index(drop=True)
    selected = selections.entries_from_promotion(spec, promotion) if promotion else []
    return Report(
        experiment=experiment,
        spec=spec,
        records=records,
        trials=trials,
        promoted=pd.DataFrame(_promoted_rows(promotion)),
        selected=selected,
        stops=stop_notes(records, spec, experiment),
        optuna_numbers=numbers,
    )


def _optuna_numbers(experiment: Experiment) -> dict[str, int]:
    """Optuna trial number of each Ray trial (empty for a study made before trials were linked)."""
    if not experiment.optuna_db.exists():
        return {}
    return {ray_id: trial.number for ray_id, trial in optuna_study.trials_by_ray_id(experiment).items()}


def build(experiment: Experiment) -> Report:
    """The report of an experiment, from its Tune results, promotion file and Optuna study."""
    spec = experiment.spec()
    promotion = experiment.promotion()  # first: a damaged promotion.json is one line before Tune's state is read
    records = load_trials(experiment, spec)
    return assemble(experiment, spec, records, promotion, _optuna_numbers(experiment))
