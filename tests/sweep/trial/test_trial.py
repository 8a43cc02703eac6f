"""sweep.trial: a 2-epoch CPU trial reports every metric, resumes exactly, stops on divergence; config validation."""

import dataclasses
import math
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from data import DataError
from evaluation.checkpoint import Checkpoint, ModelSpec
from evaluation.errors import EvaluationError
from sweep import trial
from sweep.errors import DivergenceError, TrialConfigError
from sweep.schema.trial_config import TrialConfig
from sweep.trial.runner import check_finite_state
from sweep.trial.training import WARMUP_START_FACTOR, WarmupCosine

from helpers.trials import BASE_CLASSES, tiny_config, write_tiny_imagefolder


class ListReporter:
    """Keeps every report; each checkpoint goes through Checkpoint.save / Checkpoint.load as on disk."""

    def __init__(self) -> None:
        self.metrics: list[dict] = []
        self.checkpoints: list[Checkpoint] = []
        self.epochs: list[dict] = []

    def epoch_end(self, metrics: dict) -> None:
        self.epochs.append(metrics)

    def report(self, metrics: dict, checkpoint: Checkpoint) -> None:
        with tempfile.TemporaryDirectory() as folder:
            self.metrics.append(metrics)
            self.checkpoints.append(Checkpoint.load(checkpoint.save(Path(folder) / "checkpoint.pt")))


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> tuple[Path, Path]:
    root = write_tiny_imagefolder(tmp_path_factory.mktemp("tiny"))
    return root, tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def two_epoch_run(dataset_root, tmp_path_factory):
    root, cache = dataset_root
    episodes_dir = tmp_path_factory.mktemp("episodes")
    config = TrialConfig.from_dict(tiny_config(root, cache), {"validation.episodes_dir": str(episodes_dir)})
    reporter = ListReporter()
    final = trial.run(config, reporter)
    return config, reporter, final


def test_two_epoch_run_reports_every_metric_at_each_validation_epoch(two_epoch_run):
    config, reporter, final = two_epoch_run
    expected_keys = {
        "epoch",
        "train_loss",
        "train_acc",
        "lr",
        "images_per_s",
        "val_acc_1shot",
        "val_ci_1shot",
        "val_acc_5shot",
        "val_ci_5shot",
    }
    assert set(trial.metric_names(config)) == expected_keys
    assert [m["epoch"] for m in reporter.metrics] == [1, 2]
    assert [m["epoch"] for m in reporter.epochs] == [1, 2]
    for metrics in reporter.metrics:
        assert set(metrics) == expected_keys
        assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
        assert 0 <= metrics["train_acc"] <= 100 and metrics["images_per_s"] > 0
        # chance is 20 %; the classes differ by colour and stripes, so features separate them after one epoch
        # (measured: 53-54 % 1-shot, 84-88 % 5-shot on these 10 episodes of 25 queries)
        assert 35 < metrics["val_acc_1shot"] <= 100 and 60 < metrics["val_acc_5shot"] <= 100
        for shot in (1, 5):
            assert 0 < metrics[f"val_ci_{shot}shot"] < 20
    assert final == reporter.metrics[-1]
    # lr of each epoch's last step (3 iterations per epoch, warm-up over the first epoch, then cosine to 1e-6)
    schedule = WarmupCosine(warmup_iters=3, total_iters=6, base_lr=config.lr)
    warmup_factor = WARMUP_START_FACTOR + (1 - WARMUP_START_FACTOR) * 2 / 3
    assert reporter.metrics[0]["lr"] == pytest.approx(config.lr * warmup_factor)
    assert reporter.metrics[1]["lr"] == pytest.approx(config.lr * schedule(5))
    assert schedule(6) * config.lr == pytest.approx(1e-6)
    # the fixed validation episode sets were saved for the next trials
    episodes_dir = Path(config.validation.episodes_dir)
    assert sorted(p.name for p in episodes_dir.iterdir()) == ["val_1shot.pt", "val_5shot.pt"]


def test_checkpoint_format_loads_with_weights_only(two_epoch_run, tmp_path):
    config, reporter, _ = two_epoch_run
    path = reporter.checkpoints[-1].save(tmp_path / "checkpoint.pt")
    on_disk = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert set(on_disk) == {
        "model_spec",
        "backbone_state",
        "head_state",
        "optimizer_state",
        "scheduler_state",
        "epoch",
        "iteration",
        "rng_state",
        "metrics",
        "config",
    }
    loaded = Checkpoint.load(tmp_path)  # a checkpoint directory is read through its checkpoint.pt
    assert loaded.model == ModelSpec(
        backbone="conv4",
        backbone_kwargs={
            "drop_rate": 0.2,
            "dropblock_size": 2,
            "dropblock_ramp_iters": 2,
            "dropblock_mask": "exact",
        },
        loss="neg-cosine",
        image_size=32,
        num_classes=BASE_CLASSES,
        scale=10.0,
        margin=-0.1,
    )
    assert loaded.training is not None
    assert loaded.epoch == 2 and loaded.training.iteration == 6
    assert loaded.metrics == reporter.metrics[-1]
    assert TrialConfig.model_validate(loaded.config) == config
    assert loaded.dataset == config.dataset.model_dump()
    assert loaded.training.head_state["weight"].shape == (BASE_CLASSES, 64 * 2 * 2)
    assert {"shuffle", "augment", "torch_cpu"} <= set(loaded.training.rng_state)


def test_a_checkpoint_without_training_state_cannot_be_resumed(two_epoch_run):
    config, reporter, _ = two_epoch_run
    weights_only = dataclasses.replace(reporter.checkpoints[0], training=None)
    with pytest.raises(TrialConfigError, match="no training state"):
        trial.run(config, ListReporter(), checkpoint=weights_only)


def test_resume_from_a_reported_checkpoint_continues_exactly(two_epoch_run):
    config, reporter, _ = two_epoch_run
    resumed = ListReporter()
    final = trial.run(config, resumed, checkpoint=reporter.checkpoints[0])
    assert [m["epoch"] for m in resumed.metrics] == [2]
    timing_free = [k for k in reporter.metrics[1] if k != "images_per_s"]
    assert {k: final[k] for k in timing_free} == {k: reporter.metrics[1][k] for k in timing_free}
    first, second = resumed.checkpoints[0], reporter.checkpoints[1]
    assert first.training is not None and second.training is not None
    for states in (
        (first.backbone_state, second.backbone_state),
        (first.training.head_state, second.training.head_state),
    ):
        for name, tensor in states[1].items():
            assert torch.equal(states[0][name], tensor), name
    assert torch.equal(first.training.rng_state["shuffle"], second.training.rng_state["shuffle"])


def test_a_finished_checkpoint_runs_nothing_and_returns_its_metrics(two_epoch_run):
    config, reporter, _ = two_epoch_run
    again = ListReporter()
    assert trial.run(config, again, checkpoint=reporter.checkpoints[-1]) == reporter.metrics[-1]
    assert again.metrics == []


def test_resume_with_another_config_is_refused(two_epoch_run):
    config, reporter, _ = two_epoch_run
    other = TrialConfig.from_dict(config.model_dump(), {"margin": -0.2})
    with pytest.raises(TrialConfigError, match="margin"):
        trial.run(other, ListReporter(), checkpoint=reporter.checkpoints[0])


def test_saved_episode_sets_must_match_the_config(two_epoch_run):
    config, _, _ = two_epoch_run
    other = TrialConfig.from_dict(config.model_dump(), {"validation.queries": 4})
    with pytest.raises(DataError, match=r"val_1shot.pt: episode set has .* = \(5, 1, 5, 10\), \(5, 1, 4, 10\) were"):
        trial.run(other, ListReporter())


def test_a_diverging_run_raises_and_reports_nothing(dataset_root):
    root, cache = dataset_root
    config = TrialConfig.from_dict(tiny_config(root, cache), {"lr": 1e30, "epochs": 1, "warmup_epochs": 0})
    reporter = ListReporter()
    with pytest.raises(DivergenceError, match=r"epoch 1, iteration [1-3]\b"):
        trial.run(config, reporter)
    assert reporter.metrics == [] and reporter.epochs == []


BASE = {"dataset": {"name": "glyphs"}, "backbone": "conv4", "loss": "neg-cosine"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochz": 3}, "^trial config: epochz: unknown key$"),
        ({"validation.shot": 1}, "validation.shot: unknown key"),
        ({"loss": "arcface"}, "loss: "),
        ({"margin": 0.1}, "margin: .*needs margin <= 0"),
        ({"loss": "softmax", "margin": -0.1}, "margin: .*takes no margin"),
        ({"device": "tpu"}, "device: device must be"),
        ({"device": "cuda:first"}, "device: "),
        ({"backbone": "vgg16"}, "backbone: unknown backbone"),
        ({"warmup_epochs": 500, "epochs": 10}, "warmup_epochs: 500 exceeds epochs \\(10\\)"),
        ({"validation.shots": [1, 1]}, "validation.shots: "),
        ({"lr": float("nan")}, "lr: "),
        ({"dataset": None}, "dataset: "),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(TrialConfigError, match=message) as error:
        TrialConfig.from_dict(BASE, overrides)
    assert "\n" not in str(error.value)


def test_config_from_yaml_with_published_defaults_and_dotted_overrides(tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump({**BASE, "backbone": "resnet12", "loss": "neg-softmax", "margin": -0.1}))
    config = TrialConfig.from_yaml(path, {"validation.episodes": 20})
    assert config.scale == 10.0  # published β of neg-softmax on ResNet-12
    assert config.validation.episodes == 20 and config.validation.shots == [1, 5] and config.validation.way == 5
    assert (config.lr, config.batch_size, config.epochs, config.warmup_epochs) == (3e-3, 256, 400, 100)
    assert TrialConfig.from_dict(config.model_dump()) == config
    path.write_text("dataset: [unclosed")
    with pytest.raises(TrialConfigError, match="trial.yaml: line 1 is not valid YAML"):
        TrialConfig.from_yaml(path)
    with pytest.raises(TrialConfigError, match="missing.yaml: no such trial config"):
        TrialConfig.from_yaml(tmp_path / "missing.yaml")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_a_gpu_is_a_config_error(dataset_root):
    root, cache = dataset_root
    config = TrialConfig.from_dict(tiny_config(root, cache), {"device": "cuda"})
    with pytest.raises(EvaluationError, match="device: .*no CUDA device"):
        trial.run(config, ListReporter())


def test_non_finite_weights_count_as_divergence():
    backbone, head = torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)
    check_finite_state(backbone, head, epoch=1, iteration=3)
    with torch.no_grad():
        head.weight[0, 0] = float("inf")
    with pytest.raises(DivergenceError, match="non-finite weights after epoch 1, iteration 3"):
        check_finite_state(backbone, head, epoch=1, iteration=3)
