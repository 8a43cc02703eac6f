"""Every margin against m = 0 on the same episodes, summaries per margin, and the study's one-line answer.

The comparison is evaluation.compare_to_baseline, the one promotion and the calibration use: with several seeds, a
margin's accuracy on an episode is the mean over the seeds that both it and m = 0 trained, and the paired statistics
(mean difference, 95 % CI, paired t and Wilcoxon p) are over the episodes of those seed-averaged accuracies. Its CI is
the episodes' uncertainty about these trained networks; the spread over seeds is reported beside it (per-seed
differences, their standard deviation and, from two seeds, a one-sample t-test over seeds). The margins compared in
one (domain, shot) are one Holm-corrected family: a margin "beats m = 0" under evaluation.baseline_comparison's rule
on its Holm-adjusted t p-value (both p-values below evaluation.ALPHA, mean difference positive).
"""

from __future__ import annotations

import statistics
from typing import Any

import evaluation
from evaluation.baseline_comparison import SeedAccuracies, compare_family, seed_mean
from sweep.study.scoring import DOMAINS, RunScores

DISCRIMINABILITY = ("inter", "intra", "phi")


def _by_seed(scores: dict[tuple[float, int], RunScores], margin: float, domain: str, shot: int) -> SeedAccuracies:
    """{training seed: per-episode accuracies [E] in [0, 1]} of `margin`'s runs in `domain` at `shot`."""
    return {seed: run.accuracies[domain][shot] for (m, seed), run in scores.items() if m == margin}


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
                mean, ci95 = evaluation.mean_ci95(seed_mean(_by_seed(scores, margin, domain, shot), seeds))
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


def comparisons(scores: dict[tuple[float, int], RunScores], margins: list[float], shots: list[int]) -> list[dict]:
    """Every margin ≠ 0 against m = 0 per domain and shot, on the same episodes, with the seeds both trained; Holm
    over the margins compared in each (domain, shot)."""
    found = []
    for domain in DOMAINS:
        for shot in shots:
            candidates = {m: _by_seed(scores, m, domain, shot) for m in margins if m != 0.0}
            family = compare_family(candidates, _by_seed(scores, 0.0, domain, shot), holm_adjust=True)
            found += [
                {
                    "domain": domain,
                    "shot": shot,
                    "margin": margin,
                    "seeds": compared.seeds,
                    **compared.paired(),
                    "per_seed_diff": compared.per_seed_diff,
                    "seed_std": compared.seed_std,
                    "seed_t_pvalue": compared.seed_t_pvalue,
                    "t_pvalue_holm": compared.t_pvalue_holm,
                    "significant": compared.beats,
                }
                for margin, compared in family.items()
            ]
    return found


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
