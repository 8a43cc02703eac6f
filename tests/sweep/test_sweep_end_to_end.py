"""A tiny sweep on a real local Ray cluster (CPU): trials, ASHA, Optuna, promotion, report, TensorBoard, resume."""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
import yaml

import data
from sweep import experiment as experiments
from sweep import promote, seeds, selections
from sweep import spec as spec_module
from sweep.cli import main
from sweep.results import load_trials
from sweep.trial.checkpoints import CHECKPOINT_FILE, checkpoint_file

TINY_SPEC = {
    "name": "tiny",
    "dataset": {"name": "glyphs", "root": None, "cache_dir": None, "image_size": 16},
    "backbone": "conv4",
    "loss": "neg-cosine",
    "search": {
        "margin": {"uniform": [-0.4, 0.2]},
        "scale": {"loguniform": [5.0, 20.0]},
        "weight_decay": {"fixed": 5.0e-4},
        "drop_rate": {"fixed": 0.0},
        "dropblock_size": {"fixed": 1},
    },
    "points_to_evaluate": [{"margin": -0.1, "scale": 8.0}],
    "epochs": 3,
    "val_every": 1,
    "warmup_epochs": 0,
    "batch_size": 256,
    "lr": 3.0e-3,
    "dropblock_ramp_iters": 10,
    "validation": {"episodes": 10, "shots": [1, 5], "queries": 5, "finetune_epochs": 5},
    "scheduler": {"grace_period": 1, "reduction_factor": 2},
    "num_samples": 6,
    "max_concurrent": 2,
    "resources": {"cpu": 1, "gpu": 0},
    "objective": "val_acc_mean",
    "seed": 3,
    "promotion": {"top_k": 2, "test_episodes": 30, "shots": [1, 5], "queries": 5, "finetune_epochs": 5},
    "device": "cpu",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, glyph_cache):
    root = tmp_path_factory.mktemp("sweep")
    cache = root / "cache"  # this module's decoded images; the glyph set itself is the suite's (glyph_cache)
    dataset = dict(TINY_SPEC["dataset"], root=str(glyph_cache), cache_dir=str(cache))
    spec = dict(TINY_SPEC, dataset=dataset, storage_path=str(root / "experiments"))
    spec_file = root / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    return root, spec_file, cache


def _novel_cache_files(cache: Path) -> list[Path]:
    """Decoded-image caches of the test split (each cache folder's meta.json names its split)."""
    return [meta for meta in cache.glob("*/meta.json") if json.loads(meta.read_text())["split"] == "novel"]


@pytest.fixture(scope="module")
def finished(workspace, monkeypatch_module):
    root, spec_file, cache = workspace
    selections_file = root / "selections.yaml"
    assert main(["sweep", "run", str(spec_file), "--no-promote"]) == 0
    experiment = experiments.latest(root / "experiments")
    novel_before = _novel_cache_files(cache)
    assert main(["sweep", "promote", str(experiment.root), "--selections", str(selections_file)]) == 0
    return experiment, selections_file, novel_before


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def test_all_trials_finish_and_asha_stops_some_early(finished):
    experiment, _, _ = finished
    records = load_trials(experiment)
    assert len(records) == 6
    assert all(record.status == "TERMINATED" for record in records)
    assert any(record.stop_reason == "stopped early (ASHA)" for record in records)
    assert any(record.stop_reason == "completed" and record.epochs_run == 3 for record in records)
    for record in records:
        assert 0 <= record.best["val_acc_1shot"] <= 100 and 0 <= record.best["val_acc_5shot"] <= 100
        assert record.best["val_acc_mean"] == pytest.approx(
            (record.best["val_acc_1shot"] + record.best["val_acc_5shot"]) / 2
        )


def test_optuna_study_holds_every_trial_and_tried_the_given_point_first(finished):
    experiment, _, _ = finished
    study = optuna.load_study(study_name="sweep", storage=experiment.optuna_url)
    assert len(study.trials) == 6
    assert study.trials[0].params == {"margin": -0.1, "scale": 8.0}  # the spec's points_to_evaluate, tried first
    assert len({trial.params["margin"] for trial in study.trials}) == 6


def test_validation_and_test_episode_sets_are_saved_and_reused(finished):
    experiment, _, _ = finished
    for shot in (1, 5):
        val = data.EpisodeSet.load(experiment.val_episodes(shot))
        assert val.indices.shape == (10, 5, shot + 5)
        test = data.EpisodeSet.load(experiment.test_episodes(shot))
        assert test.indices.shape == (30, 5, shot + 5)


def test_the_test_split_is_read_only_by_promotion(finished, workspace):
    _, _, novel_before = finished
    _, _, cache = workspace
    assert novel_before == []
    assert _novel_cache_files(cache)  # promotion decoded it
    with pytest.raises(data.DataError):
        data.load_split("glyphs", None, "novel", 16, str(cache))


def test_promotion_results_carry_cis_and_paired_comparisons(finished):
    experiment, _, _ = finished
    promotion = experiment.promotion()
    assert [trial["rank"] for trial in promotion["trials"]] == [1, 2]
    for trial in promotion["trials"]:
        for shot in ("1", "5"):
            test = trial["test"][shot]
            assert test["episodes"] == 30 and 0 <= test["mean"] <= 100 and test["ci95"] > 0
        saved = torch.load(experiment.promotion_dir / f"{trial['trial_id']}_accuracies.pt", weights_only=True)
        assert saved[1].shape == (30,)
        assert float(saved[1].double().mean() * 100) == pytest.approx(trial["test"]["1"]["mean"])
    assert {c["shot"] for c in promotion["comparisons"]} == {1, 5}
    for comparison in promotion["comparisons"]:
        assert 0 <= comparison["t_pvalue"] <= 1


def test_report_and_selections(finished, capsys):
    experiment, selections_file, _ = finished
    capsys.readouterr()
    assert main(["sweep", "report", str(experiment.root), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["trials"]) == 6 and len(report["promoted"]) == 2
    best = report["trials"][0]
    assert best["objective"] == max(row["objective"] for row in report["trials"])
    entries = selections.read(selections_file)
    assert sorted(entry["shot"] for entry in entries) == [1, 5]
    assert all(entry["dataset"] == "glyphs" and entry["backbone"] == "conv4" for entry in entries)
    promoted_ids = {row["trial"] for row in report["promoted"]}
    assert all(entry["trial_id"] in promoted_ids for entry in entries)
    assert (
        main(["sweep", "select", "--dataset", "glyphs", "--backbone", "conv4", "--selections", str(selections_file)])
        == 0
    )
    assert "1-shot" in capsys.readouterr().out


def test_tensorboard_holds_curves_hparams_and_margin_figure(finished):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    experiment, _, _ = finished
    runs = sorted(experiment.tensorboard_dir.glob("trial_*"))
    assert len(runs) == 6
    accumulator = EventAccumulator(str(runs[0]), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    assert {"trial/val_acc_1shot", "trial/val_acc_5shot", "trial/train_loss"} <= set(tags["scalars"])
    assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(
        accumulator.PluginTagToContent("hparams")
    )
    summary = EventAccumulator(str(experiment.tensorboard_dir / "summary"))
    summary.Reload()
    assert "sweep/accuracy_vs_margin" in summary.Tags()["images"]
    assert (experiment.root / "accuracy_vs_margin.png").stat().st_size > 1000


def test_driver_killed_mid_sweep_resumes_without_rerunning_finished_trials(workspace, tmp_path):
    root, spec_file, _ = workspace
    storage = tmp_path / "interrupted"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "sweep", "run", str(spec_file), "--storage", str(storage), "--no-promote"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 400
        finished_trial = None
        while time.time() < deadline and finished_trial is None:
            time.sleep(2)
            for result in storage.glob("*/tune/trial_*/result.json"):
                rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
                if rows and rows[-1].get("epoch") == 3:
                    finished_trial = result
                    break
        assert finished_trial is not None, "no trial finished before the deadline"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    rows_before = finished_trial.read_text()
    experiment = experiments.latest(storage)
    assert main(["sweep", "resume", str(experiment.root), "--no-promote"]) == 0
    records = load_trials(experiment)
    assert len(records) == 6 and all(record.status == "TERMINATED" for record in records)
    assert finished_trial.read_text() == rows_before  # the finished trial was not re-run


def test_promotion_retrains_with_extra_seeds_and_reports_across_seeds(finished, tmp_path):
    experiment, _, _ = finished
    spec = yaml.safe_load(experiment.spec_file.read_text())
    original = experiment.spec_file.read_text()
    spec["promotion"].update(top_k=1, extra_seeds=1)
    experiment.spec_file.write_text(yaml.safe_dump(spec))
    try:
        promotion = promote.run(experiment, selections_path=tmp_path / "selections.yaml")
    finally:
        experiment.spec_file.write_text(original)
    (trial,) = promotion["trials"]
    for shot in ("1", "5"):
        seeds = trial["seeds"][shot]
        assert seeds["n"] == 2 and seeds["runs"][0] == trial["test"][shot]["mean"]
        assert seeds["mean"] == pytest.approx(statistics.fmean(seeds["runs"]))
        assert seeds["std"] == pytest.approx(statistics.stdev(seeds["runs"]))
    assert trial["seeds_failed"] == []
    # another training seed: another network. Compared by weights, not by test means: the tiny sweep's networks score
    # near chance, where two of them can tie on a shot's mean (750 queries: it happened).
    retrained = sorted((experiment.root / "seeds").rglob(CHECKPOINT_FILE))
    original = torch.load(checkpoint_file(trial["checkpoint"]), weights_only=True)["backbone_state"]
    assert retrained
    for path in retrained:
        weights = torch.load(path, weights_only=True)["backbone_state"]
        assert any(not torch.equal(value, weights[key]) for key, value in original.items())


def test_a_diverging_extra_seed_is_reported_as_diverged_not_dropped(workspace, tmp_path):
    """Retraining with the sweep's own trainable: a run whose loss diverges is not retried and is listed."""
    _, spec_file, _ = workspace
    data_spec = yaml.safe_load(spec_file.read_text())
    data_spec.update(lr=1e30, epochs=1, storage_path=str(tmp_path))
    data_spec["scheduler"]["grace_period"] = 1
    data_spec["promotion"]["extra_seeds"] = 1
    spec = spec_module.parse(data_spec)
    experiment = experiments.create(spec)
    params = {"margin": -0.1, "scale": 8.0, "weight_decay": 5e-4, "drop_rate": 0.0, "dropblock_size": 1}
    runs = seeds.retrain(spec, experiment, [{"trial_id": "t1", "params": params}])
    assert len(runs) == 1 and runs[0].checkpoint is None and runs[0].seed == spec.seed + 1
    assert runs[0].failure.startswith("diverged: training diverged: non-finite loss at epoch 1")
    promotion = {"trials": [{"trial_id": "t1", "test": {"1": {"mean": 40.0}}}]}
    seeds.add_seed_results(promotion, runs, score=lambda checkpoint: pytest.fail("a diverged run has no checkpoint"))
    (trial,) = promotion["trials"]
    assert trial["seeds"]["1"]["n"] == 1 and trial["seeds"]["1"]["runs"] == [40.0]
    assert trial["seeds_failed"] == [{"seed": spec.seed + 1, "reason": runs[0].failure}]
