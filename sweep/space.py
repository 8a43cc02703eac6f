"""From a sweep spec to what Optuna searches and what each trial runs.

`optuna_space(spec)` gives the distributions OptunaSearch samples, `first_points(spec)` the points it tries first
(`plan_first_points` with where each comes from); `trial_config(spec, params, experiment)` turns one sampled point
into the `sweep.trial.config.TrialConfig` dictionary of that trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna.distributions as od

from models.catalog import trained_loss
from sweep.experiment import Experiment
from sweep.objectives import OBJECTIVES
from sweep.published import ORIGIN_LABELS, starting_points
from sweep.spec import ParameterSpace, SweepSpec
from sweep.trial.config import SEARCHED_PARAMETERS


def _distribution(space: ParameterSpace) -> od.BaseDistribution:
    if space.uniform is not None:
        return od.FloatDistribution(*space.uniform)
    if space.loguniform is not None:
        return od.FloatDistribution(*space.loguniform, log=True)
    if space.int is not None:
        return od.IntDistribution(*space.int)
    return od.CategoricalDistribution(list(space.choice))


def optuna_space(spec: SweepSpec) -> dict[str, od.BaseDistribution]:
    """The Optuna distributions of the searched parameters (fixed ones are not searched)."""
    return {name: _distribution(space) for name, space in spec.searched().items()}


@dataclass(frozen=True)
class FirstPoint:
    """A point Optuna tries before sampling: a value for every searched parameter, and where it comes from."""

    params: dict[str, Any]
    origin: str  # sweep.published origins ("script", "paper", "ours") or "spec" (the spec's points_to_evaluate)
    reference: str

    def describe(self) -> str:
        """One line: the values, the origin and the reference."""
        values = ", ".join(f"{key} {value:g}" for key, value in self.params.items())
        return f"{values}: {ORIGIN_LABELS[self.origin]}" + (f", {self.reference}" if self.reference else "")


def plan_first_points(spec: SweepSpec) -> tuple[list[FirstPoint], list[str]]:
    """(the points Optuna tries first, in order; why a starting point of this setting is not among them).

    First the setting's starting points (sweep.published: the published configuration(s), or our own where none
    is published, for the objective's shots), then the spec's `points_to_evaluate`. Each is restricted to the
    searched parameters and must give every one of them a value inside the spec's space (Ray's OptunaSearch
    refuses a point whose dimensions differ from the space's); a starting point that does not fit is left out,
    and the reason says why. Where the spec fixes a parameter at another value than a starting point's, the point
    is still tried on the searched parameters and its reference says so.
    """
    searched = spec.searched()
    fixed = spec.fixed()
    shots = list(OBJECTIVES[spec.objective])
    candidates = [
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


def trial_config(
    spec: SweepSpec, params: dict[str, Any], experiment: Experiment, *, seed: int | None = None
) -> dict[str, Any]:
    """The trial config dictionary of one sampled point (`params` holds the searched values): the spec's trial
    settings, the searched values, the experiment's episode folder, and `seed` when it is not the spec's."""
    values = {**spec.fixed(), **params}
    missing = [name for name in SEARCHED_PARAMETERS if name not in values]
    if missing:
        raise KeyError(f"no value for {missing}")
    config = spec.trial_settings()
    margin = float(values["margin"])
    config.update(
        loss=trained_loss(spec.loss, margin),
        margin=margin,
        scale=float(values["scale"]),
        weight_decay=float(values["weight_decay"]),
        drop_rate=float(values["drop_rate"]),
        dropblock_size=int(values["dropblock_size"]),
    )
    config["validation"]["episodes_dir"] = str(experiment.episodes_dir)
    if seed is not None:
        config["seed"] = seed
    return config
