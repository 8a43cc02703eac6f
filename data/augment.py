"""Batched augmentation on the training device: train (RandomResizedCrop, colour jitter, flip) and eval transforms,
as the published pipeline (bl0/negative-margin.few-shot `lib/dataset.py get_loader`, torchvision on PIL images)
computes them, for a whole batch of cached uint8 images at once.

Train, per sample (params from the caller's generator):
- RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3) with torchvision's algorithm: 10 tries of (area, log-ratio), the
  first box that fits wins, else the centre-crop fallback. The box is resized to image_size² as PIL's BILINEAR resize
  of the cropped image does it (Resample.c: a triangle filter widened by the downscale factor, so downscaling is
  antialiased; the window clipped to the box; rows normalised; horizontal pass, then vertical, each rounded to uint8
  levels), as two batched matrix products per pass: within one level of PIL (its coefficients are fixed-point).
- ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4) as torchvision runs it on a PIL image: each factor uniform
  in [0.6, 1.4]; the three operations in a random order per image (torchvision draws a permutation per call); each
  one is PIL ImageEnhance: Image.blend(degenerate, image, f) = trunc(clip(d + f·(x − d), 0, 255)) in float32 on uint8
  levels, with d = 0 (brightness), the rounded mean of the "L" image (contrast), the "L" image (saturation);
  L = (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16 as PIL converts. Bit-exact to PIL on the same uint8 crop.
- Horizontal flip with p = 0.5, folded into the resize matrix (jitter is per pixel plus a global mean, so the
  published order crop -> jitter -> flip is kept exactly).
- ToTensor (/255) and the published normalisation (NORMALIZE_MEAN / NORMALIZE_STD); output float32.
Random draws: one `torch.rand(B, 27, generator=g)` on g's device per call: columns 0-19 the 10 (scale, log-ratio)
tries, 20-21 the box position, 22-24 the three jitter factors, 25 the jitter order (one of the 6 permutations), 26 the
flip. The generator may live on the CPU or on the training device; a generator in a given state gives the same batch
for the same input on the same device.

Eval: resize to eval_resize_size(s)² = int(1.15·s)² (the same PIL BILINEAR passes; the identity when the cache
already holds that size), centre crop s (torchvision's offset; only the kept rows and columns are computed), normalise.
"""

from __future__ import annotations

import contextlib
import itertools
import math

import numpy as np
import torch

from data.geometry import CROP_SCALE, centre_crop_offset, check_crop_scale, eval_resize_size

# bl0/negative-margin.few-shot lib/dataset.py get_loader: transforms.Normalize(mean=[0.507, 0.487, 0.441],
# std=[0.267, 0.257, 0.276]), one get_loader for every dataset (mini-ImageNet, CUB, mini-ImageNet -> CUB), train and
# eval alike (these are CIFAR-100's statistics, inherited by their code). We use it for every dataset too.
NORMALIZE_MEAN = (0.507, 0.487, 0.441)
NORMALIZE_STD = (0.267, 0.257, 0.276)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_TRIES = 10
JITTER = 0.4
JITTER_ORDERS = tuple(itertools.permutations(range(3)))  # (brightness 0, contrast 1, saturation 2) in every order
GREY_WEIGHTS = (19595, 38470, 7471)  # PIL's RGB -> L: (19595 R + 38470 G + 7471 B + 32768) >> 16
_DRAWS = 2 * CROP_TRIES + 2 + 3 + 1 + 1


def _float32(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast off on `device`: the resampling and jitter arithmetic is float32 (exact levels) under any caller."""
    if device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def as_image_tensor(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] array or tensor -> tensor (no copy when already a tensor)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images [B, H, W, 3], got {images.dtype} {tuple(images.shape)}")
    return images


def normalize(x: torch.Tensor) -> torch.Tensor:
    """The published normalisation of x float [B, 3, H, W] in [0, 1]."""
    mean = x.new_tensor(NORMALIZE_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(NORMALIZE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def sample_crop_boxes(
    u_tries: torch.Tensor, u_position: torch.Tensor, height: int, width: int, scale: tuple[float, float] = CROP_SCALE
) -> torch.Tensor:
    """torchvision's RandomResizedCrop.get_params for a batch -> boxes float [B, 4] (top, left, h, w) in pixels.

    u_tries [B, CROP_TRIES, 2] uniforms for (scale, log-ratio); u_position [B, 2] uniforms for (top, left);
    `scale` the range of the crop's area fraction (published: 0.08–1).
    """
    area = height * width
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    target = area * (scale[0] + (scale[1] - scale[0]) * u_tries[..., 0])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u_tries[..., 1])
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # index of the first try that fits
    found = fits.any(dim=1)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    fallback_w, fallback_h = _centre_fallback(height, width)
    w = torch.where(found, w, torch.full_like(w, fallback_w))
    h = torch.where(found, h, torch.full_like(h, fallback_h))
    top = torch.minimum(torch.floor(u_position[:, 0] * (height - h + 1)), height - h)
    left = torch.minimum(torch.floor(u_position[:, 1] * (width - w + 1)), width - w)
    top = torch.where(found, top, torch.div(height - h, 2, rounding_mode="floor"))
    left = torch.where(found, left, torch.div(width - w, 2, rounding_mode="floor"))
    return torch.stack([top, left, h, w], dim=1).float()


def _centre_fallback(height: int, width: int) -> tuple[int, int]:
    """torchvision's fallback box size (w, h) when no try fits."""
    in_ratio = width / height
    if in_ratio < min(CROP_RATIO):
        return width, round(width / min(CROP_RATIO))
    if in_ratio > max(CROP_RATIO):
        return round(height * max(CROP_RATIO)), height
    return width, height


def bilinear_weights(start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int) -> torch.Tensor:
    """PIL's BILINEAR resize of the pixels [start, start + length) of an axis of `in_size` pixels to `out_size`, as
    a matrix per sample: start, length float [B] -> weights [B, out_size, in_size] (rows sum to 1).

    Resample.c precompute_coeffs: scale = length / out_size, the triangle filter widened to max(scale, 1) (antialiased
    downscaling), centred at start + (i + 0.5)·scale, pixels outside the box dropped, each row normalised.
    """
    start, length = start[:, None, None], length[:, None, None]
    scale = length / out_size
    widening = scale.clamp(min=1.0)
    centres = start + (torch.arange(out_size, device=start.device, dtype=start.dtype)[None, :, None] + 0.5) * scale
    pixels = torch.arange(in_size, device=start.device, dtype=start.dtype)[None, None, :]
    weights = (1 - ((pixels + 0.5 - centres) / widening).abs()).clamp_(min=0)
    weights = weights * ((pixels >= start) & (pixels < start + length))
    return weights / weights.sum(dim=-1, keepdim=True)


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Round to uint8 levels as PIL's fixed-point resampling does (half up), in place; x holds values in [0, 255]."""
    return x.add_(0.5).floor_()


def resample(x: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """PIL's two-pass resize of x float [B, C, H, W] (uint8 levels): the horizontal pass with columns [B | 1, w, W],
    rounded to levels, then the vertical pass with rows [B | 1, h, H], rounded -> levels [B, C, h, w]."""
    across = to_levels(x @ columns.transpose(-1, -2).unsqueeze(-3))
    return to_levels(rows.unsqueeze(-3) @ across)


def resize_boxes(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Crop boxes [B, 4] (top, left, h, w) of uint8 levels x float [B, C, H, W], resize each to size×size as PIL's
    BILINEAR resize of the crop does, mirror where flip [B] bool -> levels [B, C, size, size]. PIL's fixed-point
    coefficients make it differ from PIL by at most one level on a few pixels."""
    height, width = x.shape[-2:]
    top, left, h, w = boxes.to(x.dtype).unbind(dim=1)
    rows = bilinear_weights(top, h, height, size)  # [B, size, H]
    columns = bilinear_weights(left, w, width, size)  # [B, size, W]
    columns = torch.where(flip[:, None, None], columns.flip(1), columns)
    return resample(x, rows, columns)


def grey_levels(x: torch.Tensor) -> torch.Tensor:
    """PIL's "L" image of uint8 levels x float [B, 3, H, W] -> [B, 1, H, W] (integer levels, exact in float32)."""
    r, g, b = x.unbind(dim=1)
    weighted = (r * GREY_WEIGHTS[0]).add_(g * GREY_WEIGHTS[1]).add_(b * GREY_WEIGHTS[2]).add_(32768)
    return weighted.div_(65536).floor_().unsqueeze(1)


def blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL Image.blend(degenerate, image, factor) on uint8 levels: trunc(clip(d + f·(x − d), 0, 255)), float32."""
    return (x - degenerate).mul_(factor).add_(degenerate).clamp_(0, 255).floor_()


def jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """torchvision ColorJitter on PIL: brightness, contrast, saturation with factors [B, 3] (in that column order),
    applied in `order` [B, 3] (a permutation of 0, 1, 2 per sample), to uint8 levels x float [B, 3, H, W]
    -> levels [B, 3, H, W]; each step is PIL ImageEnhance (see the module docstring)."""
    factors = factors.to(x.dtype)
    for step in range(3):
        operation = order[:, step].view(-1, 1, 1, 1)
        factor = factors.gather(1, order[:, step : step + 1]).view(-1, 1, 1, 1)
        grey = grey_levels(x)
        mean_grey = grey.sum(dim=(2, 3), keepdim=True, dtype=torch.float64).div_(grey[0, 0].numel()).add_(0.5).floor_()
        # degenerate image: 0 (brightness), the mean grey (contrast), the grey image (saturation); exact 0/1 masks
        degenerate = grey.mul_(operation == 2).add_(mean_grey.to(x.dtype) * (operation == 1))
        x = blend(degenerate, x, factor)
    return x


class TrainAugment:
    """Training augmentation of a whole batch on `device`: uint8 [B, S, S, 3] -> float32 [B, 3, size, size]."""

    def __init__(
        self,
        image_size: int,
        device: torch.device | str = "cpu",
        crop_scale: tuple[float, float] = CROP_SCALE,
        hflip: bool = True,
    ) -> None:
        self.image_size = image_size
        self.device = torch.device(device)
        self.crop_scale = check_crop_scale(crop_scale)
        self.hflip = hflip  # off for data whose mirror image is another class (glyphs)
        self._orders = torch.tensor(JITTER_ORDERS, device=self.device)

    def __call__(self, images: torch.Tensor | np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """Augment images uint8 [B, S, S, 3] (any device) with params drawn from `generator` -> [B, 3, size, size]."""
        images = as_image_tensor(images)
        batch, height, width = images.shape[:3]
        u = torch.rand(batch, _DRAWS, generator=generator, device=generator.device).to(self.device)
        boxes = sample_crop_boxes(
            u[:, : 2 * CROP_TRIES].reshape(batch, CROP_TRIES, 2),
            u[:, 2 * CROP_TRIES : 2 * CROP_TRIES + 2],
            height,
            width,
            self.crop_scale,
        )
        factors = 1 + JITTER * (2 * u[:, -5:-2] - 1)
        order = self._orders[(u[:, -2] * len(JITTER_ORDERS)).long().clamp_(max=len(JITTER_ORDERS) - 1)]
        flip = (u[:, -1] < 0.5) & self.hflip
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        with _float32(self.device):
            levels = resize_boxes(x, boxes, flip, self.image_size)
            return normalize(jitter(levels, factors, order).mul_(1 / 255))


def eval_transform(images: torch.Tensor | np.ndarray, image_size: int) -> torch.Tensor:
    """Resize to int(1.15·size)² (PIL BILINEAR; the identity on an image already that size), round to uint8 levels,
    centre crop `size`, normalise: uint8 [B, H, W, 3] -> float32 [B, 3, size, size] on the images' device."""
    x = as_image_tensor(images).permute(0, 3, 1, 2).float()
    resized = eval_resize_size(image_size)
    offset = centre_crop_offset(resized, image_size)
    crop = slice(offset, offset + image_size)  # only the rows and columns the centre crop keeps

    def weights(in_size: int) -> torch.Tensor:
        whole = x.new_tensor([[0.0, float(in_size)]])
        return bilinear_weights(whole[:, 0], whole[:, 1], in_size, resized)[0, crop]  # [size, in_size]

    with _float32(x.device):
        levels = resample(x, weights(x.shape[-2]), weights(x.shape[-1]))
        return normalize(levels.mul_(1 / 255))
