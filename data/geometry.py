"""Image geometry, torch-free: every size the data pipeline uses, defined once, and the crop-scale range.

For model input size s (docs/protocol.md D4, D5):
- `eval_resize_size(s)` = int(1.15 · s), the published eval resize (`lib/dataset.py get_loader`: Resize to
  int(image_size · 1.15), then CenterCrop(image_size)): 84 -> 96, 80 -> 92, 224 -> 257, 24 -> 27.
- `crop_source_size(s, a)` = ceil(s / √a): the side of a square image whose smallest RandomResizedCrop (area
  fraction a, aspect 1) is s pixels wide, i.e. is not upsampled: 84 at a = 0.08 -> 297, 224 -> 792.
- `stored_size(s, a, native, limit)`: the side S of the square the cache stores each image at: the larger of the
  two above, capped at the source's native side (the cache never upsamples what it stores) and at a user limit
  (`dataset.max_stored_size`). The cache (data/cache.py) stores S×S; the training augmentation crops from it; the eval
  transform resizes it to eval_resize_size(s) and centre-crops s; feature extraction reads the same cache.
"""

from __future__ import annotations

import math

from data.errors import DataError

EVAL_RESIZE_FACTOR = 1.15  # published: int(image_size * 1.15), float arithmetic as written there
CROP_SCALE = (0.08, 1.0)  # RandomResizedCrop's area range, torchvision's default and the published one


def _check_image_size(image_size: int) -> None:
    if image_size < 1:
        raise DataError(f"image size must be a positive integer, got {image_size}")


def eval_resize_size(image_size: int) -> int:
    """int(1.15 · image_size), exactly as the published eval transform computes it (84 -> 96, 224 -> 257)."""
    _check_image_size(image_size)
    return int(image_size * EVAL_RESIZE_FACTOR)


def crop_source_size(image_size: int, crop_scale_min: float = CROP_SCALE[0]) -> int:
    """ceil(image_size / √crop_scale_min): the square side whose smallest crop is image_size wide (84, 0.08 -> 297)."""
    _check_image_size(image_size)
    if not 0 < crop_scale_min <= 1:
        raise DataError(f"crop_scale_min must be in (0, 1], got {crop_scale_min}")
    return math.ceil(image_size / math.sqrt(crop_scale_min) - 1e-9)  # 1e-9: 2·s stays 2·s at a = 0.25


def stored_size(
    image_size: int,
    crop_scale_min: float = CROP_SCALE[0],
    native: int | None = None,
    limit: int | None = None,
) -> int:
    """S, the side the cache stores a split at: max(eval resize, crop source), capped at `native` (the source's
    native side; None = unknown) and `limit` (dataset.max_stored_size; None = none). 84 px: 297; 24 px at 0.8: 27."""
    size = max(eval_resize_size(image_size), crop_source_size(image_size, crop_scale_min))
    for cap in (native, limit):
        if cap is not None:
            if cap < 1:
                raise DataError(f"a stored-size cap must be a positive integer, got {cap}")
            size = min(size, cap)
    return size


def centre_crop_offset(size: int, crop: int) -> int:
    """torchvision CenterCrop's offset of a `crop`-pixel crop of a `size`-pixel side: int(round((size - crop) / 2))."""
    return int(round((size - crop) / 2.0))


def check_crop_scale(crop_scale: tuple[float, float]) -> tuple[float, float]:
    """The (low, high) area range of RandomResizedCrop, checked: 0 < low <= high <= 1 (ValueError otherwise)."""
    low, high = float(crop_scale[0]), float(crop_scale[1])
    if not 0 < low <= high <= 1:
        raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {[low, high]}")
    return (low, high)
