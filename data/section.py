"""The dataset section of a trial or sweep: which images, and the one geometry every reader of their cache uses.

`DatasetConfig` is the `dataset:` section of a trial config and of a sweep spec (sweep/schema/trial_config.py
re-exports it), and the one value `data.load_split` / `data.prepare_split` take: the trial, promotion, the up-front
decode of a sweep, the margin study and `negmargin evaluate` all pass it, so they read the same cache folder
(docs/protocol.md D4, D5).
Torch-free (pydantic and the readers' names only), like the rest of what the CLI parser imports.

YAML:
    dataset: {name: glyphs, root: null, cache_dir: null, image_size: 84, crop_scale: [0.08, 1.0], hflip: true,
              holdout_fraction: 0.0, holdout_seed: 0,   # a seeded fraction per base class kept out (data/holdout.py)
              max_stored_size: null}   # cap on the cached side (default: int(1.15·s) or s/√crop_scale[0], native)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from data.errors import DataError
from data.geometry import CROP_SCALE, check_crop_scale
from data.validation_errors import describe_validation_error


class DatasetConfig(BaseModel):
    """Which images a trial trains on (base split) and validates on (val split), and how they are cached."""

    model_config = ConfigDict(extra="forbid")  # unknown keys are errors, as in every config section

    name: str
    root: str | None = None
    cache_dir: str | None = None
    image_size: int = Field(84, ge=8, le=1024)
    crop_scale: tuple[float, float] = CROP_SCALE  # RandomResizedCrop's area range (published 0.08–1)
    hflip: bool = True  # random horizontal flips (published); off where a mirror image is another class
    # The cache stores each image at data.geometry.stored_size: max(int(1.15·s), ceil(s / √crop_scale[0])) (297 for
    # 84 px at 0.08), capped at the images' native side; this caps it lower (memory / disk), at the price of
    # upsampling the smallest crops. The eval transform reads the same cache.
    max_stored_size: int | None = Field(None, ge=8)
    # Base images kept out of pretraining (the margin study scores on them): data.holdout_indices(labels, f, seed).
    holdout_fraction: float = Field(0.0, ge=0, lt=1)
    holdout_seed: int = Field(0, ge=0)

    @field_validator("name")
    @classmethod
    def _registered_name(cls, name: str) -> str:
        from data.datasets import canonical_name  # torch-free: the readers need only numpy and PIL

        return canonical_name(name)  # an old alias ("mini-imagenet->cub") is stored, reported and keyed by its name

    @field_validator("crop_scale")
    @classmethod
    def _crop_scale_range(cls, crop_scale: tuple[float, float]) -> tuple[float, float]:
        return check_crop_scale(crop_scale)


def checked_dataset_section(fields: dict[str, Any], command: str) -> DatasetConfig:
    """A DatasetConfig of command-line `fields`, or DataError with one line (`evaluate: dataset image_size: …`)."""
    try:
        return DatasetConfig(**fields)
    except ValidationError as error:
        raise DataError(f"{command}: dataset {describe_validation_error(error)}") from None
