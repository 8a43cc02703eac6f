"""From a sweep spec to what Optuna searches and what each trial runs.

`optuna_space(spec)` gives the distributions OptunaSearch samples; `trial_config(spec, params, experiment)` turns
one sampled point into the `sweep.trial.TrialConfig` dictionary of that trial.
"""

from __future__ import annotations

from typing import Any

import optuna.distributions as od

from sweep.experiment import Experiment
from sweep.published import published_points
from sweep.spec import SEARCHED_PARAMETERS, ParameterSpace, SweepSpec

INTEGER_PARAMETERS = ("dropblock_size",)


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


def first_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Points Optuna tries first: the published configuration(s) for this setting, then the spec's own.

    Values that lie outside the spec's space, or are fixed by it, are dropped (the sampler fills them in).
    """
    searched = spec.searched()
    points = []
    for point in published_points(spec.dataset.name, spec.backbone, spec.loss, spec.shots) + spec.points_to_evaluate:
        kept = {key: value for key, value in point.items() if key in searched and searched[key].contains(value)}
        if kept and kept not in points:
            points.append(kept)
    return points


def head_loss(loss: str, margin: float) -> str:
    """The head a trial trains: a neg-cosine sweep that samples m > 0 trains the CosFace-style cosine head."""
    if loss == "neg-cosine" and margin > 0:
        return "cosine"
    return loss


def trial_config(
    spec: SweepSpec, params: dict[str, Any], experiment: Experiment, seed: int | None = None
) -> dict[str, Any]:
    """The TrialConfig dictionary of one sampled point (`params` holds the searched values)."""
    values = {**spec.fixed(), **params}
    missing = [name for name in SEARCHED_PARAMETERS if name not in values]
    if missing:
        raise KeyError(f"no value for {missing}")
    budget = spec.budget
    return {
        "dataset": {
            "name": spec.dataset.name,
            "root": spec.dataset.root,
            "cache_dir": spec.dataset.cache,
            "image_size": spec.dataset.image_size,
            "crop_scale": list(spec.dataset.crop_scale),
            "hflip": spec.dataset.hflip,
        },
        "backbone": spec.backbone,
        "loss": head_loss(spec.loss, float(values["margin"])),
        "margin": float(values["margin"]),
        "scale": float(values["scale"]),
        "weight_decay": float(values["weight_decay"]),
        "drop_rate": float(values["drop_rate"]),
        "dropblock_size": int(values["dropblock_size"]),
        "dropblock_ramp_iters": budget.dropblock_ramp_iters,
        "epochs": budget.max_epochs,
        "warmup_epochs": budget.warmup_epochs,
        "batch_size": budget.batch_size,
        "lr": budget.lr,
        "val_every": budget.val_every,
        "validation": {
            "episodes": budget.val_episodes,
            "shots": list(spec.shots),
            "queries": budget.val_queries,
            "way": budget.val_way,
            "seed": spec.seed,
            "episodes_dir": str(experiment.episodes_dir),
            "finetune_epochs": budget.val_finetune_epochs,
        },
        "seed": spec.seed if seed is None else seed,
        "device": spec.device,
    }


def objective_value(metrics: dict[str, Any], objective: str) -> float | None:
    """The objective of a metrics row; `val_acc_mean` is the mean of the 1- and 5-shot accuracies."""
    if objective == "val_acc_mean":
        if "val_acc_1shot" in metrics and "val_acc_5shot" in metrics:
            return (metrics["val_acc_1shot"] + metrics["val_acc_5shot"]) / 2
        return None
    return metrics.get(objective)
