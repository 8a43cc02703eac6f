"""Every margin against m = 0 on the same episodes, summaries per margin, and the study's one-line answer.

With several seeds, a margin's accuracy on an episode is the mean over its seeds; the paired comparison
(evaluation.paired_comparison: mean difference, 95 % CI, paired t and Wilcoxon p) is over the episodes of those
seed-averaged accuracies, with the seeds that both margins trained. Its CI is the episodes' uncertainty about these
trained networks; the spread over seeds is reported beside it (per-seed differences, their standard deviation and,
from two seeds, a one-sample t-test over seeds). A margin "beats m = 0" only when its paired t p-value, Holm-adjusted
over the margins compared in that (domain, shot), and its Wilcoxon p-value are both below ALPHA, and its mean
difference is positive.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch

import evaluation
from sweep.study.scoring import DOMAINS, RunScores

ALPHA = 0.05
DISCRIMINABILITY = ("inter", "intra", "phi")


def _seed_mean(scores: dict[tuple[float, int], RunScores], margin: float, seeds: list[int], domain: str, shot: int):
    """Per-episode accuracy in percent [E], the mean over `seeds` of the margin's runs."""
    stacked = torch.stack([scores[(margin, seed)].accuracies[domain][shot].double() for seed in seeds])
    return stacked.mean(dim=0) * 100


def seeds_of(scores: dict[tuple[float, int], RunScores], margin: float) -> list[int]:
    """The seeds of `margin` that have scores."""
    return sorted(seed for m, seed in scores if m == margin)


def margin_summaries(scores: dict[tuple[float, int], RunScores], margins: list[float], shots: list[int]) -> list[dict]:
    """Per margin: its seeds, accuracy (mean ± 95 % CI over episodes of the seed-averaged accuracy, and each seed's
    mean) per domain and shot, and discriminability per domain (mean and standard deviation over seeds)."""
    summaries = []
    for margin in margins:
        seeds = seeds_of(scores, margin)
        entry: dict[str, Any] = {"margin": margin, "seeds": seeds, "accuracy": {}, "discriminability": {}}
        if not seeds:
            summaries.append(entry)
            continue
        for domain in DOMAINS:
            entry["accuracy"][domain] = {}
            for shot in shots:
                mean, ci95 = evaluation.mean_ci95(_seed_mean(scores, margin, seeds, domain, shot))
                per_seed = [float(scores[(margin, s)].accuracies[domain][shot].double().mean() * 100) for s in seeds]
                entry["accuracy"][domain][str(shot)] = {"mean": mean, "ci95": ci95, "per_seed": per_seed}
            entry["discriminability"][domain] = {
                key: _spread([scores[(margin, s)].discriminability[domain][key] for s in seeds])
                for key in DISCRIMINABILITY
            }
        summaries.append(entry)
    return summaries


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "runs": values,
    }


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given."""
    order = np.argsort(pvalues)
    adjusted = np.empty(len(pvalues))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted.tolist()


def comparisons(scores: dict[tuple[float, int], RunScores], margins: list[float], shots: list[int]) -> list[dict]:
    """Every margin ≠ 0 against m = 0 per domain and shot, on the same episodes, with the seeds both trained."""
    baseline_seeds = set(seeds_of(scores, 0.0))
    found = []
    for domain in DOMAINS:
        for shot in shots:
            family = []
            for margin in margins:
                common = sorted(baseline_seeds & set(seeds_of(scores, margin)))
                if margin == 0.0 or not common:
                    continue
                a = _seed_mean(scores, margin, common, domain, shot)
                b = _seed_mean(scores, 0.0, common, domain, shot)
                paired = evaluation.paired_comparison(a, b)
                per_seed = [
                    float(
                        (scores[(margin, s)].accuracies[domain][shot] - scores[(0.0, s)].accuracies[domain][shot])
                        .double()
                        .mean()
                        * 100
                    )
                    for s in common
                ]
                family.append(
                    {
                        "domain": domain,
                        "shot": shot,
                        "margin": margin,
                        "seeds": common,
                        **paired,
                        "per_seed_diff": per_seed,
                        "seed_std": statistics.stdev(per_seed) if len(per_seed) > 1 else None,
                        "seed_t_pvalue": _seed_t_pvalue(per_seed),
                    }
                )
            for entry, adjusted in zip(family, holm([entry["t_pvalue"] for entry in family])):
                entry["t_pvalue_holm"] = adjusted
                entry["significant"] = bool(
                    entry["mean_diff"] > 0 and adjusted < ALPHA and entry["wilcoxon_pvalue"] < ALPHA
                )
            found += family
    return found


def _seed_t_pvalue(differences: list[float]) -> float | None:
    """One-sample t-test of per-seed mean differences against 0 (None below two seeds or when all are equal)."""
    if len(differences) < 2 or len(set(differences)) == 1:
        return None
    from scipy import stats

    return float(stats.ttest_1samp(differences, 0.0).pvalue)


def answer(setting: str, found: list[dict], shots: list[int], summaries: list[dict]) -> str:
    """The study's answer on novel classes in one line, per shot: the best significant margin, or that none is."""
    parts = []
    for shot in shots:
        family = [entry for entry in found if entry["domain"] == "novel" and entry["shot"] == shot]
        winners = [entry for entry in family if entry["significant"]]
        if winners:
            best = max(winners, key=lambda entry: entry["mean_diff"])
            parts.append(
                f"{shot}-shot: m = {best['margin']:g} beats m = 0 by {best['mean_diff']:+.2f} ± {best['ci95']:.2f} "
                f"points (paired t p = {best['t_pvalue']:.2g}, Holm over {len(family)} margins "
                f"{best['t_pvalue_holm']:.2g}; {_seeds_note(best)})"
            )
        elif family:
            top = max(family, key=lambda entry: entry["mean_diff"])
            best_margin = _best_margin(summaries, shot)
            detail = (
                f"best: m = {top['margin']:g}, {top['mean_diff']:+.2f} ± {top['ci95']:.2f} points, "
                f"paired t p = {top['t_pvalue']:.2g}"
                if best_margin != 0.0
                else f"best: m = 0 itself; next m = {top['margin']:g}, {top['mean_diff']:+.2f} ± {top['ci95']:.2f}"
            )
            parts.append(f"{shot}-shot: no margin is significantly better than m = 0 ({detail})")
        else:
            parts.append(f"{shot}-shot: no margin to compare with m = 0")
    return f"{setting}: " + "; ".join(parts)


def _seeds_note(entry: dict) -> str:
    seeds = entry["seeds"]
    if len(seeds) == 1:
        return "1 seed"
    agree = sum(diff > 0 for diff in entry["per_seed_diff"])
    return f"{len(seeds)} seeds, {agree} of them ahead"


def _best_margin(summaries: list[dict], shot: int) -> float | None:
    scored = [s for s in summaries if s["seeds"]]
    if not scored:
        return None
    return max(scored, key=lambda s: s["accuracy"]["novel"][str(shot)]["mean"])["margin"]
