"""Classification heads of the pretraining losses: plain softmax, and dot/cosine with scale β and additive margin m.

Sign convention of the paper: logits = β · (s(z, W) − m · onehot(y)); a positive m is CosFace (large margin), a
negative m is the method. The margin is applied only when labels are given (training), β always.

Every head computes in float32 whatever the caller's precision: autocast is disabled inside `forward` and the
features and weights are cast to float32, so the margins of −0.01 and −0.005 the published settings use are not
rounded by bf16 (docs/protocol.md D1). The logits are float32 [B, C].
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.catalog import LOSS_NAMES, LOSSES, Similarity
from models.errors import ModelConfigError


def float32_compute(features: torch.Tensor) -> torch.autocast:
    """A context in which autocast is off on the features' device: what runs inside it keeps its dtype."""
    return torch.autocast(features.device.type, enabled=False)


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
        """features [B, D] -> s(z, W) float32 [B, C] without scale or margin."""
        with float32_compute(features):
            features, weight = features.float(), self.weight.float()
            if self.similarity == "cosine":
                return F.linear(F.normalize(features, dim=-1), F.normalize(weight, dim=-1))
            return F.linear(features, weight)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """features [B, D], labels [B] | None -> logits float32 [B, C]; margin only when labels are given."""
        with float32_compute(features):
            logits = self.similarities(features)
            if labels is not None and self.margin != 0.0:
                logits = logits - self.margin * F.one_hot(labels, logits.shape[-1]).to(torch.float32)
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
        """features [B, D], labels [B] | None (ignored) -> logits float32 [B, C]."""
        with float32_compute(features):
            return F.linear(features.float(), self.weight.float(), self.bias.float())


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
