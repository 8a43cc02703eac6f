"""The baseline a sweep's answer is compared with: which trial it is, and how it is named.

The baseline is the configuration the paper's question compares with: the trial at m = 0 (the spec's first point when
that one has m = 0, else the m = 0 trial ranked best on validation); in a space without m = 0, the spec's first
point (points_to_evaluate[0]), named as such. Promotion scores it on the same test episodes as the promoted trials,
even when it ranked below them, so each promoted configuration's difference to it is paired, episode by episode, and
seed by seed with retrained seeds (promotion.extra_seeds). The comparison itself, and its rule for "beats / is worse /
is not significantly different", is evaluation.compare_to_baseline (evaluation/baseline_comparison.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sweep.schema.spec import SweepSpec
from sweep.storage.results import TrialRecord, ranked


@dataclass(frozen=True)
class Baseline:
    """The baseline trial of a sweep and how to name it ("m = 0", or "the spec's first point (m = -0.1)")."""

    record: TrialRecord
    label: str


def _matches(params: dict[str, Any], point: dict[str, Any]) -> bool:
    return all(math.isclose(float(params[key]), float(value), abs_tol=1e-12) for key, value in point.items())


def find_baseline(records: list[TrialRecord], spec: SweepSpec) -> tuple[Baseline | None, str]:
    """(the baseline, or None; a line that says which it is or why there is none)."""
    scored = ranked([record for record in records if record.best_checkpoint is not None])
    first = spec.points_to_evaluate[0] if spec.points_to_evaluate else None
    at_zero = [record for record in scored if float(record.params["margin"]) == 0.0]
    if at_zero:
        chosen = next((r for r in at_zero if first is not None and _matches(r.params, first)), at_zero[0])
        return Baseline(chosen, "m = 0"), f"baseline: m = 0 (trial {chosen.trial_id})"
    if first is not None:
        chosen_first = next((r for r in scored if _matches(r.params, first)), None)
        if chosen_first is not None:
            label = f"the spec's first point (m = {float(chosen_first.params['margin']):g})"
            return Baseline(chosen_first, label), f"baseline: {label}, trial {chosen_first.trial_id}: no trial at m = 0"
        return None, "no baseline: no trial at m = 0, and the spec's first point has no scored trial"
    return None, "no baseline: no trial at m = 0 and no points_to_evaluate to compare the answer with"
