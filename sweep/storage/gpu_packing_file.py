"""<experiment>/gpu_packing.json: the `resources.gpu: auto` decision of a sweep (GPUs per trial, why, the probe's
figures), written once by sweep.tuning.gpu_packing and read back by a resumed sweep, its promotion and the report."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from data.atomic import write_text_atomically
from sweep.storage.experiment import Experiment


@dataclass(frozen=True)
class PackingDecision:
    """GPUs per trial, how many trials share a card, why, and the probe's figures (None without a probe)."""

    gpu: float
    trials_per_gpu: int
    reason: str
    figures: dict[str, Any] | None = None
    trial_memory: int = 0  # bytes one trial is planned to take of the card (step peak, context, device-side split)

    def describe(self) -> str:
        """One line for the log and the report."""
        return f"resources.gpu auto -> {self.gpu:g} per trial: {self.reason}"


def save(experiment: Experiment, decision: PackingDecision) -> None:
    """Write the decision to <experiment>/gpu_packing.json."""
    write_text_atomically(experiment.gpu_packing_file, json.dumps(asdict(decision), indent=2) + "\n")


def load(experiment: Experiment) -> PackingDecision | None:
    """The decision recorded in the experiment, or None."""
    if not experiment.gpu_packing_file.exists():
        return None
    return PackingDecision(**json.loads(experiment.gpu_packing_file.read_text()))
