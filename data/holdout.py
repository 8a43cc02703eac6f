"""Held-out base images: a seeded fraction of every base class kept out of pretraining, for the margin study.

One definition, used by the trial (it trains on the kept part) and by the study (it scores on the held-out part):
`holdout_indices(labels, fraction, seed)`. Per class c with n_c images, round(fraction · n_c) images are held out
(at least one when fraction > 0, and at least one is kept), chosen by a private torch.Generator(seed) that draws one
permutation per class in label order, so the split depends only on the labels, the fraction and the seed.
"""

from __future__ import annotations

import numpy as np
import torch

from data.cache import CachedSplit
from data.errors import DataError


def holdout_indices(labels: np.ndarray | torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held_out): sorted int64 index arrays into labels [N] that partition it; empty held_out for fraction 0."""
    labels_np = np.asarray(torch.as_tensor(np.asarray(labels)).cpu().numpy(), dtype=np.int64)
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"holdout_fraction must lie in [0, 1), got {fraction}")
    everything = np.arange(labels_np.size, dtype=np.int64)
    if fraction == 0.0:
        return everything, np.zeros(0, dtype=np.int64)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    held: list[np.ndarray] = []
    for label in np.unique(labels_np):
        members = np.flatnonzero(labels_np == label)
        if members.size < 2:
            raise DataError(f"class label {label} has {members.size} image(s); holding some out needs at least 2")
        count = min(max(1, round(fraction * members.size)), members.size - 1)
        order = torch.randperm(members.size, generator=generator).numpy()
        held.append(members[order[:count]])
    held_out = np.sort(np.concatenate(held))
    kept = np.setdiff1d(everything, held_out, assume_unique=True)
    return kept, held_out


def split_base(base: CachedSplit, fraction: float, seed: int) -> tuple[CachedSplit, CachedSplit]:
    """(kept, held-out) parts of a cached base split; the same class names, images copied into memory."""
    kept, held_out = holdout_indices(base.labels, fraction, seed)
    return base.subset(kept), base.subset(held_out)
