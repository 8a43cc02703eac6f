"""The accuracy-versus-margin figure (the paper's Fig. 6 view), drawn so it cannot mislead.

One panel per shot. Every trial is a circle at its margin m and best validation accuracy, with the 95% CI as an error
bar and its colour its β. Filled circles ran the whole epoch budget; hollow ones were stopped early (by ASHA, or
diverged): their accuracy is that of fewer epochs, so the dashed trend line joins full-budget trials only. Each
point is labelled with its Optuna trial number and the epochs it trained (labels of neighbouring points stacked
and split left and right so none overlaps); the side table lists every trial's
hyperparameters under that number. Promoted trials add a black-edged diamond, just right of their circle: the test
accuracy ± 95% CI. The dotted line is chance (1 / way).

Matplotlib's object API (no pyplot state); `margin_figure_png` is the figure as PNG bytes, the same picture for
accuracy_vs_margin.png and TensorBoard's Images tab.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from sweep.report.tables import Report
from sweep.report.text import parameter_cells

FULL_BUDGET = "completed"


@dataclass(frozen=True)
class _Point:
    label: str  # "#3" (Optuna number) or the trial id
    margin: float
    scale: float
    epochs: int
    full_budget: bool
    val: dict[int, tuple[float, float]]  # shot -> (mean, ci95)
    test: dict[int, tuple[float, float]]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _points(report: Report) -> list[_Point]:
    promoted = {row["trial"]: row for row in report.promoted.to_dict("records")} if not report.promoted.empty else {}
    points = []
    for row in report.trials.to_dict("records"):
        number = row.get("optuna")
        label = f"#{int(number)}" if number is not None and not math.isnan(number) else str(row["trial"])[:8]
        val = {}
        for shot in report.spec.validation.shots:
            mean, ci = _number(row.get(f"val_{shot}shot")), _number(row.get(f"val_ci95_{shot}shot"))
            if mean is not None:
                val[shot] = (mean, ci or 0.0)
        test = {}
        for shot in report.spec.promotion.shots:
            mean = _number(promoted.get(row["trial"], {}).get(f"test_{shot}shot"))
            if mean is not None:
                test[shot] = (mean, _number(promoted[row["trial"]].get(f"ci95_{shot}shot")) or 0.0)
        points.append(
            _Point(
                label,
                float(row["margin"]),
                float(row["scale"]),
                int(row["epochs"]),
                row["stop"] == FULL_BUDGET,
                val,
                test,
            )
        )
    return points


LABEL_SPACING_PT = 9.0  # vertical distance between stacked labels (7-pt text)


def label_places(xy: list[tuple[float, float]], x_near: float, y_near: float) -> list[tuple[float, str]]:
    """Where each point's label goes, as (vertical offset in points, side "left" or "right" of the point), so that
    no two overlap: points within `x_near` of each other along x (a label's width) and `y_near` along y form a
    group; its labels are stacked LABEL_SPACING_PT apart around the group's middle, the highest point's on top, the
    leftmost point's label left of it and the others' right of theirs. In `xy`'s order."""
    order = sorted(range(len(xy)), key=lambda i: xy[i])
    groups: list[list[int]] = []
    for index in order:
        x, y = xy[index]
        for group in groups:
            if any(abs(x - xy[j][0]) <= x_near and abs(y - xy[j][1]) <= y_near for j in group):
                group.append(index)
                break
        else:
            groups.append([index])
    places = [(0.0, "left")] * len(xy)
    for group in groups:
        ranked = sorted(group, key=lambda i: -xy[i][1])
        for rank, index in enumerate(ranked):
            side = "left" if index == group[0] else "right"
            places[index] = (((len(ranked) - 1) / 2 - rank) * LABEL_SPACING_PT, side)
    return places


def _side_table(report: Report) -> str:
    """Monospaced lines: every trial's number, searched values, epochs and stop reason, best objective first."""
    rows = report.trials.to_dict("records")
    cells = [parameter_cells(row) for row in rows]
    widths = {column: max([len(column), *(len(cell[column]) for cell in cells)]) for column in parameter_cells({})}
    lines = [f"{'':>4} " + " ".join(f"{column:>{width}}" for column, width in widths.items()) + f" {'ep':>3}  stop"]
    for row, cell in zip(rows, cells):
        number = row.get("optuna")
        label = f"#{int(number)}" if number is not None and not math.isnan(number) else str(row["trial"])[:4]
        stop = {"completed": "full", "stopped early (ASHA)": "ASHA"}.get(row["stop"], row["stop"])
        values = " ".join(f"{cell[column]:>{width}}" for column, width in widths.items())
        lines.append(f"{label:>4} {values} {int(row['epochs']):>3}  {stop}")
    return "\n".join(lines)


def margin_figure(report: Report) -> Any:
    """The figure (matplotlib.figure.Figure): one panel per shot, and the table of trials."""
    from matplotlib import cm, colors, lines
    from matplotlib.figure import Figure

    spec = report.spec
    shots = sorted(set(spec.validation.shots) | set(spec.promotion.shots))
    points = _points(report)
    figure = Figure(figsize=(6.0 * len(shots) + 4.4, 5.4), layout="constrained")
    grid = figure.add_gridspec(1, len(shots) + 1, width_ratios=[1.0] * len(shots) + [0.72])
    panels = [figure.add_subplot(grid[0, i]) for i in range(len(shots))]
    for panel in panels[1:]:
        panel.sharey(panels[0])
    scales = [p.scale for p in points] or [1.0]
    norm = (
        colors.Normalize(min(scales), max(scales)) if max(scales) > min(scales) else colors.Normalize(0, 2 * scales[0])
    )
    cmap = cm.viridis
    trend_drawn = False
    margins = [p.margin for p in points] or [0.0]
    offset = 0.015 * (max(margins) - min(margins) or 1.0)
    chance = 100.0 / spec.validation.way

    for panel, shot in zip(panels, shots):
        labelled = [point for point in points if shot in point.val]
        means = [point.val[shot][0] for point in labelled]
        y_span = max([*means, chance]) - min([*means, chance]) or 1.0
        places = label_places(
            [(point.margin, point.val[shot][0]) for point in labelled],
            x_near=0.2 * (max(margins) - min(margins) or 1.0),
            y_near=0.05 * y_span,
        )
        label_place = {id(point): place for point, place in zip(labelled, places)}
        for point in points:
            colour = cmap(norm(point.scale))
            if shot in point.val:
                mean, ci = point.val[shot]
                panel.errorbar(
                    point.margin,
                    mean,
                    yerr=ci,
                    fmt="o",
                    markersize=9,
                    markerfacecolor=colour if point.full_budget else "white",
                    markeredgecolor=colour,
                    markeredgewidth=1.8,
                    ecolor=colour,
                    elinewidth=1.0,
                    capsize=2,
                    alpha=0.95,
                    zorder=3,
                )
                rise, side = label_place[id(point)]
                panel.annotate(
                    f"{point.label} · {point.epochs} ep",
                    (point.margin, mean),
                    xytext=(-8 if side == "left" else 8, rise),
                    textcoords="offset points",
                    ha="right" if side == "left" else "left",
                    va="center",
                    fontsize=7,
                    color="0.25",
                )
            if shot in point.test:
                mean, ci = point.test[shot]
                panel.errorbar(
                    point.margin + offset,
                    mean,
                    yerr=ci,
                    fmt="D",
                    markersize=8,
                    markerfacecolor=colour,
                    markeredgecolor="black",
                    markeredgewidth=1.2,
                    ecolor="black",
                    elinewidth=1.0,
                    capsize=3,
                    zorder=4,
                )
        full = sorted((p.margin, p.val[shot][0]) for p in points if p.full_budget and shot in p.val)
        if len(full) >= 2:
            panel.plot(*zip(*full), linestyle="--", color="0.45", linewidth=1.0, zorder=2)
            trend_drawn = True
        panel.margins(x=0.14)  # room for the labels left of the leftmost points
        panel.axhline(chance, color="0.6", linestyle=":", linewidth=1.0)
        panel.axvline(0.0, color="0.6", linestyle="-", linewidth=0.6)
        panel.set_title(f"{shot}-shot")
        panel.set_xlabel("margin m")
        panel.grid(alpha=0.25)
    panels[0].set_ylabel(f"{spec.validation.way}-way accuracy (%)")
    if max(scales) > min(scales):  # a colour bar only when β varies; a fixed β is named in the panels' titles
        figure.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=panels, label="β (scale)", pad=0.01, aspect=30)
    else:
        for panel, shot in zip(panels, shots):
            panel.set_title(f"{shot}-shot (β = {scales[0]:g} for every trial)")

    handles = [
        lines.Line2D(
            [], [], marker="o", linestyle="", color="0.3", markersize=8, label=f"val, full {spec.epochs} epochs"
        ),
        lines.Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color="0.3",
            markerfacecolor="white",
            markersize=8,
            label="val, stopped early",
        ),
        lines.Line2D(
            [],
            [],
            marker="D",
            linestyle="",
            color="0.6",
            markeredgecolor="black",
            markersize=7,
            label="test: promoted, baseline",
        ),
        lines.Line2D([], [], linestyle="--", color="0.45", label="full-budget trials"),
        lines.Line2D([], [], linestyle=":", color="0.6", label=f"chance ({chance:.0f} %)"),
    ]
    if not trend_drawn:
        del handles[3]
    panels[0].legend(handles=handles, fontsize=7.5, loc="best", framealpha=0.9)

    table_panel = figure.add_subplot(grid[0, len(shots)])
    table_panel.axis("off")
    table_panel.set_title("trials (#: Optuna number)", fontsize=9, loc="left")
    table_panel.text(0.0, 1.0, _side_table(report), family="monospace", fontsize=8, va="top", ha="left")
    val_episodes, test_episodes = spec.validation.episodes, spec.promotion.test_episodes
    figure.suptitle(
        f"{spec.dataset.name} / {spec.backbone} / {spec.loss}: best val accuracy ({val_episodes} episodes) and test "
        f"accuracy ({test_episodes} episodes) against the margin, 95% CIs",
        fontsize=10,
    )
    return figure


def margin_figure_png(report: Report, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    margin_figure(report).savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
