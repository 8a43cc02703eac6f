"""What a study trains: the fixed configuration (an experiment's selected one, or a trial config file), its margins,
seeds and held-out base part; saved as study/request.yaml so that a rerun resumes the same study (torch-free).

A request is checked before any cluster work: margins the loss trains, seeds >= 1, a held-out part of the base
split that leaves every class enough images for the base episodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from data.validation_errors import describe_validation_error
from sweep.errors import ExperimentError, SpecError
from sweep.schema.hyperparameters import SEARCHED_PARAMETERS
from sweep.schema.spec import SweepSpec
from sweep.schema.trial_config import Strict, TrialConfig, TrialSettings
from sweep.storage.experiment import Experiment
from sweep.study.layout import StudyDir
from sweep.study.margins import checked_margins, default_margins

DEFAULT_HOLDOUT_FRACTION = 0.1
BASE_EPISODE_SEED_OFFSET = 20_000  # held-out base episodes: their own stream (val uses seed, test seed + 10 000)


class StudyRequest(Strict):
    """One margin study: `params` (the fixed configuration's searched values) trained at every margin with seeds
    spec.seed + 0 … seeds − 1, on the base split less a `holdout_fraction` per class (data.holdout_indices)."""

    margins: list[float] = Field(min_length=2)
    seeds: int = Field(1, ge=1)
    holdout_fraction: float = Field(DEFAULT_HOLDOUT_FRACTION, gt=0, lt=1)
    holdout_seed: int = Field(0, ge=0)
    params: dict[str, float | int]
    source: str

    def differences(self, other: StudyRequest) -> list[str]:
        """The keys in which `other` asks for another study than this one."""
        mine, theirs = self.model_dump(exclude={"source"}), other.model_dump(exclude={"source"})
        return [key for key in mine if mine[key] != theirs[key]]


def load_request(study: StudyDir) -> StudyRequest | None:
    """The saved request of a study, or None before its first run."""
    if not study.request_file.is_file():
        return None
    try:
        return StudyRequest.model_validate(yaml.safe_load(study.request_file.read_text()))
    except (yaml.YAMLError, ValidationError) as error:
        detail = describe_validation_error(error) if isinstance(error, ValidationError) else "not valid YAML"
        raise ExperimentError(f"{study.request_file}: {detail}") from None


def save_request(study: StudyDir, request: StudyRequest) -> None:
    """Write study/request.yaml atomically."""
    from data.atomic import write_text_atomically

    write_text_atomically(study.request_file, yaml.safe_dump(request.model_dump(mode="json"), sort_keys=False))


def selected_point(experiment: Experiment, spec: SweepSpec) -> tuple[dict[str, Any], str]:
    """(searched values, where they come from) of an experiment's selected configuration: the promoted trial ranked
    first (promotion ranks by validation), else the trial with the best validation objective."""
    promotion = experiment.promotion()
    if promotion and promotion.trials:
        first = promotion.trials[0]
        return _complete(first.params, spec), f"promoted trial {first.trial_id} (rank 1 by {spec.objective})"
    if not spec.searched() and not experiment.tune_dir.is_dir():  # a study's own experiment (--config): no sweep
        return _complete(spec.fixed(), spec), "the experiment's fixed configuration"
    from sweep.storage.results import load_trials, ranked

    records = ranked(load_trials(experiment, spec))
    if not records:
        raise ExperimentError(
            f"{experiment.root}: no trial has a validation score, so there is no configuration to study"
        )
    best = records[0]
    source = f"trial {best.trial_id} (best {spec.objective} {best.best_objective:.2f}; not promoted)"
    return _complete(best.params, spec), source


def _complete(params: dict[str, Any], spec: SweepSpec) -> dict[str, Any]:
    values = {**spec.fixed(), **params}
    missing = [name for name in SEARCHED_PARAMETERS if name not in values]
    if missing:
        raise ExperimentError(f"the selected configuration has no value for {', '.join(missing)}")
    return {name: values[name] for name in SEARCHED_PARAMETERS}


def spec_for_config(config: TrialConfig, name: str, storage: str, promotion: dict[str, Any] | None = None) -> SweepSpec:
    """A sweep spec that studies one trial config: its trial settings, every searched value fixed at the config's,
    promotion at its defaults but for `promotion` (test_episodes, queries); the experiment it makes never runs a
    sweep, only the study."""
    settings = config.model_dump(mode="json", include=set(TrialSettings.model_fields))
    settings["validation"]["episodes_dir"] = None
    settings["dataset"].update(holdout_fraction=0.0, holdout_seed=0)
    shots = settings["validation"]["shots"]
    objective = "val_acc_mean" if {1, 5} <= set(shots) else f"val_acc_{shots[0]}shot"
    loss = "neg-cosine" if config.loss == "cosine" else config.loss  # a study of a cosine head spans both signs
    search = {key: {"fixed": getattr(config, key)} for key in SEARCHED_PARAMETERS}
    data = {**settings, "loss": loss, "name": name, "search": search, "num_samples": 1, "storage_path": storage}
    data["objective"] = objective
    data["promotion"] = {key: value for key, value in (promotion or {}).items() if value is not None}
    from sweep.schema.spec import parse

    return parse(data, source="--config")


def config_point(
    config_file: Path, storage: str, name: str | None, promotion: dict[str, Any] | None = None
) -> tuple[SweepSpec, dict[str, Any], str]:
    """(spec of a new experiment, searched values, source) for studying a trial config file."""
    config = TrialConfig.from_yaml(config_file)
    spec = spec_for_config(config, name or f"study-{config_file.stem}", storage, promotion)
    return spec, {key: getattr(config, key) for key in SEARCHED_PARAMETERS}, f"config {config_file}"


def build_request(
    spec: SweepSpec,
    params: dict[str, Any],
    source: str,
    *,
    margins: list[float] | None = None,
    seeds: int | None = None,
    holdout_fraction: float | None = None,
) -> StudyRequest:
    """The request of a new study (defaults: the loss's default grid with the configuration's own margin among it,
    1 seed, 10 % held out, seeded with spec.seed)."""
    chosen = checked_margins(
        spec.loss,
        margins
        if margins is not None
        else [*default_margins(spec.loss, spec.search["margin"].bounds()), params["margin"]],
    )
    try:
        return StudyRequest(
            margins=chosen,
            seeds=1 if seeds is None else seeds,
            holdout_fraction=DEFAULT_HOLDOUT_FRACTION if holdout_fraction is None else holdout_fraction,
            holdout_seed=spec.seed,
            params=params,
            source=source,
        )
    except ValidationError as error:
        raise SpecError(f"study: {describe_validation_error(error)}") from None


def resolve_request(
    study: StudyDir,
    spec: SweepSpec,
    point: tuple[dict[str, Any], str] | None,
    *,
    margins: list[float] | None = None,
    seeds: int | None = None,
    holdout_fraction: float | None = None,
) -> StudyRequest:
    """The study to run: the saved one when the study has begun (options given must agree with it: a rerun resumes),
    else a new request of `point` (searched values, source), or of the experiment's selected configuration."""
    saved = load_request(study)
    if saved is None:
        params, source = point if point is not None else selected_point(Experiment(study.root.parent), spec)
        return build_request(spec, params, source, margins=margins, seeds=seeds, holdout_fraction=holdout_fraction)
    asked = saved.model_copy(
        update={
            "margins": checked_margins(spec.loss, margins) if margins is not None else saved.margins,
            "seeds": saved.seeds if seeds is None else seeds,
            "holdout_fraction": saved.holdout_fraction if holdout_fraction is None else holdout_fraction,
            **({"params": point[0]} if point is not None else {}),
        }
    )
    differing = saved.differences(asked)
    if differing:
        raise ExperimentError(
            f"{study.root} holds a study with other {', '.join(differing)} ({saved.source}); rerun without those "
            "options to resume it, or pass --restart to discard it"
        )
    return saved
