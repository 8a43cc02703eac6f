"""TrialConfig: the typed, validated configuration of one trial (pretraining + validation episodes).

YAML layout (every key optional except dataset.name, backbone and loss; unknown keys are errors):

    dataset: {name: glyphs, root: null, cache_dir: null, image_size: 84, crop_scale: [0.08, 1.0], hflip: true,
              holdout_fraction: 0.0, holdout_seed: 0,   # a seeded fraction per base class kept out (data/holdout.py)
              max_stored_size: null}   # cap on the cached side (default: int(1.15·s) or s/√crop_scale[0], native)
    backbone: resnet12
    loss: neg-cosine            # softmax | cosine | neg-softmax | neg-cosine
    margin: -0.02               # m; neg-* needs m <= 0, softmax takes none
    scale: null                 # β; null = the published default (cosine 30, neg-softmax 5, 10 for resnet12)
    weight_decay: 1.0e-4
    drop_rate: 0.0              # DropBlock rate (plain dropout for wrn28_10)
    dropblock_size: 5
    dropblock_ramp_iters: 40000
    dropblock_mask: exact       # exact (full squares) | published (the authors' blocks; docs/protocol.md D9)
    epochs: 400
    warmup_epochs: 100
    batch_size: 256
    lr: 3.0e-3
    val_every: 20
    validation: {episodes: 100, shots: [1, 5], queries: 16, way: 5, seed: 0, episodes_dir: null, finetune_epochs: 100}
    selection_metric: null      # val accuracy that picks the best checkpoint: val_acc_1shot | val_acc_5shot |
                                # val_acc_mean; null = a sweep's objective (a standalone trial: the first shot's)
    selection_from_epoch: 1     # only checkpoints of epochs >= this may be the best (1: every validated epoch; a
                                # trial stopped earlier keeps its best of all); the last epoch always may
    seed: 0
    device: auto                # auto | cpu | cuda | cuda:N
    precision: auto             # auto (bf16 autocast + channels-last on CUDA, fp32 on CPU) | bf16 | fp32; the head
                                # and the loss always run in fp32 (docs/protocol.md D1)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data.section import DatasetConfig
from data.validation_errors import describe_validation_error
from models.catalog import BACKBONES, LOSS_NAMES, LOSSES
from sweep.errors import TrialConfigError
from sweep.schema.hyperparameters import HYPERPARAMETER
from sweep.schema.objectives import OBJECTIVES, ObjectiveName
from sweep.schema.yaml_files import read_yaml_document

_DEVICE_NAMES = ("auto", "cpu", "cuda")


class Strict(BaseModel):
    """Base of every config section, of trials and sweep specs alike: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class ValidationConfig(Strict):
    """The fixed validation episode sets (one per shot) and the episode fine-tuning length."""

    episodes: int = Field(100, ge=1)
    shots: list[int] = Field(default_factory=lambda: [1, 5], min_length=1)
    queries: int = Field(16, ge=1)
    way: int = Field(5, ge=2)
    seed: int = Field(0, ge=0)
    episodes_dir: str | None = None
    finetune_epochs: int = Field(100, ge=1)

    @field_validator("shots")
    @classmethod
    def _distinct_positive_shots(cls, shots: list[int]) -> list[int]:
        if any(s < 1 for s in shots) or len(set(shots)) != len(shots):
            raise ValueError(f"shots must be distinct integers >= 1, got {shots}")
        return shots


class TrialSettings(Strict):
    """Everything of a trial but its searched hyperparameters: the part a sweep spec shares with a trial config.

    `TrialConfig` adds the searched values (sweep.schema.hyperparameters); `sweep.schema.spec.SweepSpec` adds how
    to search them. A key added here is a trial key and a sweep key at once.
    """

    dataset: DatasetConfig
    backbone: str
    loss: str  # models.catalog.LOSSES
    dropblock_ramp_iters: int = Field(40_000, ge=0)
    dropblock_mask: Literal["published", "exact"] = "exact"  # models.catalog.DROPBLOCK_MASKS
    epochs: int = Field(400, ge=1)
    warmup_epochs: int = Field(100, ge=0)
    batch_size: int = Field(256, ge=2)
    lr: float = Field(3e-3, gt=0, allow_inf_nan=False)
    val_every: int = Field(20, ge=1)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    selection_metric: ObjectiveName | None = None  # which val accuracy picks the best checkpoint (None: see subclasses)
    selection_from_epoch: int = Field(1, ge=1)  # checkpoints of earlier epochs are not eligible as the best
    seed: int = Field(0, ge=0)
    device: str = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
        return name

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSS_NAMES)}")
        return name

    @field_validator("device")
    @classmethod
    def _device_name(cls, device: str) -> str:
        base, _, index = device.partition(":")
        if base not in _DEVICE_NAMES or (index and (base != "cuda" or not index.isdigit())):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
        return device

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> TrialSettings:
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs: {self.warmup_epochs} exceeds epochs ({self.epochs})")
        return self

    @model_validator(mode="after")
    def _selection_is_validated(self) -> TrialSettings:
        if self.selection_from_epoch > self.epochs:
            raise ValueError(f"selection_from_epoch: {self.selection_from_epoch} exceeds epochs {self.epochs}")
        if self.selection_metric is not None:
            needed, shots = list(OBJECTIVES[self.selection_metric]), self.validation.shots
            if any(shot not in shots for shot in needed):
                raise ValueError(
                    f"selection_metric: {self.selection_metric} needs validation shots {needed}, validation has {shots}"
                )
        return self


class TrialConfig(TrialSettings):
    """One trial: pretrain `backbone` with the `loss` head on the base classes, score on fixed val episodes."""

    # The searched hyperparameters as training reads them; defaults and valid ranges: sweep.schema.hyperparameters
    margin: float = HYPERPARAMETER["margin"].trial_field()
    scale: float | None = HYPERPARAMETER["scale"].trial_field()
    weight_decay: float = HYPERPARAMETER["weight_decay"].trial_field()
    drop_rate: float = HYPERPARAMETER["drop_rate"].trial_field()
    dropblock_size: int = HYPERPARAMETER["dropblock_size"].trial_field()

    @model_validator(mode="after")
    def _head_takes_margin(self) -> TrialConfig:
        loss = LOSSES[self.loss]
        if self.scale is None:
            self.scale = loss.scale_for(self.backbone)
        problem = loss.margin_problem(self.margin)
        if problem:
            raise ValueError(f"margin: {problem}")
        return self

    @property
    def backbone_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of models.build_backbone for this trial."""
        return {
            "drop_rate": self.drop_rate,
            "dropblock_size": self.dropblock_size,
            "dropblock_ramp_iters": self.dropblock_ramp_iters,
            "dropblock_mask": self.dropblock_mask,
        }

    @property
    def selection(self) -> str:
        """The metric that picks the run's best checkpoint: selection_metric, else the first shot's val accuracy."""
        return self.selection_metric or f"val_acc_{self.validation.shots[0]}shot"

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, *, source: str = "trial config"
    ) -> TrialConfig:
        """Validated config from a nested dict, with `overrides` deep-merged ("validation.episodes": 20 works)."""
        merged = merge_overrides(data, overrides or {})
        try:
            return cls.model_validate(merged)
        except ValidationError as err:
            raise TrialConfigError(f"{source}: {describe_validation_error(err)}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrialConfig:
        """Validated config read from a YAML file (yaml.safe_load)."""
        path = Path(path)
        data = read_yaml_document(path, "trial config", TrialConfigError)  # binary, too deep, not YAML: one line
        if not isinstance(data, Mapping):
            raise TrialConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
        return cls.from_dict(data, overrides, source=str(path))


def merge_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep copy of `data` with `overrides` merged in; an override key "a.b" sets data["a"]["b"]."""
    merged = copy.deepcopy(dict(data))
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = merged
        for part in parents:
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise TrialConfigError(f"override {key!r}: {part!r} is not a section")
            node = node[part]
        if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
            node[leaf] = merge_overrides(node[leaf], value)
        else:
            node[leaf] = copy.deepcopy(value)
    return merged
