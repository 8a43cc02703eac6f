"""Promotion scores a checkpoint on the trials' device: features extracted there and every episode fine-tuned there."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import data
import evaluation
import evaluation.episode_scores
import evaluation.finetune
import models
from evaluation.checkpoint import Checkpoint, ModelSpec
from sweep.scoring.checkpoint_scores import score_checkpoint

SPEC = SimpleNamespace(seed=0, promotion=SimpleNamespace(finetune_epochs=2))


def _checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    backbone = models.build_backbone("conv4")
    spec = ModelSpec(backbone="conv4", backbone_kwargs={}, loss="neg-cosine", image_size=24)
    return Checkpoint(spec, backbone.state_dict()).save(path)


def _novel() -> SimpleNamespace:
    labels = np.repeat(np.arange(6), 4)
    images = np.random.default_rng(0).integers(0, 256, size=(24, 27, 27, 3), dtype=np.uint8)
    return SimpleNamespace(images=images, labels=labels, class_names=[f"c{k}" for k in range(6)])


def _episodes(novel: SimpleNamespace) -> dict[int, data.EpisodeSet]:
    return {1: data.EpisodeSet.sample(novel.labels, 5, 1, 2, 3, seed=0, class_names=novel.class_names)}


def test_score_checkpoint_keeps_features_and_fine_tuning_on_the_device(tmp_path: Path, monkeypatch) -> None:
    """On the meta device (a stand-in for a GPU in a CPU-only test) nothing is copied back to the CPU between feature
    extraction and the fine-tuning: the features reach evaluate() on that device, and evaluate() is told to use it."""
    seen = []

    def spy(features, labels, episodes, **kwargs):
        seen.append((features.device, features.shape, kwargs["device"]))
        return torch.zeros(episodes.indices.shape[0], dtype=torch.float64)

    monkeypatch.setattr(evaluation.episode_scores, "evaluate", spy)
    novel = _novel()
    accuracies = score_checkpoint(_checkpoint(tmp_path / "c.pt"), novel, _episodes(novel), SPEC, torch.device("meta"))
    assert seen == [(torch.device("meta"), (24, 64), torch.device("meta"))] and accuracies[1].shape == (3,)


def _fine_tuning_devices(monkeypatch) -> list[tuple[torch.device, torch.device]]:
    """Record (device of the support features, device asked for) of every fine-tuned chunk."""
    real, chunks = evaluation.finetune._finetune_chunk, []

    def recording(support, *args, **kwargs):
        chunks.append((support.device, torch.device(args[-1])))
        return real(support, *args, **kwargs)

    monkeypatch.setattr(evaluation.finetune, "_finetune_chunk", recording)
    return chunks


def test_score_checkpoint_on_the_cpu_fine_tunes_every_episode(tmp_path: Path, monkeypatch) -> None:
    chunks = _fine_tuning_devices(monkeypatch)
    novel = _novel()
    accuracies = score_checkpoint(_checkpoint(tmp_path / "c.pt"), novel, _episodes(novel), SPEC, torch.device("cpu"))
    assert chunks == [(torch.device("cpu"), torch.device("cpu"))]
    assert accuracies[1].shape == (3,)
    correct = accuracies[1] * 5 * 2  # a whole number of each episode's 5-way x 2 queries answered right
    torch.testing.assert_close(correct, correct.round(), rtol=0, atol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_score_checkpoint_on_a_gpu_runs_there(tmp_path: Path, monkeypatch) -> None:
    chunks = _fine_tuning_devices(monkeypatch)
    novel = _novel()
    device = torch.device("cuda", 0)
    accuracies = score_checkpoint(_checkpoint(tmp_path / "c.pt"), novel, _episodes(novel), SPEC, device)
    assert [(a.type, b.type) for a, b in chunks] == [("cuda", "cuda")] and accuracies[1].shape == (3,)
