"""What a study writes: study.json, the per-margin table (md / csv / json), the two figures, and TensorBoard.

Figures: accuracy vs m on novel and held-out base classes, 1- and 5-shot, each mean with its 95 % CI over episodes
and, with several seeds, each seed's mean (paper Fig. 1); D_inter, D_intra and φ vs m on held-out base and novel
features, mean ± standard deviation over seeds (paper Fig. 2). A star marks a margin that beats m = 0 (sweep.study.
compare); the bars are each mean's own CI, wider than that of a paired difference, which the table gives.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pandas as pd

from data.atomic import write_text_atomically
from evaluation.baseline_comparison import ALPHA
from sweep.report.text import format_number, markdown_table, with_ci
from sweep.scoring.checkpoint_scores import plain_json
from sweep.study import study_file
from sweep.study.compare import DISCRIMINABILITY
from sweep.study.layout import FIGURES, StudyDir
from sweep.study.scoring import DOMAINS
from sweep.study.study_file import Study

DOMAIN_TITLES = {"novel": "novel classes", "base": "held-out base classes"}
DOMAIN_COLOURS = {"novel": "tab:red", "base": "tab:blue"}  # the paper's colours: novel red, base blue
MEASURE_TITLES = {
    "inter": "D_inter, inter-class (Eq. 3)",
    "intra": "D_intra, intra-class (Eq. 3)",
    "phi": "φ = D_inter / D_intra (Eq. 4)",
}


def table(study: Study) -> pd.DataFrame:
    """One row per margin: trained loss, seeds, best epoch, base train accuracy, accuracies per domain and shot
    with CIs, the paired difference to m = 0 on novel classes with its p-values, discriminability per domain."""
    comparisons = {(c.domain, c.shot, c.margin): c for c in study.comparisons}
    runs = pd.DataFrame([run.model_dump() for run in study.runs])
    rows = []
    for entry in study.margins:
        margin = entry.margin
        mine = runs[(runs["margin"] == margin) & runs["epoch"].notna()] if not runs.empty else runs
        row: dict[str, Any] = {
            "margin": margin,
            "loss": entry.loss,
            "seeds": len(entry.seeds),
            "best_epoch": _whole_if_integral(float(mine["epoch"].mean())) if len(mine) else None,
            "train_acc": float(mine["train_acc"].mean()) if len(mine) else None,
        }
        for domain in DOMAINS:
            for shot in study.shots:
                accuracy = entry.accuracy.get(domain, {}).get(str(shot))
                row[f"{domain}_{shot}shot"] = accuracy.mean if accuracy else None
                row[f"{domain}_{shot}shot_ci95"] = accuracy.ci95 if accuracy else None
        for shot in study.shots:
            compared = comparisons.get(("novel", shot, margin))
            row[f"novel_{shot}shot_diff"] = compared.mean_diff if compared else None
            row[f"novel_{shot}shot_diff_ci95"] = compared.ci95 if compared else None
            row[f"novel_{shot}shot_p_holm"] = compared.t_pvalue_holm if compared else None
            row[f"novel_{shot}shot_beats_0"] = compared.significant if compared else None
        for domain in DOMAINS:
            for key in DISCRIMINABILITY:
                value = entry.discriminability.get(domain, {}).get(key)
                row[f"{key}_{domain}"] = value.mean if value else None
        rows.append(row)
    return pd.DataFrame(rows)


def _whole_if_integral(value: float) -> int | float:
    """16.0 -> 16 (one seed's best epoch), 15.5 stays (the mean over seeds)."""
    return int(value) if value.is_integer() else value


def readable_table(frame: pd.DataFrame, shots: list[int]) -> pd.DataFrame:
    """`table`'s rows for a person (terminal and Markdown): accuracy % as "mean ± CI", the novel difference to m = 0
    as "+d ± CI" with a * where it beats m = 0, φ per domain; every column is in table.csv / table.json."""
    rows = []
    for row in frame.to_dict("records"):
        shown: dict[str, Any] = {"m": f"{row['margin']:g}", "loss": row["loss"], "best epoch": row["best_epoch"]}
        for shot in shots:
            shown[f"novel {shot}-shot"] = with_ci(row[f"novel_{shot}shot"], row[f"novel_{shot}shot_ci95"])
            diff = with_ci(row[f"novel_{shot}shot_diff"], row[f"novel_{shot}shot_diff_ci95"], signed=True)
            beats = row[f"novel_{shot}shot_beats_0"]
            shown[f"vs m=0 {shot}-shot"] = diff + (" *" if pd.notna(beats) and beats else "")
        for shot in shots:
            shown[f"base {shot}-shot"] = with_ci(row[f"base_{shot}shot"], row[f"base_{shot}shot_ci95"])
        for domain in DOMAINS:
            shown[f"φ {domain}"] = row[f"phi_{domain}"]
        rows.append(shown)
    return pd.DataFrame(rows)


READABLE_NOTE = (
    "accuracy % on fixed episodes, mean ± 95 % CI; vs m=0: paired difference on the same novel episodes, "
    f"* = beats m = 0 (Holm-adjusted paired t and Wilcoxon p < {ALPHA:g}); φ = D_inter / D_intra"
)


def render(study: Study, fmt: str) -> str:
    """The table as text: a terminal table and Markdown (with the answer) for people, CSV or JSON with every column."""
    frame = table(study)
    if fmt == "json":
        return json.dumps(frame.to_dict("records"), indent=2, default=plain_json)
    if fmt == "csv":
        return frame.to_csv(index=False)
    readable = readable_table(frame, study.shots)
    if fmt == "md":
        return (
            f"# Margin study: {study.setting}\n\nExperiment: `{study.experiment}`; configuration: "
            f"{study.request.source}; {study.request.seeds} seed(s); "
            f"{_episodes_line(study)}\n\n{markdown_table(readable)}\n{READABLE_NOTE}; every column in table.csv.\n\n"
            f"**{study.answer}**\n"
        )
    return readable.map(format_number).to_string(index=False) + f"\n({READABLE_NOTE})\n"


def _episodes_line(study: Study) -> str:
    parts = []
    for domain in DOMAINS:
        first = next(iter(study.episodes[domain].values()))
        parts.append(f"{domain}: {first.episodes} {first.way}-way episodes per shot, {first.queries} queries")
    return "; ".join(parts)


def write_all(study_dir: StudyDir, study: Study) -> None:
    """study.json, table.{md,csv,json}, both figures as PNG, and study/tensorboard."""
    study_file.write(study_dir.study_file, study)
    for fmt in ("md", "csv", "json"):
        write_text_atomically(study_dir.table_file(fmt), render(study, fmt))
    figures = {"accuracy_vs_margin": accuracy_figure(study), "discriminability_vs_margin": separation_figure(study)}
    for name in FIGURES:
        figures[name].savefig(study_dir.figure_file(name), dpi=120)
    write_tensorboard(study_dir, study, figures)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy_figure(study: Study) -> Any:
    """2 × shots panels: rows novel / held-out base, columns shots; mean ± 95 % CI vs m, seeds as dots."""
    plt = _pyplot()
    shots = study.shots
    figure, axes = plt.subplots(2, len(shots), figsize=(4.2 * len(shots), 6.4), squeeze=False)
    entries = study.scored_margins()
    margins = [entry.margin for entry in entries]
    winners = {(c.domain, c.shot, c.margin) for c in study.comparisons if c.significant}
    for row, domain in enumerate(DOMAINS):
        for column, shot in enumerate(shots):
            ax = axes[row][column]
            values = [entry.accuracy[domain][str(shot)] for entry in entries]
            colour = DOMAIN_COLOURS[domain]
            means = [value.mean for value in values]
            ax.errorbar(margins, means, yerr=[v.ci95 for v in values], fmt="o-", color=colour, capsize=3)
            if study.request.seeds > 1:  # beside the bar, not on it
                shift = 0.03 * (max(margins) - min(margins))
                for margin, value in zip(margins, values):
                    seeds_x = [margin + shift] * len(value.per_seed)
                    ax.scatter(seeds_x, value.per_seed, s=12, color=colour, alpha=0.5, marker="x")
            for margin, mean, value in zip(margins, means, values):
                if (domain, shot, margin) in winners:
                    ax.annotate("★", (margin, mean + value.ci95), ha="center", va="bottom", color="black")
            if 0.0 in margins:
                ax.axhline(means[margins.index(0.0)], color="grey", linewidth=0.7, linestyle=":")
            _margin_axis(ax, margins)
            ax.set_title(f"{DOMAIN_TITLES[domain]}, {shot}-shot", fontsize=10)
            ax.set_ylabel(f"{_way(study)}-way accuracy (%)")
    seeds = study.request.seeds
    episodes = next(iter(study.episodes["novel"].values())).episodes
    figure.suptitle(
        f"{study.setting}: few-shot accuracy vs margin, {seeds} training seed{'s' if seeds > 1 else ''}"
        f"{' (×: each seed)' if seeds > 1 else ''}\nbars: 95 % CI of each mean over {episodes} episodes; "
        "dotted line: m = 0; ★: beats m = 0 in the paired test (table)",
        fontsize=9,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.94))
    return figure


def _margin_axis(ax: Any, margins: list[float]) -> None:
    """The shared x axis: a tick at every margin studied, a dashed line at m = 0."""
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle="--", zorder=0)
    ax.set_xticks(margins)
    ax.set_xticklabels([f"{m:g}" for m in margins], rotation=45 if len(margins) > 5 else 0, fontsize=8)
    ax.set_xlabel("margin m")
    ax.margins(x=0.08, y=0.15)


def _way(study: Study) -> int:
    return next(iter(study.episodes["novel"].values())).way


def separation_figure(study: Study) -> Any:
    """2 × 3 panels: rows held-out base / novel, columns D_inter, D_intra, φ; mean ± std over seeds vs m."""
    plt = _pyplot()
    figure, axes = plt.subplots(2, len(DISCRIMINABILITY), figsize=(12, 6.4), squeeze=False)
    entries = study.scored_margins()
    margins = [entry.margin for entry in entries]
    for row, domain in enumerate(("base", "novel")):
        for column, key in enumerate(DISCRIMINABILITY):
            ax = axes[row][column]
            values = [entry.discriminability[domain][key] for entry in entries]
            ax.errorbar(
                margins,
                [v.mean for v in values],
                yerr=[v.std for v in values],
                fmt="o-",
                color=DOMAIN_COLOURS[domain],
                capsize=3,
            )
            _margin_axis(ax, margins)
            if row == 0:
                ax.set_title(MEASURE_TITLES[key], fontsize=10)
            if column == 0:
                ax.set_ylabel(DOMAIN_TITLES[domain], fontsize=10, color=DOMAIN_COLOURS[domain])
    seeds = study.request.seeds
    bars = f"mean ± standard deviation over {seeds} seeds" if seeds > 1 else "one training seed"
    figure.suptitle(
        f"{study.setting}: discriminability of the L2-normalised features vs margin ({bars})\n"
        f"held-out base: {study.held_out_images} images never trained on; novel: the whole test split",
        fontsize=9,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    return figure


def write_tensorboard(study_dir: StudyDir, study: Study, figures: dict[str, Any]) -> None:
    """Rewrite study/tensorboard: a `figures` run (Images tab) and one run per margin (its numbers as scalars and
    HParams, the margin as the hyperparameter)."""
    from torch.utils.tensorboard import SummaryWriter

    root = study_dir.tensorboard_dir
    shutil.rmtree(root, ignore_errors=True)
    with SummaryWriter(str(root / "figures")) as writer:
        for name in FIGURES:
            writer.add_figure(f"study/{name}", figures[name], close=False)
    for row in table(study).to_dict("records"):
        metrics = {
            f"study/{key}": float(value)
            for key, value in row.items()
            if key not in ("margin", "loss", "seeds") and isinstance(value, (int, float)) and not pd.isna(value)
        }
        with SummaryWriter(str(root / f"m={row['margin']:g}")) as writer:
            writer.add_hparams({"margin": float(row["margin"]), "loss": str(row["loss"])}, metrics, run_name=".")
