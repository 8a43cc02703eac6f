"""Backbone registry: `@register_backbone` fills a table behind `build_backbone(name)` and `list_backbones()`."""

import importlib
import inspect
from collections.abc import Callable

import torch
from torch import nn

from models.catalog import BACKBONE_MODULES, BACKBONES
from models.dropblock import check_dropblock_args
from models.errors import ModelConfigError

BackboneFactory = Callable[..., nn.Module]
_BACKBONES: dict[str, BackboneFactory] = {}


def register_backbone(factory: BackboneFactory) -> BackboneFactory:
    """Register `factory` under its function name; it must return a module with an int `out_dim`."""
    name = factory.__name__
    if name in _BACKBONES:
        raise ValueError(f"backbone {name!r} registered twice")
    _BACKBONES[name] = factory
    return factory


def _registered() -> dict[str, BackboneFactory]:
    """The table, with the shipped backbone modules imported (each registers itself on import)."""
    for module in sorted(set(BACKBONE_MODULES.values())):
        importlib.import_module(module)
    missing = set(BACKBONES) - set(_BACKBONES)
    if missing:  # models.catalog names a backbone nobody registered: our bug
        raise RuntimeError(f"models.catalog.BACKBONES names unregistered backbone(s) {sorted(missing)}")
    return _BACKBONES


def list_backbones() -> list[str]:
    """Names of the registered backbones, sorted."""
    return sorted(_registered())


def build_backbone(
    name: str,
    *,
    drop_rate: float = 0.0,
    dropblock_size: int = 5,
    dropblock_ramp_iters: int = 40_000,
    dropblock_mask: str = "exact",
    **kwargs,
) -> nn.Module:
    """Build backbone `name`: forward(x [B, 3, H, W]) -> features [B, out_dim]. `dropblock_mask`: "exact" or
    "published" (models/dropblock.py)."""
    if name not in _registered():
        raise ModelConfigError(f"unknown backbone {name!r}; known backbones: {', '.join(list_backbones())}")
    check_dropblock_args(drop_rate, dropblock_size, dropblock_ramp_iters, dropblock_mask)
    factory = _BACKBONES[name]
    options = dict(
        drop_rate=drop_rate,
        dropblock_size=dropblock_size,
        dropblock_ramp_iters=dropblock_ramp_iters,
        dropblock_mask=dropblock_mask,
    )
    options.update(kwargs)
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ModelConfigError(f"backbone {name!r} has no option(s) {unknown}; options: {', '.join(accepted)}")
    return factory(**options)


def feature_dim(backbone: nn.Module, image_size: int) -> int:
    """Feature dim D of `backbone` for [1, 3, image_size, image_size] inputs (eval, no grad; mode restored)."""
    param = next(backbone.parameters())
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            dummy = torch.zeros(1, 3, image_size, image_size, device=param.device, dtype=param.dtype)
            out = backbone(dummy)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelConfigError(
            f"image size {image_size} is too small for {type(backbone).__name__}: {first_line}"
        ) from None
    finally:
        backbone.train(was_training)
    return int(out.shape[1])
