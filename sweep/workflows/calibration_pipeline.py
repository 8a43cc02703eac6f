"""Calibration as a library call: margins × training seeds of one configuration, run, tabulated and written.

`negmargin calibrate` parses its options, calls `run_calibration` and prints what it returns; the runs are
sweep.workflows.calibration's, the table sweep.workflows.calibration_table's.

    outcome = run_calibration("default", margins=[-0.2], seeds=[0, 1], overrides=["epochs=4"])
    print(outcome.table)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweep.workflows import calibration, calibration_table
from sweep.workflows.calibration import CalibrationPlan, RunResult
from sweep.workflows.calibration_seeds import TUNED_SEEDS


@dataclass(frozen=True)
class CalibrationOutcome:
    """What a calibration leaves: its plan (spec, params, margins, seeds, folder), every run's result, the Markdown
    table (also in <out>/calibration.md) and, when asked for, the rows of the learning-curve file after the merge."""

    plan: CalibrationPlan
    results: list[RunResult]
    table: str
    curve_rows: int | None = None


def run_calibration(
    spec: str | Path | None = None,
    *,
    margins: list[float],
    seeds: list[int],
    tuned_seeds: list[int] | None = None,
    overrides: list[str] | None = None,
    out: Path | None = None,
    workers: int | None = None,
    threads: int | None = None,
    device: str | None = None,
    results: Path | None = None,
    curves: Path | None = None,
    log: Callable[[str], None] = print,
) -> CalibrationOutcome:
    """Train `spec` (a file or preset, None: the embedded default; `overrides` "KEY=VALUE") at every margin (0 added)
    and seed to its full budget, score and tabulate as `negmargin calibrate` does, into `out` (default
    <storage_path>/calibration-<name>); `tuned_seeds`: the seeds the configuration was chosen on (default
    calibration_seeds.TUNED_SEEDS; the other seeds are held out); `results`: also write the table into this Markdown
    file (a marked section), `curves`: merge every run's learning curve into this CSV. Runs already saved in `out` are
    not run again."""
    spec_path = str(spec) if spec is not None else None
    sweep_spec, params = calibration.spec_and_params(spec_path, overrides or [], device=device)
    all_margins = sorted(set(margins) | {0.0}, reverse=True)
    default_workers, default_threads = calibration.default_workers(sweep_spec.device)
    plan = CalibrationPlan(
        spec=sweep_spec,
        params=params,
        margins=all_margins,
        seeds=seeds,
        out=(out or Path(sweep_spec.storage_path) / f"calibration-{sweep_spec.name}").resolve(),
        workers=workers or default_workers,
        threads_per_worker=threads or default_threads,
    )
    tuned = list(TUNED_SEEDS if tuned_seeds is None else tuned_seeds)
    s = sweep_spec
    log(
        f"calibration of {s.name}: {s.dataset.name}, {s.backbone}, {s.loss}, {s.epochs} epochs, "
        f"params {params}; margins {all_margins} x seeds {seeds} (tuned on {tuned}); {plan.workers} at once, "
        f"{plan.threads_per_worker} thread(s) each; in {plan.out}"
    )
    found = calibration.calibrate(plan, progress=log)
    title = f"{s.name}: {s.dataset.name}, {s.backbone}, {s.loss}, seeds {seeds}"
    table = calibration_table.markdown(found, s.objective, title, tuned_seeds=tuned)
    (plan.out / "calibration.md").write_text(table)
    if results is not None:
        document = results.read_text() if results.is_file() else ""
        results.write_text(calibration_table.replace_section(document, s.name, table))
    rows = None
    if curves is not None:
        from sweep.storage import learning_curves

        merged = learning_curves.merge(curves, [row for result in found for row in calibration.curve_rows(result)])
        rows = len(merged)
    return CalibrationOutcome(plan, found, table, rows)
