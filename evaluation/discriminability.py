"""The paper's discriminability analysis (Eq. 2-4) on L2-normalised features: D_inter, D_intra and φ."""

import numpy as np
import torch
import torch.nn.functional as F

from evaluation.errors import EvaluationError


def discriminability(features: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> dict[str, float]:
    """{"inter", "intra", "phi"} of features [N, D] with labels [N] (Eq. 2-4 of the paper)."""
    feats = torch.as_tensor(np.asarray(features) if not isinstance(features, torch.Tensor) else features)
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if feats.dim() != 2 or labels.shape != feats.shape[:1]:
        raise EvaluationError(
            f"discriminability needs features [N, D] and labels [N]; got {tuple(feats.shape)} and {tuple(labels.shape)}"
        )
    classes, inverse = torch.unique(labels.cpu(), return_inverse=True)
    n_classes = classes.numel()
    if n_classes < 2:
        raise EvaluationError(f"discriminability needs at least 2 classes, got {n_classes}")
    feats = F.normalize(feats.detach().cpu().to(torch.float64), dim=-1)  # Eq. 2: mean of normalised embeddings
    counts = torch.bincount(inverse, minlength=n_classes).to(torch.float64)  # [C]
    centres = torch.zeros(n_classes, feats.shape[1], dtype=torch.float64).index_add_(0, inverse, feats)
    centres /= counts.unsqueeze(1)
    sample_sq = (feats - centres[inverse]).square().sum(dim=1)  # [N]
    intra = (torch.zeros(n_classes, dtype=torch.float64).index_add_(0, inverse, sample_sq) / counts).mean()
    # Eq. 3: sum over ordered pairs j != k of |μ_j − μ_k|² = 2C Σ_j |μ_j|² − 2 |Σ_j μ_j|²
    pair_sum = 2 * n_classes * centres.square().sum() - 2 * centres.sum(dim=0).square().sum()
    inter = pair_sum / (n_classes * (n_classes - 1))
    phi = inter / intra if intra > 0 else torch.tensor(float("inf"))
    return {"inter": float(inter), "intra": float(intra), "phi": float(phi)}
