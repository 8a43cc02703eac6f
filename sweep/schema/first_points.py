"""The first points of a sweep: what Optuna tries before it samples, each a value for every searched parameter, with
where it comes from. Optuna-free, so the report reads it without loading Optuna's progress bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweep.schema.objectives import OBJECTIVES
from sweep.schema.published import ORIGIN_LABELS, starting_points
from sweep.schema.spec import SweepSpec


@dataclass(frozen=True)
class FirstPoint:
    """A point Optuna tries before sampling: a value for every searched parameter, and where it comes from."""

    params: dict[str, Any]
    origin: str  # sweep.schema.published origins ("script", "paper", "ours") or "spec" (the spec's points_to_evaluate)
    reference: str

    def describe(self) -> str:
        """One line: the values, the origin and the reference."""
        values = ", ".join(f"{key} {value:g}" for key, value in self.params.items())
        return f"{values}: {ORIGIN_LABELS[self.origin]}" + (f", {self.reference}" if self.reference else "")


def plan_first_points(spec: SweepSpec) -> tuple[list[FirstPoint], list[str]]:
    """(the points Optuna tries first, in order; why a starting point of this setting is not among them).

    First the setting's starting points (sweep.schema.published: the published configuration(s), or our own where none
    is published, for the objective's shots), then the spec's `points_to_evaluate`. Each is restricted to the
    searched parameters and must give every one of them a value inside the spec's space (Ray's OptunaSearch
    refuses a point whose dimensions differ from the space's); a starting point that does not fit is left out,
    and the reason says why. Where the spec fixes a parameter at another value than a starting point's, the point
    is still tried on the searched parameters and its reference says so.
    """
    searched = spec.searched()
    fixed = spec.fixed()
    shots = list(OBJECTIVES[spec.objective])
    candidates: list[tuple[dict[str, Any], str, str]] = [
        (point.params, point.origin, point.reference)
        for point in starting_points(spec.dataset.name, spec.backbone, spec.loss, shots)
    ]
    candidates += [(point, "spec", "") for point in spec.points_to_evaluate]
    points: list[FirstPoint] = []
    skipped: list[str] = []
    for params, origin, reference in candidates:
        outside = [key for key, space in searched.items() if key not in params or not space.contains(params[key])]
        if outside:
            skipped.append(
                f"{ORIGIN_LABELS[origin]} ({', '.join(f'{k} {v:g}' for k, v in params.items())}) is not tried: "
                + ", ".join(f"{key} lies outside search.{key}" for key in outside)
            )
            continue
        differing = [key for key, value in fixed.items() if key in params and params[key] != value]
        if differing:
            note = ", ".join(f"{key} {fixed[key]:g} (point: {params[key]:g})" for key in differing)
            reference = f"{reference}; the spec fixes {note}" if reference else f"the spec fixes {note}"
        kept = {key: params[key] for key in searched}
        if all(kept != point.params for point in points):
            points.append(FirstPoint(kept, origin, reference))
    return points, skipped


def first_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The points OptunaSearch evaluates first (`plan_first_points`), each a value for every searched parameter."""
    return [point.params for point in plan_first_points(spec)[0]]
