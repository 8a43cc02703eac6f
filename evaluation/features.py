"""Feature extraction with a frozen backbone: eval transform, eval mode, no grad, bf16 autocast on CUDA; the features
stay on the device they were computed on, so the episode fine-tuning that follows runs there too."""

import contextlib

import numpy as np
import torch
from torch import nn

from evaluation.errors import EvaluationError


@contextlib.contextmanager
def _eval_mode(module: nn.Module):
    """Put every submodule in eval mode; restore each one's own training flag afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


def extract_features(
    backbone: nn.Module,
    images: np.ndarray | torch.Tensor,
    batch_size: int,
    device: torch.device | str,
    image_size: int,
) -> torch.Tensor:
    """Features [N, D] (float32, on `device`) of cached uint8 images [N, S, S, 3] after data.eval_transform to
    image_size (resize to int(1.15·image_size), centre crop image_size)."""
    from data import eval_transform  # lazily: evaluation's other parts do not need data

    if images.ndim != 4 or images.shape[-1] != 3:
        raise EvaluationError(f"images must be uint8 [N, S, S, 3], got shape {tuple(images.shape)}")
    if batch_size < 1:
        raise EvaluationError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    chunks = []
    with _eval_mode(backbone), torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size]
            if not isinstance(batch, torch.Tensor):
                batch = torch.from_numpy(np.array(batch))  # a writable copy of one batch of the (read-only) cache
            inputs = eval_transform(batch.to(device, non_blocking=True), image_size)  # fp32: outside autocast
            with autocast:
                chunks.append(backbone(inputs).float())
    if not chunks:
        raise EvaluationError("no images to extract features from")
    return torch.cat(chunks)
