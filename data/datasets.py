"""Dataset registry: `build_dataset(name, root, split)` -> ImageDataset.

Roots (the accepted layouts of each are in data.readers.* and README.md, "Datasets"):
- "mini-imagenet": any layout of data.readers.minimagenet (CSVs + images/, CloserLook JSON, CSVs over an ILSVRC
  train tree, renmengye / learn2learn cache pickles).
- "cub": the folder CUB_200_2011.tgz was extracted in, or CUB_200_2011 itself.
- "mini2cub" (alias "mini-imagenet->cub", which a shell cannot take unquoted): a folder holding mini-ImageNet
  (`mini-imagenet/`, or `miniImagenet/` as in CloserLook's filelists/) and CUB (`CUB_200_2011/` directly, or under
  `CUB/` as in CloserLook's filelists/); base = all 100 mini-ImageNet classes, val / novel = CUB val / novel.
- "imagefolder": root/{base,val,novel}/<class>/<image> (or train/val/test).
- "glyphs", "glyphs-mini": delegated to data.glyphs.build_glyph_dataset(split, root, variant); root (the glyph
  cache) may be None.
Whichever split is opened, the files of every split are checked first, so none fails after another was decoded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from data.errors import DataError
from data.readers import cub, imagefolder, minimagenet
from data.readers.base import ImageDataset, require_dir
from data.readers.layouts import Layout, Need, detect

MINI_TO_CUB = "mini2cub"
ALIASES = {"mini-imagenet->cub": MINI_TO_CUB}  # old name -> name; an alias opens the same dataset and cache
MINI_TO_CUB_LAYOUTS = (
    Layout(
        "mini-imagenet/ + CUB_200_2011/",
        {"mini": Need(("mini-imagenet",), "dir"), "cub": Need(("CUB_200_2011",), "dir")},
    ),
    Layout(
        "CloserLook filelists/ (miniImagenet/ + CUB/)",
        {"mini": Need(("miniImagenet",), "dir"), "cub": Need(("CUB",), "dir")},
    ),
)


def canonical_name(name: str) -> str:
    """The registered name of dataset `name` (an alias -> its dataset; any other name unchanged)."""
    return ALIASES.get(name, name)


def _mini_to_cub(root: Path, split: str) -> ImageDataset:
    if split not in ("base", "val", "novel"):
        raise DataError(f"unknown split {split!r} for {MINI_TO_CUB}; choose one of base, val, novel")
    _, found = detect(require_dir(root, f"{MINI_TO_CUB} root"), MINI_TO_CUB_LAYOUTS, MINI_TO_CUB)
    # Both sides are opened (file lists only, nothing decoded) so that each checks all of its splits.
    mini = minimagenet.build(found["mini"], "all", name=MINI_TO_CUB)
    cub_split = cub.build(found["cub"], "val" if split == "base" else split, name=MINI_TO_CUB)
    if split == "base":
        mini.split = "base"
        return mini
    return cub_split


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
    """Registered dataset names (aliases not included)."""
    return list(_BUILDERS)


def build_dataset(name: str, root: str | Path | None, split: str) -> ImageDataset:
    """Dataset `name` (or an alias) under `root`, split "base" | "val" | "novel" ("all" for mini-imagenet)."""
    name = canonical_name(name)
    if name not in _BUILDERS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(_BUILDERS)}")
    if root is None and name not in ROOT_OPTIONAL:
        raise DataError(f"dataset {name!r} needs a root directory")
    return _BUILDERS[name](Path(root) if root is not None else None, split)
