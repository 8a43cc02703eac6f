"""From a sweep spec to what Optuna searches and what each trial runs.

`optuna_space(spec)` gives the distributions OptunaSearch samples, `first_points(spec)` (sweep.schema.first_points) the
points it tries first; `trial_config(spec, params, episodes_dir)` turns one sampled point into the
`sweep.schema.trial_config.TrialConfig` dictionary of that trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna.distributions as od

from models.catalog import trained_loss
from sweep.schema.hyperparameters import HYPERPARAMETERS, SEARCHED_PARAMETERS
from sweep.schema.spec import ParameterSpace, SweepSpec


def _distribution(space: ParameterSpace) -> od.BaseDistribution:
    if space.uniform is not None:
        return od.FloatDistribution(*space.uniform)
    if space.loguniform is not None:
        return od.FloatDistribution(*space.loguniform, log=True)
    if space.int is not None:
        return od.IntDistribution(*space.int)
    if space.choice is not None:
        return od.CategoricalDistribution(list(space.choice))
    raise ValueError(f"a {space.kind} parameter is not searched")


def optuna_space(spec: SweepSpec) -> dict[str, od.BaseDistribution]:
    """The Optuna distributions of the searched parameters (fixed ones are not searched)."""
    return {name: _distribution(space) for name, space in spec.searched().items()}


def trial_config(
    spec: SweepSpec, params: dict[str, Any], episodes_dir: str | Path, *, seed: int | None = None
) -> dict[str, Any]:
    """The trial config dictionary of one sampled point (`params` holds the searched values): the spec's trial
    settings, the searched values (each cast to its kind, sweep.schema.hyperparameters), the folder of the fixed
    validation episodes (an experiment's episodes_dir), and `seed` when it is not the spec's."""
    values = {**spec.fixed(), **params}
    missing = [name for name in SEARCHED_PARAMETERS if name not in values]
    if missing:
        raise KeyError(f"no value for {missing}")
    config = spec.trial_settings()
    config.update({parameter.name: parameter.cast(values[parameter.name]) for parameter in HYPERPARAMETERS})
    config["loss"] = trained_loss(spec.loss, config["margin"])
    config["validation"]["episodes_dir"] = str(episodes_dir)
    if seed is not None:
        config["seed"] = seed
    return config
