"""The published hyperparameters (docs/protocol.md, 2), used as the first points a sweep tries."""

from __future__ import annotations

from typing import NamedTuple

from data.datasets import canonical_name


class Setting(NamedTuple):
    """What a published configuration is for."""

    dataset: str
    backbone: str
    loss: str
    shot: int


# (dataset, backbone, loss, shot) -> parameters; β of Neg-Cosine is the code's default 30, of Neg-Softmax as listed.
_NEG_COSINE_SCALE = 30.0
PUBLISHED: dict[Setting, dict[str, float]] = {
    Setting("mini-imagenet", "resnet18", "neg-cosine", 1): {
        "margin": -0.05,
        "weight_decay": 5e-5,
        "scale": _NEG_COSINE_SCALE,
        "drop_rate": 0.2,
        "dropblock_size": 3,
    },
    Setting("mini-imagenet", "resnet18", "neg-cosine", 5): {
        "margin": -0.02,
        "weight_decay": 1e-4,
        "scale": _NEG_COSINE_SCALE,
        "drop_rate": 0.2,
        "dropblock_size": 3,
    },
    Setting("mini-imagenet", "resnet18", "neg-softmax", 1): {"margin": -0.3, "weight_decay": 1e-4, "scale": 5.0},
    Setting("mini-imagenet", "resnet18", "neg-softmax", 5): {"margin": -0.3, "weight_decay": 5e-5, "scale": 5.0},
    Setting("cub", "resnet18", "neg-cosine", 1): {
        "margin": -0.01,
        "weight_decay": 5e-4,
        "scale": _NEG_COSINE_SCALE,
        "drop_rate": 0.1,
        "dropblock_size": 5,
    },
    Setting("cub", "resnet18", "neg-cosine", 5): {
        "margin": -0.01,
        "weight_decay": 1e-3,
        "scale": _NEG_COSINE_SCALE,
        "drop_rate": 0.1,
        "dropblock_size": 5,
    },
    Setting("cub", "resnet18", "neg-softmax", 1): {"margin": -0.05, "weight_decay": 5e-3, "scale": 5.0},
    Setting("cub", "resnet18", "neg-softmax", 5): {"margin": -0.005, "weight_decay": 3e-3, "scale": 5.0},
    Setting("mini2cub", "resnet18", "neg-cosine", 5): {
        "margin": -0.05,
        "weight_decay": 5e-5,
        "scale": _NEG_COSINE_SCALE,
    },
    Setting("mini2cub", "resnet18", "neg-softmax", 5): {"margin": -0.005, "weight_decay": 1e-6, "scale": 5.0},
    Setting("mini-imagenet", "resnet12", "neg-cosine", 1): {
        "margin": -0.02,
        "weight_decay": 1e-4,
        "scale": _NEG_COSINE_SCALE,
        "drop_rate": 0.1,
        "dropblock_size": 5,
    },
    Setting("mini-imagenet", "resnet12", "neg-cosine", 5): {
        "margin": -0.01,
        "weight_decay": 1e-4,
        "scale": _NEG_COSINE_SCALE,
        "drop_rate": 0.1,
        "dropblock_size": 5,
    },
    Setting("mini-imagenet", "resnet12", "neg-softmax", 1): {
        "margin": -0.01,
        "weight_decay": 3e-4,
        "scale": 10.0,
        "drop_rate": 0.1,
        "dropblock_size": 5,
    },
    Setting("mini-imagenet", "resnet12", "neg-softmax", 5): {
        "margin": -0.1,
        "weight_decay": 1e-5,
        "scale": 10.0,
        "drop_rate": 0.1,
        "dropblock_size": 5,
    },
    Setting("mini-imagenet", "wrn28_10", "neg-cosine", 1): {
        "margin": -0.2,
        "weight_decay": 0.0,
        "scale": _NEG_COSINE_SCALE,
    },
    Setting("mini-imagenet", "wrn28_10", "neg-cosine", 5): {
        "margin": -0.2,
        "weight_decay": 0.0,
        "scale": _NEG_COSINE_SCALE,
    },
}


def published_points(dataset: str, backbone: str, loss: str, shots: list[int]) -> list[dict[str, float]]:
    """The published configurations for these shots (none where the paper has none), without duplicates; a dataset
    alias ("mini-imagenet->cub") finds its dataset's points."""
    points: list[dict[str, float]] = []
    for shot in shots:
        point = PUBLISHED.get(Setting(canonical_name(dataset), backbone, loss, shot))
        if point is not None and point not in points:
            points.append(dict(point))
    return points
