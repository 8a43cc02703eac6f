"""Batched augmentation on the training device: train (RandomResizedCrop, jitter, flip) and eval transforms.

Train, per sample (params from the caller's generator):
- RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3) with torchvision's algorithm: 10 tries of (area, log-ratio),
  the first box that fits wins, else the centre-crop fallback; box -> image_size² by one bilinear grid_sample,
  sampling exactly where crop-then-resize would (align_corners=False). A box is never more than
  S/image_size ≈ 1.15x larger than the output, so no antialiasing is needed.
- Jitter as the published code runs it (CloserLook's ImageJitter, PIL ImageEnhance): brightness, contrast, colour
  (saturation), each factor uniform in [0.6, 1.4], in this FIXED order, clamped to [0, 1] after each step; the
  grey level is PIL's L = 0.299 R + 0.587 G + 0.114 B; contrast blends with the image's mean grey level.
- Horizontal flip with p = 0.5, folded into the crop's sampling grid (jitter is spatially invariant, so the order
  crop -> jitter -> flip is kept exactly).
- ImageNet normalisation; output float32.
Random draws: one `torch.rand(B, 26, generator=g)` on g's device per call: columns 0-19 the 10 (scale, log-ratio)
tries, 20-21 the box position, 22-24 the three jitter factors, 25 the flip. The generator may live on the CPU or on
the training device; a generator in a given state gives the same batch for the same input on the same device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from data.geometry import check_crop_scale, stored_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_TRIES = 10
JITTER = 0.4
GREY_WEIGHTS = (0.299, 0.587, 0.114)
_DRAWS = 2 * CROP_TRIES + 2 + 3 + 1


def as_image_tensor(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] array or tensor -> tensor (no copy when already a tensor)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images [B, H, W, 3], got {images.dtype} {tuple(images.shape)}")
    return images


def normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of x float [B, 3, H, W] in [0, 1]."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
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


def crop_resize(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Crop boxes [B, 4] (top, left, h, w) of x float [B, C, H, W], mirror where flip [B] bool, resize bilinearly
    -> [B, C, size, size]; exactly crop-then-resize (align_corners=False, edge pixels repeated at the box border)."""
    height, width = x.shape[-2:]
    top, left, h, w = (v[:, None].to(x.dtype) for v in boxes.unbind(dim=1))
    steps = (torch.arange(size, device=x.device, dtype=x.dtype) + 0.5) / size  # output pixel centres in (0, 1)
    columns = torch.where(flip[:, None], 1 - steps, steps)
    px = (left + columns * w).clamp(min=left + 0.5).minimum(left + w - 0.5)  # source pixel coordinates
    py = (top + steps * h).clamp(min=top + 0.5).minimum(top + h - 0.5)
    grid = torch.stack(
        [(2 * px / width - 1)[:, None, :].expand(-1, size, -1), (2 * py / height - 1)[:, :, None].expand(-1, -1, size)],
        dim=-1,
    )
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grey(x: torch.Tensor) -> torch.Tensor:
    """PIL "L" grey level of x float [B, 3, H, W] -> [B, 1, H, W]."""
    return torch.einsum("bchw,c->bhw", x, x.new_tensor(GREY_WEIGHTS)).unsqueeze(1)


def jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, colour (saturation) with factors [B, 3], in that order, on x float [B, 3, H, W] in
    [0, 1]; each step blends with its degenerate image (black, mean grey, grey) and clamps to [0, 1]."""
    f = factors.to(x.dtype).view(-1, 3, 1, 1, 1).unbind(dim=1)
    x = (x * f[0]).clamp_(0, 1)
    mean_grey = (x.mean(dim=(2, 3)) @ x.new_tensor(GREY_WEIGHTS)).view(-1, 1, 1, 1)
    x = torch.lerp(mean_grey.expand_as(x), x, f[1]).clamp_(0, 1)
    return torch.lerp(grey(x).expand_as(x), x, f[2]).clamp_(0, 1)


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
        factors = 1 + JITTER * (2 * u[:, -4:-1] - 1)
        flip = (u[:, -1] < 0.5) & self.hflip
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = crop_resize(x, boxes, flip, self.image_size).mul_(1 / 255)
        return normalize(jitter(x, factors))


def eval_transform(images: torch.Tensor | np.ndarray, image_size: int) -> torch.Tensor:
    """Resize to S² = stored_size(size)² (bilinear, antialiased; a no-op on cached images), centre crop, normalise:
    uint8 [B, S, S, 3] -> float32 [B, 3, size, size] on the images' device."""
    x = as_image_tensor(images).permute(0, 3, 1, 2).float()
    resized = stored_size(image_size)  # what the cache stores: no second resize of a cached batch
    if tuple(x.shape[-2:]) != (resized, resized):
        x = F.interpolate(x, size=(resized, resized), mode="bilinear", antialias=True, align_corners=False)
    top = int(round((resized - image_size) / 2.0))  # torchvision CenterCrop's offset
    x = x[..., top : top + image_size, top : top + image_size]
    return normalize(x.mul(1 / 255).contiguous())
