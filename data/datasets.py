"""Dataset registry: `build_dataset(name, root, split)` -> ImageDataset.

Roots:
- "mini-imagenet": any layout of data.readers.minimagenet (CSV + images/, CloserLook JSON, cache pickles).
- "cub": CUB_200_2011 itself or the folder holding it.
- "mini-imagenet->cub": a folder holding `mini-imagenet/` (any mini-ImageNet layout) and `CUB_200_2011/`;
  base = all 100 mini-ImageNet classes, val / novel = CUB val / novel.
- "imagefolder": root/{base,val,novel}/<class>/<image>.
- "glyphs", "glyphs-mini": delegated to data.glyphs.build_glyph_dataset(split, root, variant); root (the glyph
  cache) may be None.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from data.errors import DataError
from data.readers import cub, imagefolder, minimagenet
from data.readers.base import ImageDataset

MINI_TO_CUB = "mini-imagenet->cub"


def _mini_to_cub(root: Path, split: str) -> ImageDataset:
    if split == "base":
        dataset = minimagenet.build(Path(root) / "mini-imagenet", "all", name=MINI_TO_CUB)
        dataset.split = "base"
        return dataset
    if split in ("val", "novel"):
        return cub.build(root, split, name=MINI_TO_CUB)
    raise DataError(f"unknown split {split!r} for {MINI_TO_CUB}; choose one of base, val, novel")


def _glyphs(root: Path | None, split: str, variant: str = "glyphs") -> ImageDataset:
    try:
        from data import glyphs
    except ModuleNotFoundError as error:
        if error.name != "data.glyphs":
            raise
        raise DataError("the glyphs dataset is not available in this installation (no data/glyphs.py)") from None
    return glyphs.build_glyph_dataset(split, root, variant)


_BUILDERS: dict[str, Callable[..., ImageDataset]] = {
    "mini-imagenet": minimagenet.build,
    "cub": cub.build,
    MINI_TO_CUB: _mini_to_cub,
    "imagefolder": imagefolder.build,
    "glyphs": _glyphs,
    "glyphs-mini": functools.partial(_glyphs, variant="glyphs-mini"),
}
ROOT_OPTIONAL = frozenset({"glyphs", "glyphs-mini"})


def list_datasets() -> list[str]:
    """Registered dataset names."""
    return list(_BUILDERS)


def build_dataset(name: str, root: str | Path | None, split: str) -> ImageDataset:
    """Dataset `name` under `root`, split "base" | "val" | "novel" ("all" for mini-imagenet) -> ImageDataset."""
    if name not in _BUILDERS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(_BUILDERS)}")
    if root is None and name not in ROOT_OPTIONAL:
        raise DataError(f"dataset {name!r} needs a root directory")
    return _BUILDERS[name](Path(root) if root is not None else None, split)
