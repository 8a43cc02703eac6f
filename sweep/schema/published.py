"""The starting points of the paper's settings, each with where it comes from (docs/protocol.md, "2. The published
values"): the first points a sweep of that setting tries.

A starting point is a whole configuration, every searched parameter (sweep.schema.hyperparameters) named. Its origin is
    "script"  the authors' run script `script/<backbone>/<dataset>_<loss>_<K>-shot.sh`: the values it sets (each
              parameter's `published_key`), β from the config it loads (Neg-Softmax: 5 from
              `configs/*/exp_neg-softmax.yml`, 10 set by the ResNet-12 scripts), and for everything else the code's
              defaults (`published_default`: Neg-Cosine's β 30, DropBlock rate 0 and size 5, …);
    "paper"   a value the paper states that the script does not use (ResNet-18 mini-ImageNet Neg-Cosine: m = −0.3 in
              Table 5 and Figs 8–9, against the 1-shot script's −0.05), the rest as the script;
    "ours"    no published value exists (WRN-28-10 has neither a script nor a value in the paper): our own guess,
              not a published configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from sweep.schema.hyperparameters import HYPERPARAMETERS

Origin = Literal["script", "paper", "ours"]

ORIGIN_LABELS: dict[str, str] = {
    "script": "published (run script)",
    "paper": "published (paper)",
    "ours": "our own starting point (unpublished)",
    "spec": "the spec's points_to_evaluate",
}


class Setting(NamedTuple):
    """What a starting point is for."""

    dataset: str
    backbone: str
    loss: str
    shot: int


@dataclass(frozen=True)
class StartingPoint:
    """A whole configuration (a value for every searched parameter) and where it comes from."""

    params: dict[str, float]
    origin: Origin
    reference: str  # the script's path, the paper's table or figure, or why there is none

    @property
    def published(self) -> bool:
        """Whether the values appear in the authors' scripts or paper (an "ours" point does not)."""
        return self.origin != "ours"


def _with_code_defaults(values: dict[str, float]) -> dict[str, float]:
    """`values` and, for every other searched parameter, the authors' code default (lib/config.py)."""
    return {parameter.name: values.get(parameter.name, parameter.published_default) for parameter in HYPERPARAMETERS}


def _script(path: str, **values: float) -> StartingPoint:
    """The starting point of the run script `path`: the values it (or the config it loads) sets, code defaults else."""
    return StartingPoint(_with_code_defaults(values), "script", f"script/{path}")


_R18_MINI_COS_1 = _script(
    "resnet18/miniImagenet_neg-cosine_1-shot.sh", margin=-0.05, weight_decay=5e-5, drop_rate=0.2, dropblock_size=3
)

STARTING_POINTS: dict[Setting, tuple[StartingPoint, ...]] = {
    Setting("mini-imagenet", "resnet18", "neg-cosine", 1): (
        _R18_MINI_COS_1,
        StartingPoint(
            {**_R18_MINI_COS_1.params, "margin": -0.3},
            "paper",
            "m = −0.3 of the paper's ResNet-18 Neg-Cosine analysis model (Table 5, Figs 8–9; Table 3's val accuracy "
            "equals Table 5's m = −0.3 row); the other values are the 1-shot script's",
        ),
    ),
    Setting("mini-imagenet", "resnet18", "neg-cosine", 5): (
        _script(
            "resnet18/miniImagenet_neg-cosine_5-shot.sh",
            margin=-0.02,
            weight_decay=1e-4,
            drop_rate=0.2,
            dropblock_size=3,
        ),
    ),
    Setting("mini-imagenet", "resnet18", "neg-softmax", 1): (
        _script("resnet18/miniImagenet_neg-softmax_1-shot.sh", margin=-0.3, weight_decay=1e-4, scale=5.0),
    ),
    Setting("mini-imagenet", "resnet18", "neg-softmax", 5): (
        _script("resnet18/miniImagenet_neg-softmax_5-shot.sh", margin=-0.3, weight_decay=5e-5, scale=5.0),
    ),
    Setting("cub", "resnet18", "neg-cosine", 1): (
        _script("resnet18/CUB_neg-cosine_1-shot.sh", margin=-0.01, weight_decay=5e-4, drop_rate=0.1, dropblock_size=5),
    ),
    Setting("cub", "resnet18", "neg-cosine", 5): (
        _script("resnet18/CUB_neg-cosine_5-shot.sh", margin=-0.01, weight_decay=1e-3, drop_rate=0.1, dropblock_size=5),
    ),
    Setting("cub", "resnet18", "neg-softmax", 1): (
        _script("resnet18/CUB_neg-softmax_1-shot.sh", margin=-0.05, weight_decay=5e-3, scale=5.0),
    ),
    Setting("cub", "resnet18", "neg-softmax", 5): (
        _script("resnet18/CUB_neg-softmax_5-shot.sh", margin=-0.005, weight_decay=3e-3, scale=5.0),
    ),
    Setting("mini2cub", "resnet18", "neg-cosine", 5): (
        _script("resnet18/mini2CUB_neg-cosine_5-shot.sh", margin=-0.05, weight_decay=5e-5),
    ),
    Setting("mini2cub", "resnet18", "neg-softmax", 5): (
        _script("resnet18/mini2CUB_neg-softmax_5-shot.sh", margin=-0.005, weight_decay=1e-6, scale=5.0),
    ),
    Setting("mini-imagenet", "resnet12", "neg-cosine", 1): (
        _script(
            "resnet12/miniImagenet_neg-cosine_1-shot.sh",
            margin=-0.02,
            weight_decay=1e-4,
            drop_rate=0.1,
            dropblock_size=5,
        ),
    ),
    Setting("mini-imagenet", "resnet12", "neg-cosine", 5): (
        _script(
            "resnet12/miniImagenet_neg-cosine_5-shot.sh",
            margin=-0.01,
            weight_decay=1e-4,
            drop_rate=0.1,
            dropblock_size=5,
        ),
    ),
    Setting("mini-imagenet", "resnet12", "neg-softmax", 1): (
        _script(
            "resnet12/miniImagenet_neg-softmax_1-shot.sh",
            margin=-0.01,
            weight_decay=3e-4,
            scale=10.0,
            drop_rate=0.1,
            dropblock_size=5,
        ),
    ),
    Setting("mini-imagenet", "resnet12", "neg-softmax", 5): (
        _script(
            "resnet12/miniImagenet_neg-softmax_5-shot.sh",
            margin=-0.1,
            weight_decay=1e-5,
            scale=10.0,
            drop_rate=0.1,
            dropblock_size=5,
        ),
    ),
}

_WRN_OURS = StartingPoint(
    _with_code_defaults({"margin": -0.2}),
    "ours",
    "WRN-28-10 has no run script and the paper gives no value; m = −0.2 is our guess (wd 0, β 30 and dropout 0 are "
    "the code's defaults)",
)
for _shot in (1, 5):
    STARTING_POINTS[Setting("mini-imagenet", "wrn28_10", "neg-cosine", _shot)] = (_WRN_OURS,)


def starting_points(dataset: str, backbone: str, loss: str, shots: list[int]) -> list[StartingPoint]:
    """The starting points of this setting for these shots, in order, without duplicates (none where none exist)."""
    points: list[StartingPoint] = []
    for shot in shots:
        for point in STARTING_POINTS.get(Setting(dataset, backbone, loss, shot), ()):
            if all(point.params != known.params for known in points):
                points.append(point)
    return points
