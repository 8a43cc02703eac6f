"""The report as text: the answer first (the selected hyperparameters and their test accuracy ± CI), then the trial
table, how each stopped trial ended, and the promoted configurations. Formats: table (terminal), md, csv, json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sweep.report.stops import asha_rule
from sweep.report.tables import START_LEGEND, Report
from sweep.schema.hyperparameters import HYPERPARAMETERS
from sweep.storage import optuna_study
from sweep.storage.experiment import Experiment
from sweep.storage.selections import Selection


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def format_number(value: Any) -> str:
    """A table cell: – for missing, 2 significant digits in e-notation below 0.01, 3 decimals below 1, else 2."""
    if _missing(value):
        return "–"
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-2:
            return f"{value:.1e}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return str(value)


def with_ci(mean: Any, ci: Any, signed: bool = False) -> str:
    """A "mean ± CI" cell ("+d ± CI" with `signed`, for a difference); – for missing, the mean alone without a CI."""
    if mean is None or pd.isna(mean):
        return "–"
    shown = f"{mean:+.2f}" if signed else f"{mean:.2f}"
    return shown if ci is None or pd.isna(ci) else f"{shown} ± {ci:.2f}"


def parameter_cells(params: Mapping[str, Any]) -> dict[str, str]:
    """The searched values as report cells, one per report column (sweep.schema.hyperparameters): {"m": "-0.061",
    "β": "11.00", "weight decay": "1.6e-04", "DropBlock": "0.160 / 2"}; a shared column joins its values with " / "
    and reads "off" when the first is 0 or missing, a missing value reads –."""
    columns: dict[str, list[Any]] = {}
    for parameter in HYPERPARAMETERS:
        value = params.get(parameter.name)
        columns.setdefault(parameter.report_column, []).append(None if _missing(value) else parameter.cast(value))
    cells = {}
    for column, values in columns.items():
        shared_and_off = len(values) > 1 and not values[0]
        cells[column] = "off" if shared_and_off else " / ".join(format_number(value) for value in values)
    return cells


def _parameter_columns(frame: pd.DataFrame) -> dict[str, list[str]]:
    """`parameter_cells` of every row of `frame`, as columns."""
    rows = [parameter_cells(row) for row in frame.to_dict("records")]
    return {column: [row[column] for row in rows] for column in rows[0]} if rows else {}


def format_params(params: Mapping[str, Any]) -> str:
    """m -0.061, β 11.00, weight decay 1.6e-04, DropBlock 0.160 / 2 (rate / block size)."""
    return ", ".join(f"{column} {cell}" for column, cell in parameter_cells(params).items())


def _title(report: Report) -> str:
    spec = report.spec
    return (
        f"{spec.name}: {spec.dataset.name} / {spec.backbone} / {spec.loss}, {len(report.records)} trials of up to "
        f"{spec.epochs} epochs, selected by {spec.objective}"
    )


def answer_lines(report: Report) -> list[str]:
    """The selected hyperparameters per shot with their test accuracy ± 95% CI (or what to run to get them)."""
    if report.selected:
        episodes = report.selected[0].test_episodes
        lines = [f"Selected hyperparameters (test accuracy on {episodes} fixed test episodes, mean ± 95% CI)"]
        for entry in report.selected:
            lines.append(
                f"  {entry.shot}-shot: {entry.test_acc:.2f} ± {entry.test_ci95:.2f} %   "
                f"{format_params(entry.params)}   (trial {entry.trial_id}, val {entry.val_acc:.2f} %)"
            )
            lines.append(f"    {choice_line(entry, report.spec.seed)}")
            lines.append(f"    {baseline_line(entry)}")
            lines += [f"    {line}" for line in seed_lines(entry, report.spec.seed)]
        return lines
    if report.trials.empty or report.trials["objective"].isna().all():
        return ["No trial has a validation score yet."]
    best = report.trials.iloc[0]
    return [
        f"Not promoted yet. Best by validation: trial {best['trial']} ({report.spec.objective} "
        f"{best['objective']:.2f} after {best['epochs']} epochs): {format_params(best.to_dict())}",
        f"  negmargin sweep promote {report.experiment.root} scores the top {report.spec.promotion.top_k} on the "
        "test episodes.",
    ]


def baseline_line(entry: Selection) -> str:
    """'vs the baseline, m = 0 (trial 9a0e…): +2.10 ± 0.70 points (paired t p = …, Wilcoxon p = …): beats the
    baseline', or why there is no comparison."""
    found = entry.baseline
    if entry.vs_baseline is None or isinstance(found, str):
        return f"vs the baseline: {found if isinstance(found, str) else 'none'}"
    return f"vs the baseline, {found.label} (trial {found.trial_id}): {entry.vs_baseline.text}"


CALIBRATION_POINTER = 'README, "Calibration"; benchmarks/RESULTS.md'  # where the calibration's per-seed spread is


def choice_line(entry: Selection, sweep_seed: int) -> str:
    """What the answer was chosen on among the promoted trials: one training seed's validation (`sweep_seed`, the one
    every trial trains with), or the validation averaged over the seeds promotion.extra_seeds retrained."""
    if entry.val_seeds > 1:
        return (
            f"chosen on validation averaged over {entry.val_seeds} training seeds (promotion.extra_seeds; the val "
            "above is that mean)"
        )
    return (
        f"chosen on one training seed's validation (seed {sweep_seed}); promotion.extra_seeds retrains the promoted "
        "configurations with more seeds and chooses on their mean"
    )


def seed_lines(entry: Selection, sweep_seed: int) -> list[str]:
    """How sure the answer's difference to the baseline can be: from one training seed (`sweep_seed`), pointing at
    the calibration's per-seed spread; or from the seeds promotion.extra_seeds retrained, whose per-seed differences
    the baseline line lists. Nothing without a comparison, or when the selected configuration is the baseline."""
    versus, found = entry.vs_baseline, entry.baseline
    if versus is None or isinstance(found, str) or entry.trial_id == found.trial_id:
        return []
    if versus.seeds <= 1:
        return [
            f"from one training seed (seed {sweep_seed}): another seed can move this difference; by how much is the "
            f"calibration's per-seed spread ({CALIBRATION_POINTER})"
        ]
    return [f"from {versus.seeds} training seeds (promotion.extra_seeds): the per-seed differences are listed above"]


def _trial_table(report: Report) -> pd.DataFrame:
    frame = report.trials
    if frame.empty:
        return frame
    shots = report.spec.validation.shots
    table = pd.DataFrame(
        {
            "trial": frame["trial"],
            "optuna #": [format_number(None if pd.isna(n) else int(n)) for n in frame["optuna"]],
            "start": frame["start"].map(format_number),
            **_parameter_columns(frame),
            "epochs": frame["epochs"],
            "stop": frame["stop"],
            "best epoch": frame["best_epoch"].map(lambda e: format_number(None if pd.isna(e) else int(e))),
        }
    )
    for shot in shots:
        table[f"val {shot}-shot"] = [
            with_ci(m, c) for m, c in zip(frame[f"val_{shot}shot"], frame[f"val_ci95_{shot}shot"])
        ]
    if len(shots) > 1:
        table[report.spec.objective] = frame["objective"].map(format_number)
    return table


def _promoted_table(report: Report) -> pd.DataFrame:
    frame = report.promoted
    if frame.empty:
        return frame
    table = pd.DataFrame(
        {
            "rank": frame["rank"],
            "trial": frame["trial"],
            **_parameter_columns(frame),
            "checkpoint epoch": frame["epoch"],
        }
    )
    for shot in report.spec.promotion.shots:
        if f"test_{shot}shot" in frame:
            table[f"test {shot}-shot"] = [
                with_ci(m, c) for m, c in zip(frame[f"test_{shot}shot"], frame[f"ci95_{shot}shot"])
            ]
    for shot in report.spec.promotion.shots:
        if f"vs_baseline_{shot}shot" in frame:
            table[f"vs baseline {shot}-shot"] = [
                with_ci(m, c, signed=True)
                for m, c in zip(frame[f"vs_baseline_{shot}shot"], frame[f"vs_baseline_ci95_{shot}shot"])
            ]
    for column in frame.columns:
        if column.startswith(("seeds_", "seeds_failed")):
            table[column.replace("_", " ")] = frame[column].fillna("–")
    return table


def stop_lines(report: Report) -> list[str]:
    """One line per trial that did not run the whole budget: at which epoch it stopped and why."""
    return [f"  {stop['trial']}: {stop['note']}" for stop in report.stops]


def pointers(experiment: Experiment) -> list[tuple[str, str, str]]:
    """Where to look further, as (what, path or command, note): the directory, report.md, the figure, TensorBoard,
    optuna-dashboard and the study it opens, and the GPU packing decision when there is one."""
    return [
        ("Results", str(experiment.root), ""),
        ("Report", str(experiment.report_file), ""),
        ("Figure", str(experiment.margin_figure), "also in TensorBoard's Images tab"),
        # the sweep's own folder: a study (study/tensorboard) declares its own HParams experiment, and TensorBoard
        # shows one per logdir, so the experiment root after `sweep study` would show either
        ("TensorBoard", f"tensorboard --logdir {experiment.tensorboard_dir}", ""),
        ("Optuna", optuna_study.dashboard_command(experiment), f"study {optuna_study.study_name(experiment)}"),
        *gpu_packing_pointer(experiment),
    ]


def gpu_packing_pointer(experiment: Experiment) -> list[tuple[str, str, str]]:
    """With resources.gpu: auto, the GPUs per trial the probe chose and why (sweep.storage.gpu_packing_file); else
    nothing."""
    from sweep.storage import gpu_packing_file

    decision = gpu_packing_file.load(experiment)
    return [("GPUs", str(experiment.gpu_packing_file), decision.describe())] if decision else []


def pointer_lines(experiment: Experiment) -> list[str]:
    """`pointers` as aligned terminal lines."""
    return [f"{what + ':':<13}{where}" + (f"   ({note})" if note else "") for what, where, note in pointers(experiment)]


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table, cells formatted by `format_number`."""
    if frame.empty:
        return "_none_\n"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(format_number(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def _terminal_table(frame: pd.DataFrame, empty: str) -> str:
    return frame.to_string(index=False) if not frame.empty else empty


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records")) if not frame.empty else []


REPORT_FORMAT = 1  # the version of the JSON report's layout (its "selected" rows are sweep.storage.selections')


def render(report: Report, fmt: str = "table") -> str:
    """The report as text: a terminal table, Markdown, CSV or JSON."""
    if fmt == "json":
        return json.dumps(
            {
                "format": REPORT_FORMAT,
                "experiment": str(report.experiment.root),
                "study": optuna_study.study_name(report.experiment),
                "selected": [entry.model_dump(exclude_none=True) for entry in report.selected],
                "trials": _records(report.trials),
                "stops": report.stops,
                "promoted": _records(report.promoted),
            },
            indent=2,
            default=str,
        )
    if fmt == "csv":
        trials = report.trials.assign(table="trials")
        promoted = report.promoted.assign(table="promoted")
        return pd.concat([trials, promoted], ignore_index=True).to_csv(index=False)
    not_promoted = f"(not promoted yet: negmargin sweep promote {report.experiment.root})"
    stops = stop_lines(report) or ["  (none: every trial ran its full budget)"]
    if fmt == "md":
        where = "\n".join(
            f"- {what}: `{place}`" + (f" ({note})" if note else "") for what, place, note in pointers(report.experiment)
        )
        return (
            f"# {_title(report)}\n\n"
            + "\n".join(line.strip() if i == 0 else f"- {line.strip()}" for i, line in enumerate(answer_lines(report)))
            + f"\n\n## Trials\n\n{markdown_table(_trial_table(report))}\n{START_LEGEND}.\n\n"
            + f"## Trials that stopped before epoch {report.spec.epochs}\n\n{asha_rule(report.spec)}.\n\n"
            + "\n".join(f"- {line.strip()}" for line in stops)
            + "\n\n## Promoted (test accuracy %, mean ± 95% CI)\n\n"
            + (markdown_table(_promoted_table(report)) if not report.promoted.empty else f"{not_promoted}\n")
            + f"\n## Where to look\n\n{where}\n"
        )
    return (
        f"{_title(report)}\n{report.experiment.root}\n\n"
        + "\n".join(answer_lines(report))
        + f"\n\nTrials (best {report.spec.objective} first; val accuracy % at the best epoch ± 95% CI)\n"
        + _terminal_table(_trial_table(report), "(no trials)")
        + f"\n{START_LEGEND}"
        + f"\n\nTrials that stopped before epoch {report.spec.epochs} ({asha_rule(report.spec)})\n"
        + "\n".join(stops)
        + "\n\nPromoted (test accuracy %, mean ± 95% CI)\n"
        + _terminal_table(_promoted_table(report), not_promoted)
        + "\n"
    )
