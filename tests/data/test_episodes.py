"""Fixed episode sets: seeded reproducibility, episode structure, persistence, and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data import DataError, EpisodeSet

LABELS = np.repeat(np.arange(12), 25)[np.random.default_rng(0).permutation(300)]  # 12 classes x 25, shuffled


def test_same_seed_same_episodes_different_seed_differs() -> None:
    a = EpisodeSet.sample(LABELS, 5, 1, 16, 50, seed=3)
    assert torch.equal(a.indices, EpisodeSet.sample(LABELS, 5, 1, 16, 50, seed=3).indices)
    assert not torch.equal(a.indices, EpisodeSet.sample(LABELS, 5, 1, 16, 50, seed=4).indices)
    assert a.indices.shape == (50, 5, 17) and a.indices.dtype == torch.int64 and len(a) == 50
    assert (a.n_way, a.n_shot, a.n_query, a.seed) == (5, 1, 16, 3)


def test_does_not_touch_global_rng() -> None:
    state = torch.get_rng_state()
    EpisodeSet.sample(LABELS, 5, 5, 16, 10, seed=0)
    assert torch.equal(state, torch.get_rng_state())


def test_episode_structure() -> None:
    episodes = EpisodeSet.sample(LABELS, 5, 5, 15, 200, seed=1)
    labels = torch.as_tensor(LABELS)[episodes.indices]  # [E, way, shot + query]
    assert (labels == labels[..., :1]).all()  # each row is one class
    assert all(len(set(row.tolist())) == 5 for row in labels[..., 0])  # `way` distinct classes per episode
    flat = episodes.indices.view(200, -1)
    assert all(len(set(row.tolist())) == flat.shape[1] for row in flat)  # support and query disjoint
    assert episodes.support.shape == (200, 5, 5) and episodes.query.shape == (200, 5, 15)
    assert set(labels[..., 0].flatten().tolist()) == set(range(12))  # every class gets drawn


def test_save_load_round_trip(tmp_path: Path) -> None:
    episodes = EpisodeSet.sample(LABELS, 5, 5, 16, 20, seed=9)
    path = tmp_path / "sets" / "val_5shot.pt"
    episodes.save(path)
    loaded = EpisodeSet.load(path)
    assert torch.equal(loaded.indices, episodes.indices)
    assert (loaded.n_way, loaded.n_shot, loaded.n_query, loaded.seed) == (5, 5, 16, 9)
    loaded.check_labels(LABELS)
    with pytest.raises(DataError, match="different split"):
        loaded.check_labels(LABELS[::-1].copy())
    assert [p.name for p in path.parent.iterdir()] == ["val_5shot.pt"]  # no temporary left


def test_load_refuses_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="episode file not found"):
        EpisodeSet.load(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "model.pt")
    with pytest.raises(DataError, match="model.pt: not an episode file"):
        EpisodeSet.load(tmp_path / "model.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(DataError, match="text.pt: not an episode file"):
        EpisodeSet.load(tmp_path / "text.pt")


def test_too_few_images_names_the_class() -> None:
    labels = np.array([0] * 30 + [1] * 30 + [2] * 10)
    with pytest.raises(DataError, match="class 003.Cardinal has 10 images; episodes need 21"):
        EpisodeSet.sample(labels, 2, 5, 16, 5, seed=0, class_names=["001.A", "002.B", "003.Cardinal"])
    with pytest.raises(DataError, match="class label 2 has 10 images"):
        EpisodeSet.sample(labels, 2, 5, 16, 5, seed=0)


def test_too_few_classes_for_way() -> None:
    with pytest.raises(DataError, match="5-way episodes need 5 classes; the split has 3"):
        EpisodeSet.sample(np.repeat(np.arange(3), 30), 5, 1, 16, 5, seed=0)


def test_load_or_sample_saves_once_then_reloads_and_checks(tmp_path):
    labels = torch.arange(6).repeat_interleave(8)
    path = tmp_path / "episodes" / "val_1shot.pt"
    sizes = {"n_way": 5, "n_shot": 1, "n_query": 3, "n_episodes": 7, "seed": 4}
    first = EpisodeSet.load_or_sample(path, labels, **sizes)
    assert path.exists() and first.indices.shape == (7, 5, 4)
    again = EpisodeSet.load_or_sample(path, labels, **{**sizes, "seed": 99})  # saved: the seed no longer matters
    assert torch.equal(again.indices, first.indices)
    with pytest.raises(DataError, match=r"val_1shot.pt: episode set has .* = \(5, 1, 3, 7\), \(5, 1, 4, 7\)"):
        EpisodeSet.load_or_sample(path, labels, **{**sizes, "n_query": 4})
    with pytest.raises(DataError, match="different split"):
        EpisodeSet.load_or_sample(path, labels.flip(0), **sizes)
    unsaved = EpisodeSet.load_or_sample(None, labels, **sizes)
    assert torch.equal(unsaved.indices, first.indices)  # the same seed draws the same set
