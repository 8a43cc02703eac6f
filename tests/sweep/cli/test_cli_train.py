"""`negmargin train`: run directory layout, TensorBoard events with HParams, checkpoints, refusal and resume."""

import argparse
import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sweep.cli import train as train_cli
from sweep.errors import TrialConfigError
from sweep.schema.trial_config import TrialConfig
from sweep.trial import run_dir

from helpers.trials import tiny_config, write_tiny_imagefolder


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="negmargin")
    train_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    root = write_tiny_imagefolder(tmp_path_factory.mktemp("tiny"))
    path = tmp_path_factory.mktemp("config") / "trial.yaml"
    path.write_text(yaml.safe_dump(tiny_config(root, tmp_path_factory.mktemp("cache"))))
    return path


@pytest.fixture(scope="module")
def finished_run(config_file, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs") / "run"
    args = parse(["train", str(config_file), "--out", str(out), "--no-progress"])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert args.func(args) == 0
    return out, printed.getvalue()


def test_run_directory_holds_config_checkpoints_and_summary(finished_run, config_file):
    out, printed = finished_run
    assert f"tensorboard --logdir {out}" in printed
    assert TrialConfig.from_yaml(out / "config.yaml") == TrialConfig.from_yaml(config_file)  # the config, as run
    for name in ("epoch_0001", "epoch_0002", "best"):
        assert (out / "checkpoints" / name / "checkpoint.pt").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_metrics"]["epoch"] == 2
    per_epoch = [torch.load(out / "checkpoints" / f"epoch_000{e}" / "checkpoint.pt", weights_only=True) for e in (1, 2)]
    best_epoch = max(per_epoch, key=lambda c: c["metrics"]["val_acc_1shot"])  # ties keep the first
    best = torch.load(out / "checkpoints" / "best" / "checkpoint.pt", weights_only=True)
    assert best["epoch"] == best_epoch["epoch"] == summary["best_metrics"]["epoch"]
    assert summary["final_metrics"] == per_epoch[1]["metrics"]


def test_tensorboard_events_have_scalars_per_epoch_and_hparams(finished_run):
    out, _ = finished_run
    events = EventAccumulator(str(out))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    expected = {
        "train/train_loss",
        "train/train_acc",
        "train/lr",
        "train/images_per_s",
        "val/acc_1shot",
        "val/ci_1shot",
        "val/acc_5shot",
        "val/ci_5shot",
        "final/val_acc_1shot",
    }
    assert expected <= scalars
    assert [e.step for e in events.Scalars("train/train_loss")] == [1, 2]
    assert [e.step for e in events.Scalars("val/acc_1shot")] == [1, 2]
    hparams = events.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(hparams)
    assert b"margin" in hparams["_hparams_/session_start_info"]
    assert b"final/val_acc_5shot" in hparams["_hparams_/experiment"]


def test_a_non_empty_out_dir_is_refused(config_file, tmp_path):
    (tmp_path / "someone-else.txt").write_text("keep me")
    args = parse(["train", str(config_file), "--out", str(tmp_path), "--no-progress"])
    with pytest.raises(TrialConfigError, match=r"--out .*not empty"):
        args.func(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["someone-else.txt"]


def test_resume_continues_from_the_last_checkpoint(finished_run, config_file, tmp_path):
    out, _ = finished_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "checkpoints" / "epoch_0002")
    (copy / "summary.json").unlink()
    args = parse(["train", str(config_file), "--out", str(copy), "--resume", "--no-progress"])
    assert args.func(args) == 0
    resumed = json.loads((copy / "summary.json").read_text())["final_metrics"]
    original = json.loads((out / "summary.json").read_text())["final_metrics"]
    assert {k: v for k, v in resumed.items() if k != "images_per_s"} == {
        k: v for k, v in original.items() if k != "images_per_s"
    }
    with pytest.raises(TrialConfigError, match="no checkpoints"):
        args = parse(["train", str(config_file), "--out", str(tmp_path / "empty"), "--resume"])
        args.func(args)


def test_default_out_dirs_are_unique_and_named_after_the_run(config_file):
    config = TrialConfig.from_yaml(config_file)
    first, second = (run_dir.default_out_dir(config) for _ in range(2))
    assert first != second
    assert re.fullmatch(r"\d{8}-\d{6}-conv4-neg-cosine-[0-9a-f]{6}", first.name) and first.parent == Path("runs")


def test_a_diverging_run_exits_1_with_one_line(config_file, tmp_path, capsys):
    diverging = tmp_path / "diverging.yaml"
    settings = yaml.safe_load(config_file.read_text())
    diverging.write_text(yaml.safe_dump({**settings, "lr": 1e30, "epochs": 1, "warmup_epochs": 0}))
    out = tmp_path / "run"
    args = parse(["train", str(diverging), "--out", str(out), "--no-progress"])
    assert args.func(args) == 1
    assert "non-finite loss at epoch 1" in capsys.readouterr().err
    assert "epoch 1" in (out / "diverged.txt").read_text()
    assert not (out / "checkpoints").exists() and not (out / "summary.json").exists()
