"""evaluation.evaluate_checkpoint: a checkpoint scored on a tiny image folder, read as the trial cached it, and the
checkpoint format's save / load round trip and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import data
import models
from evaluation import (
    Checkpoint,
    EvaluationError,
    evaluate,
    evaluate_checkpoint,
    extract_features,
    finetune_head,
    load_backbone_from_checkpoint,
)
from evaluation.checkpoint import ModelSpec

from helpers.trials import VAL_CLASSES, write_tiny_imagefolder


def _checkpoint(path: Path, dataset: dict) -> Checkpoint:
    torch.manual_seed(0)
    backbone = models.build_backbone("conv4")
    model = ModelSpec(backbone="conv4", backbone_kwargs={}, loss="neg-cosine", image_size=32, margin=-0.1)
    checkpoint = Checkpoint(model, backbone.state_dict(), epoch=4, config={"dataset": dataset})
    checkpoint.save(path)
    return checkpoint


def test_a_checkpoint_is_scored_on_the_cache_its_trial_read(tmp_path: Path) -> None:
    root = write_tiny_imagefolder(tmp_path / "images")
    trained_on = {"name": "imagefolder", "crop_scale": [0.5, 1.0], "max_stored_size": 36}
    _checkpoint(tmp_path / "run" / "checkpoint.pt", trained_on)
    result = evaluate_checkpoint(
        tmp_path / "run",  # a checkpoint directory
        "imagefolder",
        root=str(root),
        cache_dir=tmp_path / "cache",
        shots=[1, 2],
        episodes=4,
        queries=2,
        seed=1,
        device="cpu",
    )
    # the recorded geometry, not the defaults: crop scale 0.5 and the 36-px cap (no cap: 46 px at 0.5, native 40)
    assert (result.dataset.crop_scale, result.dataset.max_stored_size, result.stored_size) == ((0.5, 1.0), 36, 36)
    assert result.image_size == 32 and result.features_shape[0] == VAL_CLASSES * 10
    assert result.head == finetune_head("neg-cosine")
    # the same numbers as the protocol's steps run by hand on the same split, episodes and seed
    split = data.load_split(result.dataset, "val")
    backbone, _, _ = load_backbone_from_checkpoint(tmp_path / "run", "cpu")
    features = extract_features(backbone, split.images, 256, "cpu", 32)
    for row in result.results:
        episodes = data.EpisodeSet.sample(split.labels, 5, row.shot, 2, 4, 1, class_names=split.class_names)
        expected = evaluate(features, split.labels, episodes, seed=1, device="cpu", **result.head)
        assert row.episode_accuracy == expected.tolist()
        assert row.accuracy_pct == pytest.approx(100 * expected.double().mean().item())
        assert row.episodes == 4 and all(a in {k / 10 for k in range(11)} for a in row.episode_accuracy)
    layout = json.loads(json.dumps(result.to_json()))
    assert layout["checkpoint"] == str(tmp_path / "run") and layout["image_size"] == 32
    assert [r["shot"] for r in layout["results"]] == [1, 2]


def test_save_and_load_round_trip_every_field(tmp_path: Path) -> None:
    saved = _checkpoint(tmp_path / "checkpoint.pt", {"name": "glyphs"})
    loaded = Checkpoint.load(tmp_path)
    assert (loaded.model, loaded.epoch, loaded.dataset, loaded.training) == (saved.model, 4, {"name": "glyphs"}, None)
    assert all(torch.equal(loaded.backbone_state[k], v) for k, v in saved.backbone_state.items())
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left behind


@pytest.mark.parametrize(
    "content, message",
    [
        (["not", "a", "dict"], "is not a dict"),
        ({"model_spec": {}, "backbone_state": [torch.zeros(2)]}, "'backbone_state' must be a dict"),
        (b"\x00\x01 not a torch file", "cannot be read"),
    ],
)
def test_a_foreign_file_is_one_clear_error(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "foreign.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(EvaluationError, match=message) as error:
        Checkpoint.load(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
