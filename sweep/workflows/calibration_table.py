"""A calibration's results as people read them: accuracy per margin, paired differences to m = 0 per seed and pooled,
their seed-to-seed spread, the regime check of the embedded default, and when the margins' validation ranking settles.

A calibration on the training seeds its configuration was chosen on can flatter it, so the seeds come in two groups:
the tuned seeds (those the configuration was chosen on, `tuned_seeds`) and the held-out seeds (every other seed
run). The regime check is made on the held-out seeds and on all of them, and the spread is shown for both groups.

The differences to m = 0 are evaluation.compare_to_baseline, the comparison promotion and the margin study use: on the
seeds both margins have, a margin's accuracy on an episode is the mean over those seeds, so the pooled paired test is
over the episodes of seed-averaged accuracies; each seed's own paired difference is listed beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import evaluation
from evaluation.baseline_comparison import BaselineComparison, SeedAccuracies, compare_to_baseline, seed_mean
from sweep.schema.objectives import objective_value
from sweep.workflows.calibration import CHECKPOINT_KINDS, RunResult
from sweep.workflows.calibration_seeds import TUNED_SEEDS, split_seeds

REGIME_POINTS = 2.0  # the best negative margin beats m = 0 by at least this many points at every shot ...
REGIME_P = 0.01  # ... with a pooled paired t p-value below this, and positive on every seed
PAPER_MARGIN = -0.3  # and the paper's usual Neg-Cosine margin is not worse than m = 0 on any seed


@dataclass(frozen=True)
class Difference:
    """A margin minus m = 0 at one shot and checkpoint kind, on the seeds both have: pooled (seed-averaged episodes)
    and per seed, in points."""

    margin: float
    kind: str
    shot: int
    comparison: BaselineComparison

    @property
    def pooled(self) -> dict[str, Any]:
        """evaluation.paired_comparison's statistics of the seed-averaged episodes: mean_diff, ci95, p-values, n."""
        return self.comparison.paired()

    @property
    def per_seed(self) -> dict[int, dict[str, float]]:
        """Each seed's own paired statistics."""
        return self.comparison.per_seed


def _by_margin(results: list[RunResult]) -> dict[float, dict[int, RunResult]]:
    grouped: dict[float, dict[int, RunResult]] = {}
    for result in results:
        grouped.setdefault(result.margin, {})[result.seed] = result
    return grouped


def _novel(runs: dict[int, RunResult], kind: str, shot: int) -> SeedAccuracies:
    """{seed: per-episode novel accuracies [E] in [0, 1]} of one margin's runs."""
    return {seed: run.novel[kind][shot] for seed, run in runs.items()}


def differences(results: list[RunResult]) -> list[Difference]:
    """Every m ≠ 0 against m = 0 on the seeds both have, per checkpoint kind and shot."""
    grouped = _by_margin(results)
    baseline = grouped.get(0.0, {})
    found = []
    for margin in sorted(grouped, reverse=True):
        seeds = sorted(set(grouped[margin]) & set(baseline))
        if margin == 0.0 or not seeds:
            continue
        shots = sorted(grouped[margin][seeds[0]].novel[CHECKPOINT_KINDS[0]])
        for kind in CHECKPOINT_KINDS:
            for shot in shots:
                compared = compare_to_baseline(_novel(grouped[margin], kind, shot), _novel(baseline, kind, shot))
                found.append(Difference(margin, kind, shot, compared))
    return found


def on_seeds(results: list[RunResult], seeds: list[int]) -> list[RunResult]:
    """The runs of `results` with one of the training `seeds`."""
    return [result for result in results if result.seed in seeds]


def seed_groups(results: list[RunResult], tuned_seeds: list[int]) -> tuple[list[int], list[int]]:
    """(tuned seeds that ran, held-out seeds that ran): the seeds of `results` in `tuned_seeds`, and the others."""
    return split_seeds((result.seed for result in results), tuned_seeds)


def regime_check(results: list[RunResult], kind: str = "final", seeds: list[int] | None = None) -> tuple[bool, str]:
    """(met, one line): on the runs of `seeds` (default: every run), does the best negative margin beat m = 0 by
    >= REGIME_POINTS at every shot, pooled p < REGIME_P and positive on every seed, and is m = PAPER_MARGIN not worse
    than m = 0 on any seed?"""
    if seeds is not None:
        results = on_seeds(results, seeds)
    found = [d for d in differences(results) if d.kind == kind and d.margin < 0]
    if not found:
        return False, f"regime ({kind} checkpoints): no negative margin with an m = 0 run of the same seed"
    shots = sorted({d.shot for d in found})

    def worst_shot(margin: float) -> float:
        return min(d.pooled["mean_diff"] for d in found if d.margin == margin)

    best = max({d.margin for d in found}, key=worst_shot)
    best_rows = [d for d in found if d.margin == best]
    beats = all(
        d.pooled["mean_diff"] >= REGIME_POINTS
        and d.pooled["t_pvalue"] < REGIME_P
        and all(s["mean_diff"] > 0 for s in d.per_seed.values())
        for d in best_rows
    )
    paper = [d for d in found if d.margin == PAPER_MARGIN]
    paper_ok = bool(paper) and all(s["mean_diff"] >= 0 for d in paper for s in d.per_seed.values())
    gains = ", ".join(
        f"{d.shot}-shot {d.pooled['mean_diff']:+.2f} ± {d.pooled['ci95']:.2f} (p = {d.pooled['t_pvalue']:.2g}; "
        f"seeds {' '.join(format(s['mean_diff'], '+.1f') for s in d.per_seed.values())})"
        for d in sorted(best_rows, key=lambda d: d.shot)
    )
    paper_line = (
        f"m = {PAPER_MARGIN:g} not worse than m = 0 on any seed: {'yes' if paper_ok else 'no'}"
        if paper
        else f"m = {PAPER_MARGIN:g} not run"
    )
    met = beats and paper_ok and len(shots) >= 1
    on = f"seeds {' '.join(map(str, sorted({r.seed for r in results})))}"
    line = (
        f"regime ({kind} checkpoints, {on}): best negative margin m = {best:g} vs m = 0: {gains}; "
        f"≥ {REGIME_POINTS:g} points, pooled p < {REGIME_P:g}, positive on every seed: {'yes' if beats else 'no'}; "
        f"{paper_line} -> {'MET' if met else 'NOT MET'}"
    )
    return met, line


def spread_cells(comparison: BaselineComparison) -> list[str]:
    """[seeds, mean, sd, min, max] of the per-seed mean differences (points; sd is – below two seeds)."""
    diffs = comparison.per_seed_diff
    sd = comparison.seed_std
    return [
        " ".join(map(str, comparison.seeds)),
        f"{sum(diffs) / len(diffs):+.2f}",
        "–" if sd is None else f"{sd:.2f}",
        f"{min(diffs):+.2f}",
        f"{max(diffs):+.2f}",
    ]


def spread_lines(results: list[RunResult], tuned_seeds: list[int]) -> list[str]:
    """The seed-to-seed spread of every difference to m = 0 as a Markdown table: per margin, checkpoint kind and
    shot, on the held-out seeds (when any ran) and on all seeds."""
    tuned, held_out = seed_groups(results, tuned_seeds)
    groups = [("held out", held_out)] if held_out else []
    groups.append(("all", tuned + held_out))
    header = ["m", "checkpoint", "shot", "group", "seeds", "mean", "sd", "min", "max"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, seeds in groups:
        for d in differences(on_seeds(results, seeds)):
            cells = [f"{d.margin:g}", d.kind, str(d.shot), name, *spread_cells(d.comparison)]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def regime_lines(results: list[RunResult], tuned_seeds: list[int], kind: str) -> list[str]:
    """The regime check at `kind` on the held-out seeds (or a line saying none ran) and on all seeds."""
    tuned, held_out = seed_groups(results, tuned_seeds)
    if held_out:
        held = f"on the held-out seeds: {regime_check(results, kind, held_out)[1]}"
    else:
        held = (
            f"on the held-out seeds ({kind} checkpoints): none ran — every seed run ({' '.join(map(str, tuned))}) "
            "is one the configuration was chosen on, so the check below can flatter it"
        )
    return [held, f"on all seeds: {regime_check(results, kind)[1]}"]


def settling(results: list[RunResult], objective: str) -> tuple[list[int], dict[float, list[float]], int | None]:
    """(validated epochs, per margin the objective per epoch (mean over seeds), last epoch at which the ranking of
    the margins differs from the final one, or None when it never does)."""
    grouped = _by_margin(results)
    epochs = sorted({int(row["epoch"]) for r in results for row in r.curve})
    curves: dict[float, list[float]] = {}
    for margin, runs in sorted(grouped.items(), reverse=True):
        curves[margin] = []
        for epoch in epochs:
            values = [
                objective_value(row, objective) for r in runs.values() for row in r.curve if row["epoch"] == epoch
            ]
            present = [v for v in values if v is not None]
            curves[margin].append(sum(present) / len(present) if present else float("nan"))
    rankings = [sorted(curves, key=lambda m: -curves[m][i]) for i in range(len(epochs))]
    unsettled = [epoch for epoch, ranking in zip(epochs, rankings, strict=True) if ranking != rankings[-1]]
    return epochs, curves, (unsettled[-1] if unsettled else None)


def _cell(stats: dict[str, Any]) -> str:
    return f"{stats['mean_diff']:+.2f} ± {stats['ci95']:.2f} (p {stats['t_pvalue']:.2g})"


def markdown(results: list[RunResult], objective: str, title: str, tuned_seeds: list[int] | None = None) -> str:
    """The calibration as Markdown: which seeds are tuned and held out, accuracy per margin, differences to m = 0
    (pooled and per seed) and their seed-to-seed spread, the regime check on the held-out seeds and on all seeds for
    both checkpoint kinds, and the validation curves with the settling epoch. `tuned_seeds`: the seeds the
    configuration was chosen on (default TUNED_SEEDS)."""
    tuned_seeds = list(TUNED_SEEDS if tuned_seeds is None else tuned_seeds)
    grouped = _by_margin(results)
    shots = sorted(results[0].novel["final"])
    seeds = sorted({r.seed for r in results})
    tuned, held_out = seed_groups(results, tuned_seeds)
    lines = [f"### {title}", ""]
    lines += [
        f"Tuned seeds (the configuration was chosen on them): {' '.join(map(str, tuned)) or 'none'}; "
        f"held-out seeds: {' '.join(map(str, held_out)) or 'none'}.",
        "",
    ]
    header = ["m", "train acc", f"val {objective} (final)", "best epoch"]
    header += [f"novel {shot}-shot {kind}" for kind in CHECKPOINT_KINDS for shot in shots]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for margin, runs in sorted(grouped.items(), reverse=True):
        listed = list(runs.values())
        train = sum(r.final["train_acc"] for r in listed) / len(listed)
        val = sum(objective_value(r.final, objective) or 0.0 for r in listed) / len(listed)
        best_epochs = "/".join(str(r.best_epoch) for r in listed)
        cells = [f"{margin:g}", f"{train:.1f}", f"{val:.2f}", best_epochs]
        for kind in CHECKPOINT_KINDS:
            for shot in shots:
                mean, ci95 = evaluation.mean_ci95(seed_mean(_novel(runs, kind, shot), sorted(runs)))
                cells.append(f"{mean:.2f} ± {ci95:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Paired differences to m = 0 on the same {results[0].novel['final'][shots[0]].numel()} novel "
        f"episodes (points, 95 % CI, paired t p); pooled = seed-averaged accuracies, seeds {seeds}:",
        "",
    ]
    header = ["m", "checkpoint", "shot", "pooled"]
    header += [f"seed {seed}" + ("" if seed in tuned else " (held out)") for seed in seeds]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for d in differences(results):
        cells = [f"{d.margin:g}", d.kind, str(d.shot), _cell(d.pooled)]
        cells += [_cell(d.per_seed[s]) if s in d.per_seed else "" for s in seeds]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Seed-to-seed spread of the per-seed differences to m = 0 (points: mean, sample standard deviation, min and "
        "max over the seeds):",
        "",
        *spread_lines(results, tuned_seeds),
        "",
    ]
    for kind in CHECKPOINT_KINDS:
        lines += [f"- {line}" for line in regime_lines(results, tuned_seeds, kind)]
    epochs, curves, last_unsettled = settling(results, objective)
    if len(epochs) > 1:
        lines += ["", f"Validation {objective} per epoch (mean over seeds):", ""]
        lines += ["| epoch | " + " | ".join(f"m = {m:g}" for m in curves) + " |", "|" + "---|" * (len(curves) + 1)]
        for i, epoch in enumerate(epochs):
            lines.append(f"| {epoch} | " + " | ".join(f"{curves[m][i]:.2f}" for m in curves) + " |")
        settled = (
            f"the ranking of the margins last differs from the final one at epoch {last_unsettled}"
            if last_unsettled is not None
            else "the ranking of the margins is the final one from the first validated epoch"
        )
        lines += ["", f"On validation, {settled}."]
    return "\n".join(lines) + "\n"


def replace_section(document: str, key: str, section: str) -> str:
    """`document` with the text between `<!-- calibration:key -->` and `<!-- /calibration:key -->` replaced by
    `section` (the marked block is appended when absent)."""
    start, end = f"<!-- calibration:{key} -->", f"<!-- /calibration:{key} -->"
    block = f"{start}\n{section.rstrip()}\n{end}"
    if start in document and end in document:
        head, rest = document.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    return document.rstrip() + "\n\n" + block + "\n"
