"""The one answer to "does it beat the baseline (m = 0)?": a paired, seed-keyed comparison on the same episodes.

Accuracies are given per training seed ({seed: per-episode accuracies [E] in [0, 1]}), so a seed that trained for
one configuration and failed for the other is left out of the pairing instead of shifting it: only the seeds both
have are compared, and the comparison says which. Over those seeds, an episode's accuracy is the mean over the
seeds, and the paired statistics (evaluation.paired_comparison: mean difference in points, 95 % CI, paired t and
Wilcoxon p) are over the episodes of these seed-averaged accuracies; each seed's own paired difference is kept beside.

One rule for the verdict: a configuration "beats the baseline" when its mean difference is positive and both the
paired t p-value (Holm-adjusted over the family compared, when the comparison is one of a corrected family) and the
Wilcoxon p-value are below ALPHA; "is worse than the baseline" when negative with both below ALPHA; otherwise it "is
not significantly different from the baseline". Promotion, the margin study, the calibration table and the report
all read it from here.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from evaluation.errors import EvaluationError
from evaluation.stats import paired_comparison

ALPHA = 0.05
BEATS = "beats the baseline"
WORSE = "is worse than the baseline"
NOT_SIGNIFICANT = "is not significantly different from the baseline"

SeedAccuracies = Mapping[int, torch.Tensor]  # training seed -> per-episode accuracies [E] in [0, 1]
Key = TypeVar("Key")


def verdict(mean_diff: float, t_pvalue: float, wilcoxon_pvalue: float) -> str:
    """BEATS, WORSE or NOT_SIGNIFICANT: significant when both p-values are below ALPHA, the sign says which."""
    significant = t_pvalue < ALPHA and wilcoxon_pvalue < ALPHA
    if significant and mean_diff > 0:
        return BEATS
    if significant and mean_diff < 0:
        return WORSE
    return NOT_SIGNIFICANT


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given."""
    order = np.argsort(pvalues, kind="stable")
    adjusted = np.empty(len(pvalues))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted.tolist()


def seed_mean(accuracies: SeedAccuracies, seeds: list[int]) -> torch.Tensor:
    """Per-episode accuracy in percent [E]: the mean over `seeds` of accuracies [E] in [0, 1]."""
    return torch.stack([accuracies[seed].double() for seed in seeds]).mean(dim=0) * 100


def common_seeds(candidate: SeedAccuracies, baseline: SeedAccuracies) -> list[int]:
    """The training seeds both have, in increasing order."""
    return sorted(set(candidate) & set(baseline))


@dataclass(frozen=True)
class BaselineComparison:
    """A configuration minus the baseline over the seeds both trained (`seeds`), in points: the paired statistics of
    the seed-averaged episodes, each seed's own paired statistics, the Holm-adjusted t p-value when the comparison is
    one of a corrected family (else None), and the verdict."""

    seeds: list[int]
    mean_diff: float
    ci95: float
    t_pvalue: float
    wilcoxon_pvalue: float
    n: int
    per_seed: dict[int, dict[str, float]]
    t_pvalue_holm: float | None = None

    @property
    def verdict(self) -> str:
        """BEATS, WORSE or NOT_SIGNIFICANT (the module's rule; on the Holm-adjusted t p-value when there is one)."""
        t_pvalue = self.t_pvalue if self.t_pvalue_holm is None else self.t_pvalue_holm
        return verdict(self.mean_diff, t_pvalue, self.wilcoxon_pvalue)

    @property
    def beats(self) -> bool:
        """Whether the configuration beats the baseline."""
        return self.verdict == BEATS

    @property
    def per_seed_diff(self) -> list[float]:
        """Each seed's mean difference in points, in the order of `seeds`."""
        return [self.per_seed[seed]["mean_diff"] for seed in self.seeds]

    @property
    def seed_std(self) -> float | None:
        """Sample standard deviation of the per-seed mean differences (None below two seeds)."""
        return statistics.stdev(self.per_seed_diff) if len(self.seeds) > 1 else None

    @property
    def seed_t_pvalue(self) -> float | None:
        """One-sample t-test of the per-seed mean differences against 0 (None below two seeds or when all equal)."""
        differences = self.per_seed_diff
        if len(differences) < 2 or len(set(differences)) == 1:
            return None
        from scipy import stats

        return float(stats.ttest_1samp(differences, 0.0).pvalue)

    def paired(self) -> dict[str, Any]:
        """The pooled paired statistics as evaluation.paired_comparison gives them (mean_diff, ci95, p-values, n)."""
        return {
            "mean_diff": self.mean_diff,
            "ci95": self.ci95,
            "t_pvalue": self.t_pvalue,
            "wilcoxon_pvalue": self.wilcoxon_pvalue,
            "n": self.n,
        }

    def adjusted(self, t_pvalue_holm: float) -> BaselineComparison:
        """This comparison as one of a Holm-corrected family, with its adjusted t p-value."""
        return BaselineComparison(**{**vars(self), "t_pvalue_holm": t_pvalue_holm})


def compare_to_baseline(candidate: SeedAccuracies, baseline: SeedAccuracies) -> BaselineComparison:
    """`candidate` minus `baseline` over the training seeds both have ({seed: accuracies [E] in [0, 1]}, scored on
    the same episodes); EvaluationError when they have no seed in common."""
    seeds = common_seeds(candidate, baseline)
    if not seeds:
        raise EvaluationError(
            f"no training seed in common: the configuration has seeds {sorted(candidate)}, "
            f"the baseline {sorted(baseline)}"
        )
    pooled = paired_comparison(seed_mean(candidate, seeds), seed_mean(baseline, seeds))
    per_seed = {seed: paired_comparison(seed_mean(candidate, [seed]), seed_mean(baseline, [seed])) for seed in seeds}
    return BaselineComparison(seeds=seeds, per_seed=per_seed, **pooled)


def compare_family(
    candidates: Mapping[Key, SeedAccuracies], baseline: SeedAccuracies, *, holm_adjust: bool = False
) -> dict[Key, BaselineComparison]:
    """Every candidate that shares a training seed with the baseline, compared with it (those without one are left
    out); with `holm_adjust`, their t p-values are Holm-adjusted over the candidates compared and the verdicts use the
    adjusted ones."""
    found = {
        key: compare_to_baseline(accuracies, baseline)
        for key, accuracies in candidates.items()
        if common_seeds(accuracies, baseline)
    }
    if not holm_adjust or not found:
        return found
    adjusted = holm([comparison.t_pvalue for comparison in found.values()])
    return {key: comparison.adjusted(p) for (key, comparison), p in zip(found.items(), adjusted, strict=True)}
