"""What a sweep's trials did, read back from the Ray Tune experiment directory (no cluster needed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd

from data.paths import DIVERGED_MARKER
from sweep.errors import ExperimentError
from sweep.schema.hyperparameters import SEARCHED_PARAMETERS
from sweep.schema.objectives import SELECTION_SCORE, objective_value
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import Experiment


@dataclass
class TrialRecord:
    """One trial of a sweep: its parameters, history, how it ended and its best checkpoint.

    `best` is the validation report the spec's selection metric (`SweepSpec.selection`) ranks first among the eligible
    ones (epochs >= selection_from_epoch; `eligible_rows`), the earliest of equal ones, as the published strict >;
    `best_checkpoint` its checkpoint, `best_objective` the objective there.
    """

    trial_id: str
    params: dict[str, Any]
    status: str
    stop_reason: str
    epochs_run: int
    best: dict[str, Any]
    best_objective: float | None
    best_checkpoint: Path | None
    history: pd.DataFrame = field(repr=False)
    error: str | None = None


def stop_reason_of(status: str, epochs_run: int, max_epochs: int, trial_dir: Path) -> str:
    """How a trial ended: completed, stopped early (ASHA), diverged, error, or its Tune status while unfinished."""
    if (trial_dir / DIVERGED_MARKER).exists():
        return "diverged"
    if status == "ERROR":
        return "error"
    if status != "TERMINATED":
        return status.lower()  # pending / running: an interrupted sweep
    return "completed" if epochs_run >= max_epochs else "stopped early (ASHA)"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _with_metric(history: pd.DataFrame, name: str) -> pd.DataFrame:
    """`history` with column `name` (an objective name) computed from each row's per-shot accuracies."""
    return history.assign(**{name: [objective_value(row, name) for row in history.to_dict("records")]})


def eligible_rows(history: pd.DataFrame, selection_from_epoch: int) -> pd.DataFrame:
    """The validation reports whose checkpoints may be the trial's best: those of epochs >= selection_from_epoch,
    or, for a trial stopped before that epoch, all of them (sweep.schema.objectives.selection_score ranks them so)."""
    if "epoch" not in history or history.empty:
        return history
    eligible = history[history["epoch"] >= selection_from_epoch]
    return eligible if not eligible.empty else history


def _best_row(history: pd.DataFrame, selection: str, selection_from_epoch: int = 1) -> dict[str, Any]:
    """The first eligible report with the highest finite `selection` value, or {} when none has one."""
    if selection not in history:
        return {}
    candidates = eligible_rows(history, selection_from_epoch)
    scored = candidates[candidates[selection].map(_finite)]
    return scored.loc[scored[selection].idxmax()].to_dict() if not scored.empty else {}


def validation_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The validation metrics (`val_…` keys) of a report row: what a run's best checkpoint is known by in promotion.json
    (a promoted trial's `TrialRecord.best`, a retrained seed's report with its best checkpoint)."""
    return {str(key): float(value) for key, value in row.items() if str(key).startswith("val_")}


def _checkpoint_of(analysis: Any, trial: Any, best: dict[str, Any], selection: str) -> Any:
    """The kept checkpoint reported with `best` (same epoch); Tune's best by `selection` if that one is gone."""
    for result in trial.run_metadata.checkpoint_manager.best_checkpoint_results:
        if result.metrics.get("epoch") == best.get("epoch"):
            return result.checkpoint
    return analysis.get_best_checkpoint(trial, metric=SELECTION_SCORE, mode="max")


def load_trials(experiment: Experiment, spec: SweepSpec | None = None) -> list[TrialRecord]:
    """Every trial of the experiment, in the order they were created."""
    spec = spec or experiment.spec()
    if not experiment.tune_dir.is_dir():
        raise ExperimentError(f"{experiment.root}: no trial results yet (no tune/ directory)")
    from ray.tune import ExperimentAnalysis

    try:
        analysis = ExperimentAnalysis(str(experiment.tune_dir), default_metric=spec.objective, default_mode="max")
    except ValueError as error:
        raise ExperimentError(
            f"{experiment.tune_dir}: no readable Ray Tune state ({str(error).splitlines()[0]})"
        ) from None
    records = []
    for trial in analysis.trials:
        history = analysis.trial_dataframes.get(trial.trial_id, pd.DataFrame())
        if not history.empty:
            history = _with_metric(_with_metric(history, spec.objective), spec.selection)
            if "epoch" in history:  # a trial resumed from an earlier checkpoint reports the epochs after it again
                history = history.drop_duplicates("epoch", keep="last").reset_index(drop=True)
        epochs_run = int(history["epoch"].max()) if "epoch" in history else 0
        best = _best_row(history, spec.selection, spec.selection_from_epoch)
        checkpoint = _checkpoint_of(analysis, trial, best, spec.selection) if best else None
        objective = best.get(spec.objective)
        trial_dir = Path(cast(str, trial.path))  # Optional in Ray's types; a trial read from storage has its path
        records.append(
            TrialRecord(
                trial_id=trial.trial_id,
                params={
                    **spec.fixed(),
                    **{key: trial.config[key] for key in SEARCHED_PARAMETERS if key in trial.config},
                },
                status=trial.status,
                stop_reason=stop_reason_of(trial.status, epochs_run, spec.epochs, trial_dir),
                epochs_run=epochs_run,
                best=best,
                best_objective=objective if _finite(objective) else None,
                best_checkpoint=Path(checkpoint.path) if checkpoint is not None else None,
                history=history,
                error=str(trial_dir / trial.run_metadata.error_filename) if trial.run_metadata.error_filename else None,
            )
        )
    return records


def ranked(records: list[TrialRecord]) -> list[TrialRecord]:
    """Trials with a validation score, best first."""
    return sorted(
        (r for r in records if r.best_objective is not None), key=lambda r: cast(float, r.best_objective), reverse=True
    )
