"""Fixed episode sets: seeded (classes, support, query) indices made once and reused by every trial."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from data.atomic import write_atomically
from data.errors import DataError

EPISODES_FORMAT = 1


def labels_digest(labels: torch.Tensor | np.ndarray | Sequence[int]) -> str:
    """Hex digest of labels [N], to check an episode set is used with the split it was drawn from."""
    array = np.ascontiguousarray(torch.as_tensor(labels).cpu().numpy(), dtype="<i8")
    return hashlib.sha256(array.tobytes()).hexdigest()


class EpisodeSet:
    """`indices` LongTensor [E, way, shot + query] into the split (first `n_shot` along the last axis are support)."""

    def __init__(
        self, indices: torch.Tensor, n_way: int, n_shot: int, n_query: int, seed: int, labels_sha: str = ""
    ) -> None:
        self.indices, self.n_way, self.n_shot, self.n_query, self.seed = indices, n_way, n_shot, n_query, seed
        self.labels_sha = labels_sha

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __repr__(self) -> str:
        return (
            f"EpisodeSet({len(self)} episodes, {self.n_way}-way {self.n_shot}-shot {self.n_query}-query, "
            f"seed={self.seed})"
        )

    @property
    def support(self) -> torch.Tensor:
        """Support indices [E, way, shot]."""
        return self.indices[..., : self.n_shot]

    @property
    def query(self) -> torch.Tensor:
        """Query indices [E, way, query]."""
        return self.indices[..., self.n_shot :]

    @classmethod
    def sample(
        cls,
        labels: torch.Tensor | np.ndarray | Sequence[int],
        n_way: int,
        n_shot: int,
        n_query: int,
        n_episodes: int,
        seed: int,
        class_names: Sequence[str] | None = None,
    ) -> EpisodeSet:
        """Draw `n_episodes` episodes from labels [N] with a private CPU torch.Generator(seed).

        Per episode: randperm over the classes (first `n_way` taken), then per chosen class a randperm over its
        images (first shot + query taken). Every class must have shot + query images (DataError names it).
        """
        labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.int64).cpu()
        per_episode = n_shot + n_query
        if min(n_way, n_shot, n_episodes) < 1 or n_query < 0:
            raise DataError(
                f"episodes need n_way, n_shot, n_episodes >= 1 and n_query >= 0 "
                f"(got way={n_way}, shot={n_shot}, query={n_query}, episodes={n_episodes})"
            )
        classes = torch.unique(labels_t)
        if n_way > len(classes):
            raise DataError(f"{n_way}-way episodes need {n_way} classes; the split has {len(classes)}")
        members = [torch.nonzero(labels_t == c).squeeze(1) for c in classes]
        for c, idx in zip(classes.tolist(), members):
            if len(idx) < per_episode:
                name = class_names[c] if class_names is not None else f"label {c}"
                raise DataError(
                    f"class {name} has {len(idx)} images; episodes need {per_episode} "
                    f"({n_shot} support + {n_query} query)"
                )
        generator = torch.Generator(device="cpu").manual_seed(seed)
        indices = torch.empty(n_episodes, n_way, per_episode, dtype=torch.int64)
        for e in range(n_episodes):
            chosen = torch.randperm(len(classes), generator=generator)[:n_way]
            for w, c in enumerate(chosen.tolist()):
                pool = members[c]
                indices[e, w] = pool[torch.randperm(len(pool), generator=generator)[:per_episode]]
        return cls(indices, n_way, n_shot, n_query, seed, labels_digest(labels_t))

    def check_labels(self, labels: torch.Tensor | np.ndarray | Sequence[int]) -> None:
        """Raise DataError if `labels` [N] are not those the set was drawn from."""
        if self.labels_sha and labels_digest(labels) != self.labels_sha:
            raise DataError(f"{self!r} was drawn from a different split (labels differ)")

    def save(self, path: str | Path) -> None:
        """Write atomically with torch.save (dict of tensors, ints and a string)."""
        state = {
            "format": EPISODES_FORMAT,
            "indices": self.indices,
            "n_way": self.n_way,
            "n_shot": self.n_shot,
            "n_query": self.n_query,
            "seed": self.seed,
            "labels_sha": self.labels_sha,
        }
        write_atomically(path, lambda stream: torch.save(state, stream))

    @classmethod
    def load(cls, path: str | Path) -> EpisodeSet:
        """Read a saved set (torch.load weights_only=True); a missing or malformed file raises DataError."""
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
        except FileNotFoundError:
            raise DataError(f"episode file not found: {path}") from None
        except Exception as error:  # torch raises UnpicklingError / RuntimeError for non-torch files
            raise DataError(f"{path}: not an episode file ({type(error).__name__})") from None
        keys = ("format", "indices", "n_way", "n_shot", "n_query", "seed")
        if not isinstance(state, dict) or any(k not in state for k in keys) or state["format"] != EPISODES_FORMAT:
            raise DataError(f"{path}: not an episode file of format {EPISODES_FORMAT}")
        indices = state["indices"]
        expected = (state["n_way"], state["n_shot"] + state["n_query"])
        if not isinstance(indices, torch.Tensor) or indices.ndim != 3 or tuple(indices.shape[1:]) != expected:
            raise DataError(f"{path}: indices do not have shape [E, {expected[0]}, {expected[1]}]")
        return cls(
            indices.long(),
            int(state["n_way"]),
            int(state["n_shot"]),
            int(state["n_query"]),
            int(state["seed"]),
            str(state.get("labels_sha", "")),
        )

    @classmethod
    def load_or_sample(
        cls,
        path: str | Path | None,
        labels: torch.Tensor | np.ndarray | Sequence[int],
        *,
        n_way: int,
        n_shot: int,
        n_query: int,
        n_episodes: int,
        seed: int,
        class_names: Sequence[str] | None = None,
    ) -> EpisodeSet:
        """The fixed episode set at `path`, checked against these sizes and `labels` [N]; sampled with `seed` and
        saved there (atomically: concurrent writers write identical sets) when `path` does not exist yet, or only
        sampled when `path` is None. DataError when the saved set was made for other sizes or another split."""
        if path is not None and Path(path).exists():
            episodes = cls.load(path)
            expected = (n_way, n_shot, n_query, n_episodes)
            found = (episodes.n_way, episodes.n_shot, episodes.n_query, len(episodes))
            if found != expected:
                raise DataError(
                    f"{path}: episode set has (way, shot, queries, episodes) = {found}, {expected} were asked for; "
                    "remove it or use another episodes directory"
                )
            episodes.check_labels(labels)
            return episodes
        episodes = cls.sample(labels, n_way, n_shot, n_query, n_episodes, seed, class_names=class_names)
        if path is not None:
            episodes.save(path)
        return episodes
