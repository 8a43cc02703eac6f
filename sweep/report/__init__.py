"""Reports of a sweep: what a person reads after `negmargin sweep run`.

`build(experiment)` gathers the report (tables.py); `render(report, fmt)` prints it, the answer first (text.py);
`write_all(experiment)` also saves report.md, accuracy_vs_margin.png (figure.py) and the TensorBoard directory
(tensorboard_files.py). Building and rendering import neither torch nor TensorBoard; only writing the figure and the
TensorBoard files loads matplotlib and tensorboard.
"""

from __future__ import annotations

from pathlib import Path

from data.atomic import write_atomically, write_text_atomically
from sweep.report.tables import Report, assemble, build
from sweep.report.text import pointer_lines, render
from sweep.storage.experiment import Experiment

__all__ = ["Report", "assemble", "build", "pointer_lines", "render", "write_all", "write_figure", "write_tensorboard"]


def write_figure(report: Report) -> bytes:
    """Save accuracy_vs_margin.png; return its PNG bytes."""
    from sweep.report.figure import margin_figure_png

    png = margin_figure_png(report)
    write_atomically(report.experiment.margin_figure, lambda file: file.write(png), mode=0o644)
    return png


def write_tensorboard(experiment: Experiment, report: Report | None = None) -> Path:
    """Rewrite <experiment>/tensorboard (HParams, per-trial curves, the margin figure) and the figure file."""
    from sweep.report import tensorboard_files

    report = report or build(experiment)
    return tensorboard_files.write(report, write_figure(report))


def write_all(experiment: Experiment) -> Report:
    """Build the report, save report.md, the figure and the TensorBoard directory; return the report."""
    report = build(experiment)
    write_text_atomically(experiment.report_file, render(report, "md"))
    write_tensorboard(experiment, report)
    return report
