"""Backbones (conv4, resnet12, resnet18, wrn28_10), DropBlock and the margin heads of negative-margin softmax."""

from models import conv4 as _conv4  # noqa: F401  (registers the backbone)
from models import resnet12 as _resnet12  # noqa: F401
from models import resnet18 as _resnet18  # noqa: F401
from models import wrn as _wrn  # noqa: F401
from models.dropblock import DropBlock2d, drop_block_2d
from models.errors import ModelConfigError
from models.heads import LOSSES, MarginHead, SoftmaxHead, build_head, head_similarity
from models.registry import build_backbone, feature_dim, list_backbones, register_backbone

__all__ = [
    "LOSSES",
    "DropBlock2d",
    "MarginHead",
    "ModelConfigError",
    "SoftmaxHead",
    "build_backbone",
    "build_head",
    "drop_block_2d",
    "feature_dim",
    "head_similarity",
    "list_backbones",
    "register_backbone",
]
