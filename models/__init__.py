"""Backbones (conv4, resnet12, resnet18, wrn28_10), DropBlock and the margin heads of negative-margin softmax.

The names below are imported from their submodules on first use (PEP 562), so that the torch-free catalog of
backbone and loss names (`models.catalog`) loads without torch: spec validation needs only that.
"""

from data.lazy_exports import lazy_getattr

_EXPORTS = {
    "BACKBONES": "models.catalog",
    "LOSSES": "models.catalog",
    "LOSS_NAMES": "models.catalog",
    "Loss": "models.catalog",
    "trained_loss": "models.catalog",
    "DropBlock2d": "models.dropblock",
    "drop_block_2d": "models.dropblock",
    "ModelConfigError": "models.errors",
    "MarginHead": "models.heads",
    "SoftmaxHead": "models.heads",
    "build_head": "models.heads",
    "head_similarity": "models.heads",
    "build_backbone": "models.registry",
    "feature_dim": "models.registry",
    "list_backbones": "models.registry",
    "register_backbone": "models.registry",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
