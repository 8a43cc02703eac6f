"""Classification heads of the pretraining losses: plain softmax, and dot/cosine with scale β and additive margin m.

Sign convention of the paper: logits = β · (s(z, W) − m · onehot(y)); a positive m is CosFace (large margin), a
negative m is the method. The margin is applied only when labels are given (training), β always.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.catalog import LOSS_NAMES, LOSSES, Similarity
from models.errors import ModelConfigError


class MarginHead(nn.Module):
    """Bias-free head: logits [B, C] = β · (s(z, W) − m · onehot(y)), s = z·Wᵀ ("dot") or cos(z, W)."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        similarity: Similarity = "cosine",
        scale: float = 30.0,
        margin: float = 0.0,
    ) -> None:
        super().__init__()
        if similarity not in ("dot", "cosine"):
            raise ModelConfigError(f"MarginHead: similarity must be 'dot' or 'cosine', got {similarity!r}")
        self.similarity = similarity
        self.scale = float(scale)
        self.margin = float(margin)
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform init of W [C, D], as nn.Linear and the published heads."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def similarities(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, D] -> s(z, W) [B, C] without scale or margin."""
        if self.similarity == "cosine":
            return F.linear(F.normalize(features, dim=-1), F.normalize(self.weight, dim=-1))
        return F.linear(features, self.weight)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """features [B, D], labels [B] | None -> logits [B, C]; margin only when labels are given."""
        logits = self.similarities(features)
        if labels is not None and self.margin != 0.0:
            margin = F.one_hot(labels, logits.shape[-1]).to(logits.dtype) * self.margin
            logits = logits - margin
        return logits * self.scale

    def extra_repr(self) -> str:
        """Summary shown by print(module)."""
        c, d = self.weight.shape
        return f"in_dim={d}, num_classes={c}, similarity={self.similarity}, scale={self.scale}, margin={self.margin}"


class SoftmaxHead(nn.Linear):
    """Baseline head: logits [B, C] = z·Wᵀ + b; labels are accepted and ignored."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__(in_dim, num_classes, bias=True)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """features [B, D], labels [B] | None (ignored) -> logits [B, C]."""
        return super().forward(features)


def head_similarity(loss: str) -> Similarity:
    """Similarity the head of `loss` uses: softmax / neg-softmax -> "dot", cosine / neg-cosine -> "cosine"."""
    if loss not in LOSSES:
        raise ModelConfigError(f"unknown loss {loss!r}; known losses: {', '.join(LOSS_NAMES)}")
    return LOSSES[loss].similarity


def build_head(loss: str, in_dim: int, num_classes: int, scale: float, margin: float) -> nn.Module:
    """Head of `loss` (models.catalog.LOSSES): forward(features [B, D], labels [B] | None) -> logits [B, C]."""
    similarity = head_similarity(loss)
    problem = LOSSES[loss].margin_problem(margin)
    if problem:
        raise ModelConfigError(problem)
    if LOSSES[loss].biased_head:
        return SoftmaxHead(in_dim, num_classes)
    if scale <= 0.0:
        raise ModelConfigError(f"loss {loss!r}: scale must be > 0, got {scale}")
    return MarginHead(in_dim, num_classes, similarity, scale=scale, margin=margin)
