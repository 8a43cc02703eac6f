"""`negmargin evaluate`: the checkpoint format's errors (files written by hand, malformed on purpose), and a run on a
tiny fake split."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import data
import models
from evaluation import EvaluationError
from evaluation.checkpoint import Checkpoint, ModelSpec, load_backbone_from_checkpoint
from sweep.cli.evaluate import register


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="negmargin")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def _write_checkpoint(
    path: Path, loss: str = "neg-softmax", config: dict | None = None, **spec_overrides
) -> torch.nn.Module:
    torch.manual_seed(0)
    backbone = models.build_backbone("conv4")
    spec = {"backbone": "conv4", "backbone_kwargs": {}, "loss": loss, "image_size": 84, "margin": -0.3}
    spec.update(spec_overrides)
    Checkpoint(ModelSpec(**spec), backbone.state_dict(), epoch=3, config=config or {}).save(path)
    return backbone


def test_missing_checkpoint_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "best.pt"
    args = _parser().parse_args(["evaluate", str(missing), "--dataset", "glyphs"])
    with pytest.raises(EvaluationError, match=f"checkpoint {missing} does not exist"):
        args.func(args)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    saved = _write_checkpoint(path, loss="softmax")
    backbone, head, image_size = load_backbone_from_checkpoint(path, "cpu")
    assert image_size == 84 and not backbone.training
    assert head == {"similarity": "dot", "scale": 1.0, "bias": True}
    for key, value in saved.state_dict().items():
        assert torch.equal(backbone.state_dict()[key], value)


def test_a_checkpoint_directory_is_read_through_its_checkpoint_file(tmp_path: Path) -> None:
    (tmp_path / "best").mkdir()
    saved = _write_checkpoint(tmp_path / "best" / "checkpoint.pt")
    backbone, _, _ = load_backbone_from_checkpoint(tmp_path / "best", "cpu")
    for key, value in saved.state_dict().items():
        assert torch.equal(backbone.state_dict()[key], value)


@pytest.mark.parametrize(
    "content, message",
    [
        ({"backbone": {}}, "has no key 'model_spec'"),
        (
            {"model_spec": {"backbone": "conv4", "backbone_kwargs": {}, "loss": "neg-cosine"}, "backbone_state": {}},
            r"model_spec\['image_size'\] must be a int",
        ),
        (
            {
                "model_spec": {"backbone": "conv4", "backbone_kwargs": {}, "loss": "arcface", "image_size": 84},
                "backbone_state": {},
            },
            "arcface",
        ),
        (
            {
                "model_spec": {"backbone": "vgg", "backbone_kwargs": {}, "loss": "cosine", "image_size": 84},
                "backbone_state": {},
            },
            "unknown backbone 'vgg'",
        ),
        (
            {
                "model_spec": {"backbone": "conv4", "backbone_kwargs": {}, "loss": "cosine", "image_size": 84},
                "backbone_state": {},
            },
            "backbone_state does not fit backbone 'conv4'",
        ),
    ],
)
def test_malformed_checkpoints_name_the_file_and_the_problem(tmp_path: Path, content: dict, message: str) -> None:
    path = tmp_path / "bad.pt"
    torch.save(content, path)
    with pytest.raises(EvaluationError, match=message) as error:
        load_backbone_from_checkpoint(path, "cpu")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_not_a_torch_file_raises_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(EvaluationError, match="cannot be read") as error:
        load_backbone_from_checkpoint(path, "cpu")
    assert "\n" not in str(error.value)


class _FakeSplit:
    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.labels = np.repeat(np.arange(6), 4)
        self.images = rng.integers(0, 256, size=(24, 97, 97, 3), dtype=np.uint8)
        self.images[:, :, :, 0] = (self.labels * 40)[:, None, None]  # a class-coloured red channel
        self.class_names = [f"class{c}" for c in range(6)]
        self.image_size = 84
        self.stored_size = 97


def test_evaluate_command_prints_the_table_and_writes_json(tmp_path: Path, monkeypatch, capsys) -> None:
    calls = []

    def fake_load_split(section, split, *, allow_test=False, **kwargs):
        geometry = (section.image_size, section.crop_scale[0], section.max_stored_size)
        calls.append((section.name, split, allow_test, *geometry))
        return _FakeSplit()

    monkeypatch.setattr(data, "load_split", fake_load_split)
    checkpoint, output = tmp_path / "ckpt.pt", tmp_path / "out" / "result.json"
    trained_on = {"dataset": {"name": "glyphs", "crop_scale": [0.5, 1.0], "max_stored_size": 120}}
    _write_checkpoint(checkpoint, loss="neg-cosine", config=trained_on)
    args = _parser().parse_args(
        [
            "evaluate",
            str(checkpoint),
            "--dataset",
            "glyphs",
            "--split",
            "novel",
            "--shots",
            "1",
            "2",
            "--episodes",
            "6",
            "--queries",
            "2",
            "--seed",
            "1",
            "--json",
            str(output),
            "--device",
            "cpu",
        ]
    )
    assert args.func(args) == 0
    # novel only because it was asked for explicitly; stored as the trial stored it (its crop scale and cap)
    assert calls == [("glyphs", "novel", True, 84, 0.5, 120)]
    printed = capsys.readouterr().out
    assert "accuracy (%)" in printed and "±" in printed
    report = json.loads(output.read_text())
    assert report["head"] == {"similarity": "cosine", "scale": 5.0, "bias": False}
    assert [r["shot"] for r in report["results"]] == [1, 2]
    for row in report["results"]:
        assert row["episodes"] == 6 and len(row["episode_accuracy"]) == 6
        assert row["accuracy_pct"] == pytest.approx(100 * np.mean(row["episode_accuracy"]))
        assert all(a in {k / 10 for k in range(11)} for a in row["episode_accuracy"])  # 5 ways · 2 queries
