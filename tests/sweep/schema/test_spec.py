"""Sweep spec validation: every preset parses, and each mistake is one line naming the key."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweep.errors import SpecError
from sweep.schema import spec as spec_module
from sweep.schema.first_points import first_points
from sweep.schema.published import STARTING_POINTS
from sweep.schema.trial_config import TrialConfig, TrialSettings
from sweep.storage.experiment import Experiment
from sweep.tuning.space import optuna_space, trial_config

from helpers.specs import full_search_spec, full_search_spec_data

REPO = Path(__file__).resolve().parents[3]


def _default() -> dict:
    return full_search_spec_data()


def test_every_preset_parses_with_the_published_budget_and_choices():
    names = spec_module.list_presets()
    assert "default" in names and len(names) == 1 + len(STARTING_POINTS)
    for name in names:
        spec = spec_module.load(spec_module.preset_path(name))
        if name == "default":
            assert (spec.selection, spec.dropblock_mask) == (spec.objective, "exact")
            continue
        assert spec.epochs in (200, 400) and spec.promotion.test_episodes == 600
        assert 5 in spec.validation.shots and spec.selection == "val_acc_5shot"  # as the published code (D10)
        assert spec.dropblock_mask == "published"  # D9
        assert spec.objective in ("val_acc_1shot", "val_acc_5shot")


def test_default_preset_is_the_cpu_margin_sweep_on_glyphs_mini():
    spec = spec_module.load(spec_module.resolve(None))
    assert (spec.dataset.name, spec.backbone, spec.loss) == ("glyphs-mini", "conv4", "neg-cosine")
    assert spec.search["margin"].bounds() == (-0.5, 0.2) and set(spec.searched()) == {"margin"}
    # the one ASHA rung lies after epoch 20, where the margins' ranking settles on glyphs-mini (benchmarks/RESULTS.md),
    # and a trial's best checkpoint is chosen from there on, on 600 validation episodes
    assert 20 < spec.scheduler.grace_period < spec.epochs == 48 and spec.scheduler.grace_period % spec.val_every == 0
    assert spec.selection_from_epoch == spec.scheduler.grace_period and spec.validation.episodes == 600
    assert spec.resources.gpu == 0


@pytest.mark.parametrize(
    "edit, key_in_message",
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d["search"].update(margin={"uniform": [0.1, -0.1]}), "search.margin"),
        (lambda d: d["search"].update(margin={"uniform": [-0.1, 0.1], "fixed": 0}), "search.margin"),
        (lambda d: d["search"]["scale"].update(extra=1), "search.scale.extra: unknown key"),
        (lambda d: d.update(backbone="vgg"), "backbone: unknown backbone 'vgg'"),
        (lambda d: d.update(loss="arcface"), "loss: unknown loss"),
        (lambda d: d["validation"].update(shots=[5]), "objective"),
        (lambda d: d["scheduler"].update(grace_period=99), "scheduler.grace_period: 99 exceeds epochs 6"),
        (lambda d: d.pop("search"), "search: required key is missing"),
        (lambda d: d["validation"].update(episodes_dir="/tmp/x"), "validation.episodes_dir: set by the experiment"),
        (lambda d: d["dataset"].update(cache="/tmp/c"), "dataset.cache: unknown key"),
        (lambda d: d.update(precision="fp16"), "precision"),
        (lambda d: d.update(device="tpu"), "device"),
        (lambda d: d["resources"].update(gpu=1.5), "resources.gpu"),
        (lambda d: d.update(loss="neg-softmax"), "search.margin: neg-softmax takes m <= 0"),
        (lambda d: d.update(points_to_evaluate=[{"margin": 0.9}]), "points_to_evaluate[0].margin"),
        (lambda d: d.update(selection_metric="val_acc_2shot"), "selection_metric"),
        (
            lambda d: d.update(objective="val_acc_1shot", selection_metric="val_acc_5shot", validation={"shots": [1]}),
            "selection_metric: val_acc_5shot needs validation shots [5], validation has [1]",
        ),
        (lambda d: d.update(dropblock_mask="approximate"), "dropblock_mask"),
        (
            lambda d: d.update(storage_path="gs://bucket/experiments"),
            "storage_path: 'gs://bucket/experiments' is a URI",
        ),
    ],
)
def test_spec_errors_name_the_key(edit, key_in_message):
    data = _default()
    edit(data)
    with pytest.raises(SpecError) as error:
        spec_module.parse(data, source="s.yaml")
    message = str(error.value)
    assert key_in_message in message
    assert "\n" not in message


def test_spec_round_trips_through_yaml():
    spec = spec_module.load(spec_module.resolve(None))
    assert spec_module.parse(yaml.safe_load(spec.to_yaml())) == spec


def test_space_and_trial_config_follow_the_spec(tmp_path):
    spec = full_search_spec()
    space = optuna_space(spec)
    assert space["weight_decay"].log and space["dropblock_size"].low == 1
    params = {"margin": 0.2, "scale": 12.0, "weight_decay": 1e-4, "drop_rate": 0.1, "dropblock_size": 2}
    config = trial_config(spec, params, Experiment(tmp_path).episodes_dir)
    assert config["loss"] == "cosine"  # a positive margin in a neg-cosine sweep trains the CosFace-style head
    assert config["margin"] == 0.2 and config["dropblock_size"] == 2
    assert config["validation"]["episodes_dir"] == str(tmp_path / "episodes")
    assert trial_config(spec, {**params, "margin": -0.1}, Experiment(tmp_path).episodes_dir)["loss"] == "neg-cosine"
    assert TrialConfig.from_dict(config).margin == 0.2


def test_every_trial_setting_is_a_sweep_key_and_reaches_the_trial(tmp_path):
    """The spec embeds the trial's own settings: each one, set in a spec, is what the trial config receives."""
    data = _default()
    data.update(
        precision="fp32",
        warmup_epochs=2,
        dropblock_ramp_iters=77,
        dropblock_mask="published",
        selection_metric="val_acc_5shot",
    )
    data["dataset"]["cache_dir"] = "/tmp/glyph-cache"
    data["validation"].update(way=4, seed=9)
    spec = spec_module.parse(data)
    params = {"margin": -0.2, "scale": 12.0, "weight_decay": 1e-4, "drop_rate": 0.1, "dropblock_size": 2}
    config = TrialConfig.from_dict(trial_config(spec, params, Experiment(tmp_path).episodes_dir))
    assert set(TrialSettings.model_fields) <= set(type(spec).model_fields)
    for key in TrialSettings.model_fields:
        if key != "validation":
            assert getattr(config, key) == getattr(spec, key), key
    assert config.validation.model_dump(exclude={"episodes_dir"}) == spec.validation.model_dump(
        exclude={"episodes_dir"}
    )
    assert (config.precision, config.dataset.cache_dir, config.validation.way) == ("fp32", "/tmp/glyph-cache", 4)
    assert config.backbone_kwargs["dropblock_mask"] == "published" and config.selection == "val_acc_5shot"


def test_cli_bad_spec_exits_2_with_one_line_and_starts_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    data = _default()
    data["search"]["margin"] = {"uniform": [0.3, -0.5]}
    bad.write_text(yaml.safe_dump(data))
    storage = tmp_path / "storage"
    result = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "sweep", "run", str(bad), "--storage", str(storage)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "search.margin" in lines[0] and lines[0].startswith("negmargin: error:")
    assert not storage.exists()


def test_cli_missing_spec_file_and_bad_address_exit_2(tmp_path):
    missing = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "sweep", "run", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no such spec file" in missing.stderr
    address = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "sweep", "run", "--address", "nonsense", "--storage", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert address.returncode == 2 and "--address" in address.stderr
    assert not (tmp_path / "s").exists()
    uri = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "sweep", "run", "--storage", "s3://bucket/experiments"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert uri.returncode == 2 and uri.stderr.startswith(
        "negmargin: error: --storage: 's3://bucket/experiments' is a URI, but"
    )
    assert len(uri.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "path", ["s3://bucket/experiments", "gs://bucket/x", "abfs://container@account/x", "file:///x"]
)
def test_uris_are_refused_as_experiment_storage(path):
    with pytest.raises(SpecError) as error:
        spec_module.check_storage_path(path)
    assert str(error.value).startswith(f"storage_path: {path!r} is a URI, but") and "filesystem path" in str(
        error.value
    )


def test_an_old_dataset_alias_becomes_its_name_in_the_spec_and_the_trial():
    data = yaml.safe_load(spec_module.preset_path("resnet18-mini2cub-neg-cosine-5shot").read_text())
    data["dataset"]["name"] = "mini-imagenet->cub"
    spec = spec_module.parse(data)
    assert spec.dataset.name == "mini2cub"
    assert first_points(spec)[0]["margin"] == -0.05  # the published point of the setting, found by its name


def test_reading_a_preset_with_overrides_replaces_a_whole_search_space_and_merges_sections():
    spec = spec_module.read(
        "default", {"search.scale": {"uniform": [5.0, 20.0]}, "points_to_evaluate": [], "validation.episodes": 50}
    )
    assert spec.search["scale"].kind == "uniform" and spec.search["scale"].bounds() == (5.0, 20.0)
    assert spec.validation.episodes == 50 and spec.validation.shots == [1, 5]  # the rest of the section kept
    assert Path(spec.storage_path).is_absolute()
    with pytest.raises(SpecError, match="points_to_evaluate\\[0\\]: no value for searched parameter"):
        spec_module.read("default", {"search.scale": {"uniform": [5.0, 20.0]}})
