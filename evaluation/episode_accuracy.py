"""Evaluate a whole episode set from a feature matrix: gather each episode, fine-tune all of them in chunks."""

from typing import Protocol

import numpy as np
import torch

from evaluation.errors import EvaluationError
from evaluation.finetune import FinetuneSettings, default_chunk_size, episode_seeds, finetune_seeded


class EpisodeIndex(Protocol):
    """What `evaluate` needs of a data.EpisodeSet: indices [E, way, shot + query] (support first) and the sizes."""

    indices: torch.Tensor
    n_way: int
    n_shot: int
    n_query: int


def _as_tensor(values: torch.Tensor | np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Tensor view of a tensor or numpy array (no copy when possible)."""
    tensor = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    return tensor.to(dtype) if dtype is not None else tensor


def check_episode_labels(indices: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise EvaluationError unless each row indices[e, k] [shot + query] is one class, distinct within the episode."""
    classes = labels[indices]  # [E, way, shot + query]
    mixed = (classes != classes[..., :1]).any(dim=-1)  # [E, way]
    if mixed.any():
        e, k = (int(i) for i in mixed.nonzero()[0])
        found = sorted(set(classes[e, k].tolist()))
        raise EvaluationError(
            f"episode {e}, way {k}: its images have labels {found}; each row of the episode "
            "set must be one class (episode set made for other labels?)"
        )
    row_classes = classes[..., 0].sort(dim=1).values  # [E, way]
    repeated = (row_classes[:, 1:] == row_classes[:, :-1]).any(dim=1)
    if repeated.any():
        e = int(repeated.nonzero()[0])
        raise EvaluationError(f"episode {e} uses a class twice: {classes[e, :, 0].tolist()}")


def _check_episode_set(episode_set: EpisodeIndex, n_samples: int) -> torch.Tensor:
    """Indices [E, way, shot + query] of a valid episode set over `n_samples` features."""
    indices = _as_tensor(episode_set.indices, torch.long)
    expected = (episode_set.n_way, episode_set.n_shot + episode_set.n_query)
    if indices.dim() != 3 or tuple(indices.shape[1:]) != expected:
        raise EvaluationError(
            f"episode set indices have shape {tuple(indices.shape)}, expected [E, {expected[0]}, "
            f"{expected[1]}] for {episode_set.n_way}-way {episode_set.n_shot}-shot "
            f"{episode_set.n_query}-query"
        )
    if episode_set.n_shot < 1 or episode_set.n_query < 1:
        raise EvaluationError(
            f"episode set has n_shot={episode_set.n_shot}, n_query={episode_set.n_query}; need at least 1 of each"
        )
    if indices.numel() and (indices.min() < 0 or indices.max() >= n_samples):
        raise EvaluationError(
            f"episode set indices range over [{int(indices.min())}, {int(indices.max())}] but "
            f"there are {n_samples} features (episode set made for another split?)"
        )
    return indices


def evaluate(
    features: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    episode_set: EpisodeIndex,
    similarity: str = "cosine",
    seed: int = 0,
    *,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    **finetune_kwargs,
) -> torch.Tensor:
    """Query accuracy [E] in [0, 1] of every episode of `episode_set` on features [N, D] with labels [N]."""
    if features.dim() != 2:
        raise EvaluationError(f"features must be [N, D], got shape {tuple(features.shape)}")
    labels = _as_tensor(labels, torch.long).to(features.device)
    if labels.shape != features.shape[:1]:
        raise EvaluationError(f"labels have shape {tuple(labels.shape)} but there are {features.shape[0]} features")
    indices = _check_episode_set(episode_set, features.shape[0]).to(features.device)
    check_episode_labels(indices, labels)
    settings = FinetuneSettings(similarity=similarity, **finetune_kwargs)
    n_episodes, n_way, n_shot = indices.shape[0], episode_set.n_way, episode_set.n_shot
    seeds = episode_seeds(n_episodes, torch.Generator().manual_seed(seed))
    if chunk_size is None:
        chunk_size = default_chunk_size(device if device is not None else features.device)

    positions = torch.arange(n_way, device=features.device)  # label of an image = its row along the way axis
    accs = []
    for start in range(0, n_episodes, chunk_size):
        chunk = indices[start : start + chunk_size]
        size = chunk.shape[0]
        support = features[chunk[:, :, :n_shot]].reshape(size, -1, features.shape[1])
        query = features[chunk[:, :, n_shot:]].reshape(size, -1, features.shape[1])
        support_labels = positions.repeat_interleave(n_shot).expand(size, -1)
        query_labels = positions.repeat_interleave(episode_set.n_query).expand(size, -1)
        accs.append(
            finetune_seeded(
                support,
                support_labels,
                query,
                query_labels,
                seeds[start : start + size],
                settings=settings,
                chunk_size=chunk_size,
                device=device,
            )
        )
    return torch.cat(accs) if accs else torch.zeros(0, dtype=torch.float64)
