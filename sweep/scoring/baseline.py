"""The baseline a sweep's answer is compared with, and the paired difference that says whether the answer beats it.

The baseline is the configuration the paper's question compares with: the trial at m = 0 (the spec's first point when
that one has m = 0, else the m = 0 trial ranked best on validation); in a space without m = 0, the spec's first
point (points_to_evaluate[0]), named as such. Promotion scores it on the same test episodes as the promoted trials,
even when it ranked below them, so each promoted configuration's difference to it is paired, episode by episode.
With retrained seeds (promotion.extra_seeds), an episode's accuracy is the mean over a configuration's seeds (as the
margin study pools) and each seed's own difference is listed beside it.

A configuration "beats" the baseline when the mean difference is positive and both the paired t-test and the
Wilcoxon signed-rank test give p < ALPHA; "is worse" when negative with both p < ALPHA; otherwise the difference is
not significant, and the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweep.schema.spec import SweepSpec
from sweep.storage.results import TrialRecord, ranked

if TYPE_CHECKING:
    import torch  # only paired_difference needs it; the report reads promotion.json without torch

ALPHA = 0.05


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


def verdict(stats: dict[str, Any]) -> str:
    """'beats the baseline', 'is worse than the baseline' or 'is not significantly different from the baseline'."""
    significant = stats["t_pvalue"] < ALPHA and stats["wilcoxon_pvalue"] < ALPHA
    if significant and stats["mean_diff"] > 0:
        return "beats the baseline"
    if significant and stats["mean_diff"] < 0:
        return "is worse than the baseline"
    return "is not significantly different from the baseline"


def paired_difference(selected: list[torch.Tensor], baseline: list[torch.Tensor]) -> dict[str, Any]:
    """Selected minus baseline, in points, over the same episodes: `selected` and `baseline` hold per-episode
    accuracies [E] in [0, 1], one per seed (paired seed by seed). The paired statistics of the seed-averaged
    accuracies (evaluation.paired_comparison), each seed's mean difference, and the verdict."""
    import torch

    import evaluation

    pairs = min(len(selected), len(baseline))
    mean_of = lambda runs: torch.stack([r.double() for r in runs[:pairs]]).mean(dim=0) * 100  # noqa: E731
    stats = evaluation.paired_comparison(mean_of(selected), mean_of(baseline))
    per_seed = [float((a.double() - b.double()).mean() * 100) for a, b in zip(selected, baseline, strict=False)]
    return {**stats, "seeds": pairs, "per_seed": per_seed, "verdict": verdict(stats)}
