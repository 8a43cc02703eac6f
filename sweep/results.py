"""What a sweep's trials did, read back from the Ray Tune experiment directory (no cluster needed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sweep.errors import ExperimentError
from sweep.experiment import Experiment
from sweep.objectives import objective_value
from sweep.spec import SweepSpec
from sweep.trial.checkpoints import DIVERGED_MARKER
from sweep.trial.config import SEARCHED_PARAMETERS


@dataclass
class TrialRecord:
    """One trial of a sweep: its parameters, history, how it ended and its best checkpoint."""

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
            history = history.assign(
                **{spec.objective: [objective_value(row, spec.objective) for row in history.to_dict("records")]}
            )
        epochs_run = int(history["epoch"].max()) if "epoch" in history else 0
        scored = history[history[spec.objective].map(_finite)] if spec.objective in history else history.iloc[0:0]
        best = scored.loc[scored[spec.objective].idxmax()].to_dict() if not scored.empty else {}
        checkpoint = analysis.get_best_checkpoint(trial, metric=spec.objective, mode="max") if best else None
        trial_dir = Path(trial.storage.trial_fs_path)
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
                best_objective=best.get(spec.objective),
                best_checkpoint=Path(checkpoint.path) if checkpoint is not None else None,
                history=history,
                error=str(trial_dir / trial.run_metadata.error_filename) if trial.run_metadata.error_filename else None,
            )
        )
    return records


def ranked(records: list[TrialRecord]) -> list[TrialRecord]:
    """Trials with a validation score, best first."""
    return sorted((r for r in records if r.best_objective is not None), key=lambda r: r.best_objective, reverse=True)
