"""evaluate(): a whole episode set from a feature matrix, checked against labels, chunked, seeded."""

import pytest
import torch

from evaluation import EvaluationError, evaluate, finetune_head

from helpers.episodes import (
    FakeEpisodeSet,
    clustered_features,
    sample_episode_set,
)


@pytest.mark.parametrize("loss", ["neg-cosine", "neg-softmax", "softmax"])
def test_well_separated_classes_give_full_accuracy(loss: str) -> None:
    features, labels = clustered_features(n_classes=8, per_class=12, dim=32, spread=0.05)
    episodes = sample_episode_set(labels, n_way=5, n_shot=1, n_query=6, n_episodes=20)
    acc = evaluate(features, labels, episodes, seed=0, epochs=20, **finetune_head(loss))
    assert acc.shape == (20,)
    assert acc.min().item() == 1.0


def test_features_without_class_structure_give_chance_accuracy() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat_interleave(30)
    features = torch.randn(300, 64, generator=g)
    episodes = sample_episode_set(labels, n_way=5, n_shot=5, n_query=15, n_episodes=60)
    acc = evaluate(features, labels, episodes, similarity="cosine", seed=0, epochs=10)
    assert acc.mean().item() == pytest.approx(0.2, abs=0.04)


def test_labels_follow_the_way_axis_and_the_result_is_seeded_and_chunk_free() -> None:
    features, labels = clustered_features(n_classes=6, per_class=10, dim=16, spread=1.5)
    episodes = sample_episode_set(labels, n_way=5, n_shot=2, n_query=3, n_episodes=9)
    first = evaluate(features, labels, episodes, seed=3, epochs=5)
    assert torch.equal(first, evaluate(features, labels, episodes, seed=3, epochs=5, chunk_size=4))
    # Relabelling the classes (a permutation) changes nothing: an episode's labels are its rows' positions.
    relabelled = (labels + 2) % 6
    assert torch.equal(first, evaluate(features, relabelled, episodes, seed=3, epochs=5))
    assert not torch.equal(first, evaluate(features, labels, episodes, seed=4, epochs=5))


def test_labels_that_disagree_with_the_episode_rows_raise() -> None:
    features, labels = clustered_features(n_classes=6, per_class=10, dim=8, spread=1.0)
    episodes = sample_episode_set(labels, n_way=5, n_shot=1, n_query=2, n_episodes=4)
    shuffled = labels[torch.randperm(60, generator=torch.Generator().manual_seed(0))]
    with pytest.raises(EvaluationError, match="must be one class"):
        evaluate(features, shuffled, episodes, epochs=1)
    twice = episodes.indices.clone()
    twice[0, 1] = twice[0, 0]
    with pytest.raises(EvaluationError, match="episode 0 uses a class twice"):
        evaluate(features, labels, FakeEpisodeSet(twice, 5, 1, 2), epochs=1)


def test_malformed_episode_sets_raise() -> None:
    features, labels = clustered_features(n_classes=6, per_class=10, dim=8, spread=1.0)
    episodes = sample_episode_set(labels, n_way=5, n_shot=1, n_query=2, n_episodes=4)
    with pytest.raises(EvaluationError, match="expected"):
        evaluate(features, labels, FakeEpisodeSet(episodes.indices, 5, 2, 2), epochs=1)
    with pytest.raises(EvaluationError, match="60 features"):
        evaluate(features, labels, FakeEpisodeSet(episodes.indices + 100, 5, 1, 2), epochs=1)
    with pytest.raises(EvaluationError, match="labels have shape"):
        evaluate(features, labels[:-1], episodes, epochs=1)
