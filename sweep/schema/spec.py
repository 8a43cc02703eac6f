"""The sweep spec: a typed YAML schema, validated once before any cluster work.

A spec is a trial's settings (`sweep.schema.trial_config.TrialSettings`: dataset, backbone, loss, epochs, batch size,
validation, device, …, the very models a trial config uses) plus how to sweep them: the searched hyperparameters,
the scheduler, how many trials, their resources, the objective, where the experiment goes and how it is promoted.
Every section rejects unknown keys; a validation problem becomes one `SpecError` line that names the key
(`search.margin.uniform: lower bound -0.1 is above upper bound -0.5`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, RootModel, ValidationError, field_validator, model_validator

from data.validation_errors import describe_validation_error
from sweep.errors import SpecError
from sweep.schema.hyperparameters import HYPERPARAMETER, HYPERPARAMETERS, SEARCHED_PARAMETERS
from sweep.schema.objectives import OBJECTIVES, ObjectiveName
from sweep.schema.trial_config import Strict, TrialSettings, merge_overrides
from sweep.schema.yaml_files import read_yaml_document

PRESET_PACKAGE = "sweep.presets"
# Searched parameters that are also trial settings (top-level keys such as `lr` would be): none today.
SEARCHED_SETTINGS = tuple(name for name in SEARCHED_PARAMETERS if name in TrialSettings.model_fields)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
DEFAULT_STORAGE = "experiments"  # where experiments go when neither the spec nor a command names a place
_Integer = int  # the field named `int` below shadows the builtin inside the class body


def storage_uri_problem(storage_path: str) -> str | None:
    """Why `storage_path` cannot hold experiments when it is a URI (s3://, gs://, file://); None for a path."""
    if _URI.match(storage_path) is None:
        return None
    return (
        f"{storage_path!r} is a URI, but an experiment is a directory written with file I/O (its Optuna study is "
        "SQLite): give a filesystem path, on a cluster one that every node mounts (NFS, EFS, Filestore)"
    )


def check_storage_path(storage_path: str, key: str = "storage_path") -> str:
    """`storage_path` itself if it is a filesystem path; SpecError naming `key` for a URI."""
    problem = storage_uri_problem(storage_path)
    if problem:
        raise SpecError(f"{key}: {problem}")
    return storage_path


class ParameterSpace(Strict):
    """One searched parameter: exactly one of fixed, uniform, loguniform, int or choice."""

    fixed: float | _Integer | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    int: tuple[_Integer, _Integer] | None = None
    choice: list[float | _Integer] | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> ParameterSpace:
        given = [
            name for name in ("fixed", "uniform", "loguniform", "int", "choice") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(f"give exactly one of fixed, uniform, loguniform, int, choice (got {given or 'none'})")
        for name in ("uniform", "loguniform", "int"):
            bounds = getattr(self, name)
            if bounds is not None and bounds[0] > bounds[1]:
                raise ValueError(f"{name}: lower bound {bounds[0]} is above upper bound {bounds[1]}")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform: bounds must be positive")
        if self.choice is not None and not self.choice:
            raise ValueError("choice: give at least one value")
        return self

    @property
    def kind(self) -> str:
        """The kind of space: fixed, uniform, loguniform, int or choice."""
        return next(
            name for name in ("fixed", "uniform", "loguniform", "int", "choice") if getattr(self, name) is not None
        )

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value this space can produce."""
        if self.fixed is not None:
            return (self.fixed, self.fixed)
        if self.choice is not None:
            return (min(self.choice), max(self.choice))
        low, high = getattr(self, self.kind)
        return (low, high)

    def contains(self, value: float) -> bool:
        """Whether `value` is a point of this space."""
        if self.choice is not None:
            return value in self.choice
        low, high = self.bounds()
        return low - 1e-12 <= value <= high + 1e-12


class SearchSpace(RootModel[dict[str, ParameterSpace]]):
    """The searched hyperparameters of the pretraining stage: a space for each of sweep.schema.hyperparameters, in
    its order; one the spec leaves out is fixed at its default (the margin has none: a spec must give it)."""

    @model_validator(mode="before")
    @classmethod
    def _known_and_complete(cls, spaces: Any) -> Any:
        if not isinstance(spaces, dict):
            return spaces  # pydantic says what it expected
        unknown = [name for name in spaces if name not in HYPERPARAMETER]
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown key")
        complete = {}
        for parameter in HYPERPARAMETERS:
            if parameter.name in spaces:
                complete[parameter.name] = spaces[parameter.name]
            elif parameter.search_default is None:
                raise ValueError(f"{parameter.name}: required key is missing")
            else:
                complete[parameter.name] = {"fixed": parameter.search_default}
        return complete

    @model_validator(mode="after")
    def _ranges_valid(self) -> SearchSpace:
        for parameter in HYPERPARAMETERS:
            problem = parameter.range_problem(*self[parameter.name].bounds())
            if problem:
                raise ValueError(f"{parameter.name}: {problem}")
        return self

    def __getitem__(self, name: str) -> ParameterSpace:
        """The space of the searched parameter `name`."""
        return self.root[name]


class Scheduler(Strict):
    """ASHA's early stopping: the first rung (epochs) and the fraction of trials each rung keeps (1 / factor).
    A grace period equal to `epochs` places no rung below the budget: every trial runs to the end."""

    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)


class Searcher(Strict):
    """Optuna's sampler, every setting stated, so what a sweep does does not depend on the installed Optuna's defaults
    (the defaults here are Optuna 3.6's). After the first points, `n_startup_trials` finished trials (first points
    included) are sampled at random before TPE models the study; `multivariate` models the parameters jointly (the
    logit shift is β·m); `constant_liar` keeps parallel trials from being proposed the same point. What a trial tells
    the study: `trial_value` "last" (its last report's objective, Ray's OptunaSearch) or "best" (the objective at its
    best eligible epoch, what promotion ranks by); a trial ASHA stopped early is `stopped_trials` "complete" (a value
    like a finished one) or "pruned" (TPE ranks it below every finished trial)."""

    sampler: Literal["tpe", "random"] = "tpe"
    n_startup_trials: int = Field(10, ge=0)
    multivariate: bool = False
    constant_liar: bool = False
    trial_value: Literal["last", "best"] = "last"
    stopped_trials: Literal["complete", "pruned"] = "complete"


class Resources(Strict):
    """Resources one trial asks the cluster for; GPUs may be fractional (0.25 lets four trials share a card), or
    "auto": a probe of the trial's step on one of the cluster's GPUs decides (sweep.tuning.gpu_packing; 0 without
    GPUs)."""

    cpu: float = Field(1.0, gt=0)
    gpu: float | Literal["auto"] = 0.0

    @field_validator("gpu", mode="before")
    @classmethod
    def _fraction_whole_or_auto(cls, gpu: Any) -> float | str:
        if gpu == "auto":
            return gpu
        if isinstance(gpu, bool) or not isinstance(gpu, int | float) or not gpu >= 0:
            raise ValueError(f"a number of GPUs >= 0 (0.25, 1, 2) or auto, got {gpu!r}")
        if gpu > 1 and not float(gpu).is_integer():
            raise ValueError("more than one GPU per trial must be a whole number")
        return float(gpu)


class Promotion(Strict):
    """How the best trials are promoted to the final test evaluation: the top_k trials by validation, scored at
    `shots` on `test_episodes` fixed episodes. `extra_seeds: N` retrains each promoted configuration (and the
    baseline) with N more training seeds: the answer per shot is then chosen on the validation averaged over the
    configuration's seeds instead of one seed's, and its test accuracy and difference to the baseline are reported
    across seeds."""

    top_k: int = Field(3, ge=1)
    test_episodes: int = Field(600, ge=1)
    shots: list[int] = [1, 5]
    queries: int = Field(16, ge=1)
    way: int = Field(5, ge=2)
    finetune_epochs: int = Field(100, ge=1)
    extra_seeds: int = Field(0, ge=0)  # more training seeds per promoted configuration; > 0: chosen on their mean


class SweepSpec(TrialSettings):
    """A whole sweep: a trial's settings (inherited), what to search, how to schedule, how to promote."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    search: SearchSpace
    scheduler: Scheduler = Scheduler()
    searcher: Searcher = Searcher()
    num_samples: int = Field(8, ge=1)
    max_concurrent: int = Field(2, ge=1)
    resources: Resources = Resources()
    objective: ObjectiveName = "val_acc_1shot"
    storage_path: str = DEFAULT_STORAGE
    promotion: Promotion = Promotion()
    points_to_evaluate: list[dict[str, _Integer | float]] = []

    @model_validator(mode="before")
    @classmethod
    def _searched_settings(cls, data: Any) -> Any:
        """A searched parameter that is also a trial setting (a top-level key) is fixed at the top-level value where
        `search` leaves it out; where `search` names it, `search` wins (`_consistent` sets the top-level value)."""
        if not isinstance(data, dict) or not isinstance(data.get("search"), dict):
            return data
        settings = {name: data[name] for name in SEARCHED_SETTINGS if name in data and name not in data["search"]}
        return {**data, "search": {**data["search"], **{name: {"fixed": value} for name, value in settings.items()}}}

    @field_validator("storage_path")
    @classmethod
    def _filesystem_storage(cls, storage_path: str) -> str:
        problem = storage_uri_problem(storage_path)
        if problem:
            raise ValueError(problem)
        return storage_path

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if self.validation.episodes_dir is not None:
            raise ValueError("validation.episodes_dir: set by the experiment (its episodes/ folder); leave it out")
        if self.scheduler.grace_period > self.epochs:
            raise ValueError(f"scheduler.grace_period: {self.scheduler.grace_period} exceeds epochs {self.epochs}")
        if self.warmup_epochs >= self.epochs and self.epochs > 1:
            raise ValueError(f"warmup_epochs: {self.warmup_epochs} must be below epochs {self.epochs}")
        objective_shots = list(OBJECTIVES[self.objective])
        shots = self.validation.shots
        if any(shot not in shots for shot in objective_shots):
            raise ValueError(f"objective: {self.objective} needs validation shots {objective_shots}, spec has {shots}")
        for parameter in HYPERPARAMETERS:
            problem = parameter.loss_problem(self.loss, *self.search[parameter.name].bounds())
            if problem:
                raise ValueError(f"search.{parameter.name}: {problem}")
        searched = list(self.searched())
        for index, point in enumerate(self.points_to_evaluate):
            for key, value in point.items():
                if key not in SEARCHED_PARAMETERS:
                    raise ValueError(f"points_to_evaluate[{index}]: unknown parameter {key!r}")
                if not self.search[key].contains(value):
                    raise ValueError(f"points_to_evaluate[{index}].{key}: {value} lies outside the search space")
            missing = [name for name in searched if name not in point]
            if missing:
                raise ValueError(
                    f"points_to_evaluate[{index}]: no value for searched parameter(s) {', '.join(missing)} "
                    "(a first point gives every searched parameter)"
                )
        for name in SEARCHED_SETTINGS:
            if self.search[name].fixed is not None:
                setattr(self, name, self.search[name].fixed)
        if self.resources.gpu == 0 and self.device.startswith("cuda"):
            raise ValueError(f"device: {self.device} needs resources.gpu > 0")
        return self

    @property
    def selection(self) -> str:
        """The val accuracy that picks each trial's best checkpoint (Tune's checkpoint score, what promotion loads):
        `selection_metric`, else the objective. The objective stays what ASHA and Optuna maximise."""
        return self.selection_metric or self.objective

    def searched(self) -> dict[str, ParameterSpace]:
        """The parameters that vary (everything not fixed)."""
        return {name: space for name, space in self.search.root.items() if space.kind != "fixed"}

    def fixed(self) -> dict[str, float]:
        """The parameters that do not vary, with their values."""
        return {name: space.fixed for name, space in self.search.root.items() if space.fixed is not None}

    def trial_settings(self) -> dict[str, Any]:
        """The spec's TrialSettings keys as a dict: a trial config, but for its searched values."""
        return self.model_dump(mode="json", include=set(TrialSettings.model_fields))

    def to_yaml(self) -> str:
        """The spec as YAML, round-trippable through `parse`."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def check_name(name: str, key: str = "name") -> str:
    """`name` if it may name an experiment (the pattern of SweepSpec.name: no path separators); SpecError naming
    `key` otherwise."""
    pattern = next(rule.pattern for rule in SweepSpec.model_fields["name"].metadata if hasattr(rule, "pattern"))
    if not re.match(pattern, name):
        raise SpecError(f"{key}: {name!r} must start with a letter or digit and hold only letters, digits and _.-")
    return name


def parse(data: Any, source: str = "spec") -> SweepSpec:
    """Validate a spec given as a dict; raise SpecError naming the key and the reason."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a sweep spec is a YAML mapping, got {type(data).__name__}")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(f"{source}: {describe_validation_error(error)}") from None
    _check_numbers_finite(spec, source)
    return spec


def _check_numbers_finite(spec: SweepSpec, source: str) -> None:
    for name, space in spec.search.root.items():
        low, high = space.bounds()
        if not (math.isfinite(low) and math.isfinite(high)):
            raise SpecError(f"{source}: search.{name}: bounds must be finite numbers")


def load(path: str | Path) -> SweepSpec:
    """Read and validate a spec file (yaml.safe_load); any unreadable file is one SpecError line."""
    path = Path(path)
    return parse(read_yaml_document(path, "spec file", SpecError), source=str(path))


def with_absolute_paths(spec: SweepSpec, base: Path | None = None) -> SweepSpec:
    """The spec with dataset root, cache and storage made absolute (trials run in their own working directories)."""
    base = (base or Path.cwd()).resolve()

    def absolute(path: str | None) -> str | None:
        if path is None or "://" in path:
            return path
        return str((base / Path(path).expanduser()).resolve())

    dataset = spec.dataset.model_copy(
        update={"root": absolute(spec.dataset.root), "cache_dir": absolute(spec.dataset.cache_dir)}
    )
    return spec.model_copy(update={"dataset": dataset, "storage_path": absolute(spec.storage_path)})


def list_presets() -> list[str]:
    """Names of the specs shipped in sweep/presets/."""
    folder = resources.files(PRESET_PACKAGE)
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def preset_path(name: str) -> Path:
    """The file of a shipped preset by name ("default", "resnet12-mini-neg-cosine-1shot", …)."""
    path = Path(str(resources.files(PRESET_PACKAGE).joinpath(f"{name}.yaml")))
    if not path.is_file():
        raise SpecError(f"unknown preset {name!r}; known: {', '.join(list_presets())}")
    return path


def resolve(spec_argument: str | None) -> Path:
    """A spec argument is a file path or a preset name; none means the embedded default."""
    if spec_argument is None:
        return preset_path("default")
    if Path(spec_argument).exists() or spec_argument.endswith((".yaml", ".yml")):
        return Path(spec_argument)
    return preset_path(spec_argument)


def read(spec: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """A spec from a file path or a preset name (None: the embedded default) with `overrides` of its keys merged in
    ({"epochs": 8, "validation.episodes": 100}; a dotted key sets a nested one; "search.<name>" replaces that
    parameter's whole space), validated, paths made absolute."""
    path = resolve(None if spec is None else str(spec))
    loaded = load(path)
    if overrides:
        document = yaml.safe_load(loaded.to_yaml())
        for key in overrides:  # a search space given is the whole space ({"search.scale": {"uniform": [5, 20]}})
            if key.startswith("search.") and key.count(".") == 1:
                document["search"].pop(key.removeprefix("search."), None)
        loaded = parse(merge_overrides(document, dict(overrides)), f"{path} with overrides")
    return with_absolute_paths(loaded)
