"""The sweep spec: a typed YAML schema, validated once before any cluster work.

Every section rejects unknown keys; a validation problem becomes one `SpecError` line that names the key
(`search.margin.uniform: lower bound -0.1 is above upper bound -0.5`).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sweep.config_errors import describe_validation_error
from sweep.errors import SpecError
from sweep.storage_check import storage_uri_problem

OBJECTIVES = ("val_acc_1shot", "val_acc_5shot", "val_acc_mean")
SEARCHED_PARAMETERS = ("margin", "scale", "weight_decay", "drop_rate", "dropblock_size")
PRESET_PACKAGE = "sweep.presets"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_Integer = int  # the field named `int` below shadows the builtin inside the class body


class ParameterSpace(_Strict):
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


class SearchSpace(_Strict):
    """The searched hyperparameters of the pretraining stage."""

    margin: ParameterSpace
    scale: ParameterSpace = ParameterSpace(fixed=10.0)
    weight_decay: ParameterSpace = ParameterSpace(fixed=5e-4)
    drop_rate: ParameterSpace = ParameterSpace(fixed=0.0)
    dropblock_size: ParameterSpace = ParameterSpace(fixed=5)

    @model_validator(mode="after")
    def _ranges_make_sense(self) -> SearchSpace:
        if self.scale.bounds()[0] <= 0:
            raise ValueError("scale: β must be positive")
        if self.weight_decay.bounds()[0] < 0:
            raise ValueError("weight_decay: must be >= 0")
        low, high = self.drop_rate.bounds()
        if low < 0 or high >= 1:
            raise ValueError("drop_rate: must lie in [0, 1)")
        if self.dropblock_size.bounds()[0] < 1:
            raise ValueError("dropblock_size: must be >= 1")
        return self


class DatasetSpec(_Strict):
    """Which dataset, where it lives, where its decoded cache goes, the model input size and its augmentation.

    crop_scale is RandomResizedCrop's area range (published 0.08–1); hflip turns random flips off for data whose
    mirror image is another class (glyphs).
    """

    name: str
    root: str | None = None
    cache: str | None = None
    image_size: int = Field(84, ge=8)
    crop_scale: tuple[float, float] = (0.08, 1.0)
    hflip: bool = True

    @field_validator("crop_scale")
    @classmethod
    def _crop_scale_range(cls, crop_scale: tuple[float, float]) -> tuple[float, float]:
        from data.augment import check_crop_scale

        return check_crop_scale(crop_scale)


class Budget(_Strict):
    """How much each trial may train and how it is scored on the way."""

    max_epochs: int = Field(ge=1)
    val_every: int = Field(1, ge=1)
    warmup_epochs: int = Field(0, ge=0)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(3e-3, gt=0)
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)
    val_episodes: int = Field(100, ge=1)
    val_queries: int = Field(16, ge=1)
    val_way: int = Field(5, ge=2)
    val_finetune_epochs: int = Field(100, ge=1)
    dropblock_ramp_iters: int = Field(40_000, ge=1)

    @model_validator(mode="after")
    def _grace_within_budget(self) -> Budget:
        if self.grace_period > self.max_epochs:
            raise ValueError(f"grace_period: {self.grace_period} exceeds max_epochs {self.max_epochs}")
        if self.warmup_epochs >= self.max_epochs and self.max_epochs > 1:
            raise ValueError(f"warmup_epochs: {self.warmup_epochs} must be below max_epochs {self.max_epochs}")
        return self


class Resources(_Strict):
    """Resources one trial asks the cluster for; GPUs may be fractional (0.25 lets four trials share a card)."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)

    @field_validator("gpu")
    @classmethod
    def _fraction_or_whole(cls, gpu: float) -> float:
        if gpu > 1 and not float(gpu).is_integer():
            raise ValueError("more than one GPU per trial must be a whole number")
        return gpu


class Promotion(_Strict):
    """How the best trials are promoted to the final test evaluation."""

    top_k: int = Field(3, ge=1)
    test_episodes: int = Field(600, ge=1)
    shots: list[int] = [1, 5]
    queries: int = Field(16, ge=1)
    way: int = Field(5, ge=2)
    finetune_epochs: int = Field(100, ge=1)
    extra_seeds: int = Field(0, ge=0)


class SweepSpec(_Strict):
    """A whole sweep: what to train, what to search, how to schedule, how to promote."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    dataset: DatasetSpec
    backbone: str
    loss: str
    shots: list[int] = [1, 5]
    search: SearchSpace
    budget: Budget
    num_samples: int = Field(8, ge=1)
    max_concurrent: int = Field(2, ge=1)
    resources: Resources = Resources()
    objective: Literal["val_acc_1shot", "val_acc_5shot", "val_acc_mean"] = "val_acc_1shot"
    seed: int = 0
    storage_path: str = "experiments"
    promotion: Promotion = Promotion()
    device: Literal["auto", "cpu", "cuda"] = "auto"
    points_to_evaluate: list[dict[str, _Integer | float]] = []

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, backbone: str) -> str:
        from models import list_backbones

        if backbone not in list_backbones():
            raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(list_backbones())}")
        return backbone

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, loss: str) -> str:
        from models import LOSSES

        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
        return loss

    @field_validator("storage_path")
    @classmethod
    def _filesystem_storage(cls, storage_path: str) -> str:
        problem = storage_uri_problem(storage_path)
        if problem:
            raise ValueError(problem)
        return storage_path

    @field_validator("shots")
    @classmethod
    def _positive_shots(cls, shots: list[int]) -> list[int]:
        if not shots or any(shot < 1 for shot in shots):
            raise ValueError("give at least one shot count, each >= 1")
        return sorted(set(shots))

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        objective_shots = {"val_acc_1shot": [1], "val_acc_5shot": [5], "val_acc_mean": [1, 5]}[self.objective]
        missing = [shot for shot in objective_shots if shot not in self.shots]
        if missing:
            raise ValueError(f"objective: {self.objective} needs shots {objective_shots}, spec has {self.shots}")
        low, high = self.search.margin.bounds()
        if self.loss == "softmax" and (low, high) != (0.0, 0.0):
            raise ValueError("search.margin: the plain softmax baseline has no margin; fix it at 0")
        if self.loss == "neg-softmax" and high > 0:
            raise ValueError("search.margin: neg-softmax takes m <= 0 (a positive margin needs a cosine head)")
        for index, point in enumerate(self.points_to_evaluate):
            for key, value in point.items():
                if key not in SEARCHED_PARAMETERS:
                    raise ValueError(f"points_to_evaluate[{index}]: unknown parameter {key!r}")
                if not getattr(self.search, key).contains(value):
                    raise ValueError(f"points_to_evaluate[{index}].{key}: {value} lies outside the search space")
        if self.resources.gpu == 0 and self.device == "cuda":
            raise ValueError("device: cuda needs resources.gpu > 0")
        return self

    def searched(self) -> dict[str, ParameterSpace]:
        """The parameters that vary (everything not fixed)."""
        return {name: space for name in SEARCHED_PARAMETERS if (space := getattr(self.search, name)).kind != "fixed"}

    def fixed(self) -> dict[str, float]:
        """The parameters that do not vary, with their values."""
        return {
            name: space.fixed for name in SEARCHED_PARAMETERS if (space := getattr(self.search, name)).kind == "fixed"
        }

    def to_yaml(self) -> str:
        """The spec as YAML, round-trippable through `parse`."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


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
    for name in SEARCHED_PARAMETERS:
        low, high = getattr(spec.search, name).bounds()
        if not (math.isfinite(low) and math.isfinite(high)):
            raise SpecError(f"{source}: search.{name}: bounds must be finite numbers")


def load(path: str | Path) -> SweepSpec:
    """Read and validate a spec file (yaml.safe_load)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{where} is not valid YAML ({getattr(error, 'problem', error)})") from None
    return parse(data, source=str(path))


def with_absolute_paths(spec: SweepSpec, base: Path | None = None) -> SweepSpec:
    """The spec with dataset root, cache and storage made absolute (trials run in their own working directories)."""
    base = (base or Path.cwd()).resolve()

    def absolute(path: str | None) -> str | None:
        if path is None or "://" in path:
            return path
        return str((base / Path(path).expanduser()).resolve())

    dataset = spec.dataset.model_copy(
        update={"root": absolute(spec.dataset.root), "cache": absolute(spec.dataset.cache)}
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
