"""Image geometry, torch-free: the stored image size (read by the cache, the eval transform and feature extraction)
and the crop-scale range of the training augmentation (checked by the trial config and the augmentation alike).

The cache stores every image at S = ceil(1.15 · s) for model input size s; the eval transform resizes to that same S
and centre-crops s (so it reads the cache without a second resize); feature extraction recovers s from S when it is
not given. See docs/protocol.md, "Differences from the authors' code", for how S relates to the published resize.
"""

from __future__ import annotations

from data.errors import DataError

_RESIZE_PERCENT = 115  # S = ceil(1.15 · s), in integer arithmetic


def stored_size(image_size: int) -> int:
    """S = ceil(1.15 · image_size), exactly (84 -> 97, 80 -> 92, 24 -> 28, 224 -> 258)."""
    if image_size < 1:
        raise DataError(f"image size must be a positive integer, got {image_size}")
    return -(-image_size * _RESIZE_PERCENT // 100)


def image_size_for(stored: int) -> int:
    """The model input size s whose stored size is `stored` (the largest, where two share one); DataError if none."""
    candidates = [size for size in range(stored, 0, -1) if stored_size(size) == stored]
    if not candidates:
        raise DataError(f"no model input size is stored at {stored} px (stored sizes are ceil(1.15 · s))")
    return candidates[0]


def check_crop_scale(crop_scale: tuple[float, float]) -> tuple[float, float]:
    """The (low, high) area range of RandomResizedCrop, checked: 0 < low <= high <= 1 (ValueError otherwise)."""
    low, high = float(crop_scale[0]), float(crop_scale[1])
    if not 0 < low <= high <= 1:
        raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {[low, high]}")
    return (low, high)
