"""Reports of a sweep: the trial table, the promoted configurations, and the TensorBoard view of both.

`build(experiment)` returns the tables; `render(tables, fmt)` prints them as table | md | csv | json;
`write_tensorboard(experiment)` writes per-trial curves, the HParams dashboard and the accuracy-versus-margin figure.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from data.atomic import write_text_atomically
from sweep.experiment import Experiment
from sweep.results import TrialRecord, load_trials
from sweep.spec import SweepSpec
from sweep.trial.config import SEARCHED_PARAMETERS


@dataclass
class Report:
    """The two tables of a sweep report."""

    experiment: Experiment
    spec: SweepSpec
    trials: pd.DataFrame
    promoted: pd.DataFrame
    records: list[TrialRecord]


def _trial_row(record: TrialRecord, spec: SweepSpec) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": record.trial_id}
    row.update({name: record.params.get(name) for name in SEARCHED_PARAMETERS})
    row.update({"epochs": record.epochs_run, "stop": record.stop_reason, "best_epoch": record.best.get("epoch")})
    for shot in spec.validation.shots:
        row[f"val_{shot}shot"] = record.best.get(f"val_acc_{shot}shot")
    row["objective"] = record.best_objective
    return row


def _promoted_rows(promotion: dict[str, Any] | None) -> list[dict[str, Any]]:
    if promotion is None:
        return []
    rows = []
    for trial in promotion["trials"]:
        row: dict[str, Any] = {"rank": trial["rank"], "trial": trial["trial_id"]}
        row.update({name: trial["params"].get(name) for name in SEARCHED_PARAMETERS})
        for shot, test in trial["test"].items():
            row[f"test_{shot}shot"] = test["mean"]
            row[f"ci95_{shot}shot"] = test["ci95"]
        for shot, seeds in trial.get("seeds", {}).items():
            row[f"seeds_{shot}shot"] = f"{seeds['mean']:.2f} ± {seeds['std']:.2f} (n={seeds['n']})"
        failed = trial.get("seeds_failed", [])
        if failed:
            row["seeds_failed"] = ", ".join(f"seed {run['seed']} {run['reason'].split(':')[0]}" for run in failed)
        rows.append(row)
    return rows


def build(experiment: Experiment) -> Report:
    """The report tables of an experiment, from its Tune results and promotion file."""
    spec = experiment.spec()
    records = load_trials(experiment, spec)
    trials = pd.DataFrame([_trial_row(record, spec) for record in records])
    if not trials.empty:
        trials = trials.sort_values("objective", ascending=False, na_position="last").reset_index(drop=True)
    return Report(experiment, spec, trials, pd.DataFrame(_promoted_rows(experiment.promotion())), records)


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table, cells formatted by `format_cell`."""
    if frame.empty:
        return "_none_\n"
    cells = frame.map(format_cell)
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def format_cell(value: Any) -> str:
    """A table cell as text: – for missing, numbers to a few significant digits."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return (
            f"{value:.4g}"
            if abs(value) < 1e-2 and value != 0
            else f"{value:.2f}"
            if abs(value) >= 1
            else f"{value:.3f}"
        )
    return str(value)


def render(report: Report, fmt: str = "table") -> str:
    """The report as text: a terminal table, Markdown, CSV or JSON."""
    if fmt == "json":
        return json.dumps(
            {
                "experiment": str(report.experiment.root),
                "trials": report.trials.to_dict("records"),
                "promoted": report.promoted.to_dict("records"),
            },
            indent=2,
            default=str,
        )
    if fmt == "csv":
        trials = report.trials.assign(table="trials")
        promoted = report.promoted.assign(table="promoted")
        return pd.concat([trials, promoted], ignore_index=True).to_csv(index=False)
    spec = report.spec
    title = f"{spec.name}: {spec.dataset.name} / {spec.backbone} / {spec.loss} — objective {spec.objective}"
    if fmt == "md":
        return (
            f"# {title}\n\nExperiment: `{report.experiment.root}`\n\n## Trials\n\n{markdown_table(report.trials)}\n"
            f"## Promoted (test, mean ± 95% CI)\n\n{markdown_table(report.promoted)}"
        )
    trials = report.trials.map(format_cell).to_string(index=False) if not report.trials.empty else "(no trials)"
    promoted = (
        report.promoted.map(format_cell).to_string(index=False)
        if not report.promoted.empty
        else "(not promoted yet: negmargin sweep promote EXP)"
    )
    return (
        f"{title}\n{report.experiment.root}\n\nTrials\n{trials}\n\n"
        f"Promoted (test accuracy %, mean and 95% CI half-width)\n{promoted}\n"
    )


# ---------------------------------------------------------------- TensorBoard


def _hparams(params: dict[str, Any]) -> dict[str, float]:
    return {name: float(params[name]) for name in SEARCHED_PARAMETERS if params.get(name) is not None}


def _margin_figure(report: Report) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    frame = report.trials
    for shot in report.spec.validation.shots:
        column = f"val_{shot}shot"
        if column in frame and frame[column].notna().any():
            axes.scatter(frame["margin"], frame[column], label=f"val {shot}-shot")
    for shot in report.spec.promotion.shots:
        column = f"test_{shot}shot"
        if column in report.promoted:
            axes.errorbar(
                report.promoted["margin"],
                report.promoted[column],
                yerr=report.promoted[f"ci95_{shot}shot"],
                fmt="D",
                capsize=3,
                label=f"test {shot}-shot (promoted)",
            )
    axes.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xlabel("margin m")
    axes.set_ylabel("5-way accuracy (%)")
    axes.set_title(f"{report.spec.dataset.name} / {report.spec.backbone} / {report.spec.loss}")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def write_tensorboard(experiment: Experiment, report: Report | None = None) -> Path:
    """Rewrite <experiment>/tensorboard: one run per trial (curves + HParams), a summary run with the margin figure."""
    from torch.utils.tensorboard import SummaryWriter

    report = report or build(experiment)
    records = {record.trial_id: record for record in report.records}  # read once, by build()
    promoted = {row["trial"]: row for row in report.promoted.to_dict("records")}
    root = experiment.tensorboard_dir
    shutil.rmtree(root, ignore_errors=True)
    for trial_id, record in records.items():
        with SummaryWriter(str(root / f"trial_{trial_id}")) as writer:
            numeric = record.history.select_dtypes("number")
            for _, row in numeric.iterrows():
                step = int(row.get("epoch", row.get("training_iteration", 0)))
                for name in _curve_names(numeric.columns):
                    if pd.notna(row[name]):
                        writer.add_scalar(f"trial/{name}", float(row[name]), step)
            final = {
                f"hparam/{k}": float(v) for k, v in record.best.items() if str(k).startswith("val_acc") and pd.notna(v)
            }
            final["hparam/epochs"] = float(record.epochs_run)
            for key, value in promoted.get(trial_id, {}).items():
                if str(key).startswith(("test_", "ci95_")) and pd.notna(value):
                    final[f"hparam/{key}"] = float(value)
            writer.add_hparams(_hparams(record.params), final, run_name=".")
    with SummaryWriter(str(root / "summary")) as writer:
        figure = _margin_figure(report)
        figure.savefig(experiment.root / "accuracy_vs_margin.png", dpi=120)
        writer.add_figure("sweep/accuracy_vs_margin", figure)
    return root


_BOOKKEEPING = {
    "epoch",
    "training_iteration",
    "timestamp",
    "time_this_iter_s",
    "time_total_s",
    "time_since_restore",
    "iterations_since_restore",
    "pid",
    "done",
    "checkpoint_dir_name",
}


def _curve_names(columns: Any) -> list[str]:
    return [name for name in columns if name not in _BOOKKEEPING and "/" not in name]


def write_all(experiment: Experiment) -> Report:
    """Build the report, save report.md, and refresh the TensorBoard directory."""
    report = build(experiment)
    write_text_atomically(experiment.report_file, render(report, "md"))
    write_tensorboard(experiment, report)
    return report
