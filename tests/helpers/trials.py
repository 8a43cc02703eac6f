"""A tiny trial for the tests: a striped image folder a conv4 learns in two CPU epochs, and its trial config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sweep.schema.trial_config import TrialConfig

BASE_CLASSES, BASE_PER_CLASS = 6, 16  # 96 images: 3 iterations of batch 32 per epoch
VAL_CLASSES, VAL_PER_CLASS = 6, 10  # 5-shot + 5 queries


def write_tiny_imagefolder(root: Path, base_per_class: int = BASE_PER_CLASS) -> Path:
    """root/{base,val,novel}/<class>/*.png: 40x40 pictures, one colour and stripe pattern per class."""
    rng = np.random.default_rng(0)
    for split, classes, per_class in (
        ("base", BASE_CLASSES, base_per_class),
        ("val", VAL_CLASSES, VAL_PER_CLASS),
        ("novel", VAL_CLASSES, VAL_PER_CLASS),
    ):
        for c in range(classes):
            colour = rng.integers(0, 256, size=3)
            period = 2 + (c % 4)
            for i in range(per_class):
                image = rng.integers(0, 60, size=(40, 40, 3)) + colour * 0.7
                image[:, ::period] = 255 - image[:, ::period]
                folder = root / split / f"{split}{c}"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def tiny_config(root: Path, cache: Path, **overrides) -> dict:
    """A 2-epoch conv4 trial on the tiny dataset, validated every epoch on 10 episodes per shot."""
    config = {
        "dataset": {"name": "imagefolder", "root": str(root), "cache_dir": str(cache), "image_size": 32},
        "backbone": "conv4",
        "loss": "neg-cosine",
        "margin": -0.1,
        "scale": 10.0,
        "weight_decay": 5e-4,
        "drop_rate": 0.2,  # DropBlock in conv4's blocks 3-4: the resume test then needs torch's RNG state too
        "dropblock_size": 2,
        "dropblock_ramp_iters": 2,
        "epochs": 2,
        "warmup_epochs": 1,
        "batch_size": 32,
        "lr": 3e-3,
        "val_every": 1,
        "validation": {"episodes": 10, "shots": [1, 5], "queries": 5, "finetune_epochs": 5, "seed": 3},
        "seed": 7,
        "device": "cpu",
    }
    return TrialConfig.from_dict(config, overrides).model_dump()
