"""The margins a study trains: the default grid of a loss, a --margins list, and their checks (torch-free).

The default is `DEFAULT_COUNT` margins spanning the range the sweep searched (its `search.margin` bounds), or the
loss's own span (models.catalog: Neg-Cosine −0.5 … 0.3, Neg-Softmax −1 … 0) when the sweep fixed the margin, clipped
to what the loss can train (Neg-Softmax m ≤ 0; a cosine head either sign, m > 0 training the CosFace-style head),
always with m = 0: every margin is compared with it.
"""

from __future__ import annotations

import math

from models.catalog import LOSSES, study_margin_problem
from sweep.errors import SpecError

DEFAULT_COUNT = 7
_DECIMALS = 4  # grid points are rounded, so that a label like m=-0.1667 names the margin exactly


def margin_span(loss: str, searched: tuple[float, float]) -> tuple[float, float]:
    """The range a default grid spans: the searched bounds widened to hold 0 (the loss's span if they are one
    point), then clipped to the margins the loss trains."""
    low, high = searched
    if low == high:
        low, high = LOSSES[loss].margin_span
    low, high = min(low, 0.0), max(high, 0.0)
    if study_margin_problem(loss, high):
        high = 0.0
    if low == high:
        raise SpecError(f"loss {loss!r} takes no margin: there is no margin study of it")
    return low, high


def default_margins(loss: str, searched: tuple[float, float], count: int = DEFAULT_COUNT) -> list[float]:
    """`count` margins spanning `margin_span(loss, searched)`, 0 among them: the count − 1 others are shared by the
    negative and positive sides in proportion to their lengths (at least one on each side that has length)."""
    low, high = margin_span(loss, searched)
    others = count - 1
    if low < 0 < high:
        negative = min(max(1, round(others * -low / (high - low))), others - 1)
    else:
        negative = others if low < 0 else 0
    positive = others - negative
    grid = [low + (0.0 - low) * i / negative for i in range(negative)] if negative else []
    grid += [0.0] + [high * (i + 1) / positive for i in range(positive)]
    return sorted({_rounded(m) for m in grid})


def _rounded(margin: float) -> float:
    value = round(margin, _DECIMALS)
    return 0.0 if value == 0 else value


def checked_margins(loss: str, margins: list[float]) -> list[float]:
    """The sorted distinct margins with 0 added; SpecError naming the first margin the loss cannot train."""
    for margin in margins:
        if not math.isfinite(margin):
            raise SpecError(f"--margins: {margin} is not a finite number")
        problem = study_margin_problem(loss, margin)
        if problem:
            raise SpecError(f"--margins: {problem}")
    return sorted({_rounded(m) for m in [*margins, 0.0]})


def parse_margins(text: str) -> list[float]:
    """'-0.2,-0.1,0' -> [-0.2, -0.1, 0.0]; SpecError for anything else."""
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise SpecError(f"--margins: expected comma-separated numbers such as -0.2,-0.1,0, got {text!r}") from None
    if not values:
        raise SpecError("--margins: give at least one margin")
    return values


def label(margin: float) -> str:
    """The name of a margin's runs ("m=-0.1", "m=0")."""
    return f"m={margin:g}"
