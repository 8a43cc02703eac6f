"""Tiny synthetic episodes and features for the evaluation tests (torch only)."""

from dataclasses import dataclass

import torch


def episode_batch(
    n_episodes: int, n_way: int, n_shot: int, n_query: int, dim: int, seed: int = 0, dtype: torch.dtype = torch.float32
):
    """Random episodes: support [E, way·shot, D], labels [E, way·shot], query [E, way·query, D], labels."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n_episodes, n_way, 1, dim, generator=g) * 0.7
    support = (means + torch.randn(n_episodes, n_way, n_shot, dim, generator=g)).reshape(n_episodes, -1, dim)
    query = (means + torch.randn(n_episodes, n_way, n_query, dim, generator=g)).reshape(n_episodes, -1, dim)
    support_labels = torch.arange(n_way).repeat_interleave(n_shot).expand(n_episodes, -1)
    query_labels = torch.arange(n_way).repeat_interleave(n_query).expand(n_episodes, -1)
    return support.to(dtype), support_labels, query.to(dtype), query_labels


@dataclass
class FakeEpisodeSet:
    """Duck-typed data.EpisodeSet: indices [E, way, shot + query]."""

    indices: torch.Tensor
    n_way: int
    n_shot: int
    n_query: int


def sample_episode_set(
    labels: torch.Tensor, n_way: int, n_shot: int, n_query: int, n_episodes: int, seed: int = 0
) -> FakeEpisodeSet:
    """Episodes over labels [N]: per episode `n_way` random classes, `n_shot + n_query` random images of each."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    members = [torch.nonzero(labels == c).squeeze(1) for c in classes]
    indices = torch.empty(n_episodes, n_way, n_shot + n_query, dtype=torch.long)
    for e in range(n_episodes):
        for k, c in enumerate(torch.randperm(len(classes), generator=g)[:n_way].tolist()):
            pool = members[c]
            indices[e, k] = pool[torch.randperm(len(pool), generator=g)[: n_shot + n_query]]
    return FakeEpisodeSet(indices, n_way, n_shot, n_query)


def clustered_features(n_classes: int, per_class: int, dim: int, spread: float, seed: int = 0):
    """Features [C·per_class, D] = class mean + spread · noise, and labels [C·per_class]."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n_classes, 1, dim, generator=g) * 3.0
    feats = means + spread * torch.randn(n_classes, per_class, dim, generator=g)
    return feats.reshape(-1, dim), torch.arange(n_classes).repeat_interleave(per_class)
