"""Why a trial ran fewer epochs than the sweep's budget, in one sentence a reader can check.

ASHA (sweep.tuning.tuner) compares trials at rungs, the epochs grace_period · reduction_factor^k below the budget: a
trial
arriving at a rung goes on only if it is in the top 1/reduction_factor of the trials recorded there before it. For a
trial it stopped, the note names the rung, the trial's objective there and its place among every trial that reported
at that epoch. A diverged trial quotes its divergence marker, a failed one the last line of Tune's error file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from data.paths import DIVERGED_MARKER
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import Experiment
from sweep.storage.results import TrialRecord

ASHA_STOP = "stopped early (ASHA)"
COMPLETED = "completed"


def _objective_at(record: TrialRecord, epoch: int, objective: str) -> float | None:
    history = record.history
    if history.empty or "epoch" not in history or objective not in history:
        return None
    values = [v for v in history.loc[history["epoch"] == epoch, objective] if isinstance(v, (int, float))]
    finite = [float(v) for v in values if math.isfinite(v)]
    return finite[-1] if finite else None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def asha_rule(spec: SweepSpec) -> str:
    """ASHA's rule as the report states it once."""
    return (
        f"ASHA lets a trial go on only if it is in the top 1/{spec.scheduler.reduction_factor:g} of the trials "
        "that reached the rung before it"
    )


def _asha_note(record: TrialRecord, records: list[TrialRecord], spec: SweepSpec) -> str:
    epoch, objective = record.epochs_run, spec.objective
    own = _objective_at(record, epoch, objective)
    if own is None:
        return f"stopped by ASHA after epoch {epoch} of {spec.epochs}"
    at_rung = sorted((v for r in records if (v := _objective_at(r, epoch, objective)) is not None), reverse=True)
    place = at_rung.index(own) + 1
    return (
        f"stopped by ASHA after epoch {epoch} of {spec.epochs}: {objective} {own:.1f} at the epoch-{epoch} rung, "
        f"{_ordinal(place)} of the {len(at_rung)} trials that reported there"
    )


def _first_line(path: Path, last: bool = False) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return (lines[-1] if last else lines[0]) if lines else ""


def stop_note(record: TrialRecord, records: list[TrialRecord], spec: SweepSpec, experiment: Experiment) -> str:
    """One sentence: at which epoch the trial stopped, and why."""
    reason = record.stop_reason
    if reason == ASHA_STOP:
        return _asha_note(record, records, spec)
    if reason == "diverged":
        message = _first_line(experiment.trial_dir(record.trial_id) / DIVERGED_MARKER)
        return f"diverged after its last good report at epoch {record.epochs_run}: {message or 'non-finite loss'}"
    if reason == "error":
        message = _first_line(Path(record.error), last=True) if record.error else ""
        return f"failed after epoch {record.epochs_run} (retries exhausted): {message or 'see the trial directory'}"
    return (
        f"{reason} after epoch {record.epochs_run} of {spec.epochs}: the sweep was interrupted "
        f"(negmargin sweep resume {experiment.root} finishes it)"
    )


def stop_notes(records: list[TrialRecord], spec: SweepSpec, experiment: Experiment) -> list[dict[str, Any]]:
    """For each trial that did not complete its budget: trial id, epochs run, stop reason and the sentence."""
    return [
        {
            "trial": record.trial_id,
            "epochs": record.epochs_run,
            "stop": record.stop_reason,
            "note": stop_note(record, records, spec, experiment),
        }
        for record in records
        if record.stop_reason != COMPLETED
    ]
