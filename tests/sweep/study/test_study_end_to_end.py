"""`negmargin sweep study` end to end on a real local Ray (CPU, tiny images): a sweep's selected configuration at
two margins × two seeds, scored on novel and held-out base episodes; and a study killed mid-grid that resumes
without retraining its finished margins."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats

import data
import sweep
from sweep.cli import main
from sweep.report.text import pointers
from sweep.storage import experiment as experiments
from sweep.storage.results import load_trials, ranked
from sweep.study import scoring
from sweep.study.layout import StudyDir
from sweep.study.request import StudyRequest
from sweep.workflows import promotion as promote

from helpers import tensorboard as board
from helpers.trials import BASE_CLASSES, tiny_config, write_tiny_imagefolder

BASE_PER_CLASS, HOLDOUT = 30, 0.3  # 9 held-out images per class: 5-shot base episodes with 4 queries
EPISODES, QUERIES = 20, 4
# Not data.geometry's defaults: 16 px at crop scale 0.5 is stored at 23 px, capped here at 20; the 40-px images at the
# default crop scale 0.08 would be stored at their native 40. Every reader of the cache must store 20.
GEOMETRY = {"crop_scale": [0.5, 1.0], "max_stored_size": 20}
STORED = 20


def _saved_accuracies(experiment, margin: float, seed: int, domain: str, shot: int) -> torch.Tensor:
    """Per-episode accuracies [E] in [0, 1] of one run, as its scores file under study/scores holds them."""
    saved = torch.load(StudyDir.of(experiment).scores_file(f"m={margin:g}", seed), weights_only=True)
    return saved["accuracies"][domain][shot].double()


def _seed_averaged(experiment, margin: float, seeds: list[int], domain: str, shot: int) -> np.ndarray:
    """Per-episode accuracy in points [E]: the mean over `seeds` of the saved per-episode accuracies."""
    runs = [_saved_accuracies(experiment, margin, seed, domain, shot) for seed in seeds]
    return (torch.stack(runs).mean(dim=0) * 100).numpy()


def _spec(root: Path, cache: Path, storage: Path) -> dict:
    return {
        "name": "tiny-study",
        "dataset": {
            "name": "imagefolder",
            "root": str(root),
            "cache_dir": str(cache),
            "image_size": 16,
            **GEOMETRY,
        },
        "backbone": "conv4",
        "loss": "neg-cosine",
        "search": {
            "margin": {"uniform": [-0.3, 0.1]},
            "scale": {"fixed": 10.0},
            "weight_decay": {"fixed": 5.0e-4},
            "drop_rate": {"fixed": 0.0},
            "dropblock_size": {"fixed": 1},
        },
        "epochs": 2,
        "warmup_epochs": 0,
        "val_every": 1,
        "batch_size": 32,
        "validation": {"episodes": 10, "shots": [1, 5], "queries": 5, "finetune_epochs": 3},
        "scheduler": {"grace_period": 2},
        "num_samples": 2,
        "max_concurrent": 2,
        "objective": "val_acc_mean",
        "seed": 4,
        "promotion": {"test_episodes": EPISODES, "shots": [1, 5], "queries": QUERIES, "finetune_epochs": 3},
        "storage_path": str(storage),
        "device": "cpu",
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    images = write_tiny_imagefolder(root / "images", base_per_class=BASE_PER_CLASS)
    return root, images, root / "cache"


@pytest.fixture(scope="module")
def studied(workspace):
    root, images, cache = workspace
    spec_file = root / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(_spec(images, cache, root / "experiments")))
    experiment = sweep.run_sweep(spec_file, promote=False).experiment
    argv = ["sweep", "study", str(experiment.root), "--margins", "-0.2", "--seeds", "2"]
    out = subprocess.run(
        [sys.executable, "-m", "sweep.cli", *argv, "--holdout-fraction", str(HOLDOUT)],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    study = json.loads(StudyDir.of(experiment).study_file.read_text())
    return experiment, study, out.stdout


def test_the_selected_configuration_is_trained_at_every_margin_and_seed(studied):
    experiment, study, _ = studied
    best = ranked(load_trials(experiment))[0]
    assert study["request"]["params"] == best.params and "not promoted" in study["request"]["source"]
    assert study["request"]["margins"] == [-0.2, 0.0]  # m = 0 added
    runs = study["runs"]
    assert [(run["margin"], run["seed"]) for run in runs] == [(-0.2, 4), (-0.2, 5), (0.0, 4), (0.0, 5)]
    for run in runs:
        checkpoint = torch.load(run["checkpoint"], weights_only=True)
        assert run["failure"] is None and run["epoch"] in (1, 2)
        # the epoch and validation accuracy the run reported with the checkpoint it is scored from
        assert run["epoch"] == checkpoint["epoch"] and run["val_acc_1shot"] == checkpoint["metrics"]["val_acc_1shot"]
        trained = checkpoint["config"]
        assert trained["margin"] == run["margin"] and trained["seed"] == run["seed"]
        assert {k: trained[k] for k in ("scale", "weight_decay")} == {
            k: best.params[k] for k in ("scale", "weight_decay")
        }
        assert trained["dataset"]["holdout_fraction"] == HOLDOUT  # pretrained without the held-out images
    with_scores = [
        sorted(torch.load(p, weights_only=True)["accuracies"]) for p in (experiment.root / "study").glob("scores/*.pt")
    ]
    assert with_scores == [["base", "novel"]] * 4


def test_novel_and_held_out_base_episodes_are_fixed_and_shared(studied, workspace):
    experiment, study, _ = studied
    _, images, cache = workspace
    base = data.load_split(experiment.spec().dataset, "base", progress=False)
    _, held = data.split_base(base, HOLDOUT, study["request"]["holdout_seed"])
    assert study["held_out_images"] == len(held) == BASE_CLASSES * 9
    for shot in (1, 5):
        novel = data.EpisodeSet.load(experiment.test_episodes(shot))  # the experiment's, as promotion uses
        assert novel.indices.shape == (EPISODES, 5, shot + QUERIES)
        base_set = data.EpisodeSet.load(StudyDir.of(experiment).base_episodes(shot))
        assert base_set.indices.shape == (EPISODES, 5, shot + QUERIES) and int(base_set.indices.max()) < len(held)
        base_set.check_labels(held.labels)  # drawn over the held-out part
        assert study["episodes"]["base"][str(shot)]["queries"] == QUERIES


def test_every_margin_has_accuracies_and_discriminability_consistent_with_its_scores(studied):
    experiment, study, _ = studied
    for entry in study["margins"]:
        assert entry["seeds"] == [4, 5]
        for domain in ("novel", "base"):
            separation = entry["discriminability"][domain]
            assert separation["phi"]["mean"] == pytest.approx(
                np.mean([i / j for i, j in zip(separation["inter"]["runs"], separation["intra"]["runs"])])
            )
            assert all(value > 0 for key in ("inter", "intra") for value in separation[key]["runs"])
            for shot in ("1", "5"):
                accuracy = entry["accuracy"][domain][shot]
                saved = [
                    torch.load(StudyDir.of(experiment).scores_file(f"m={entry['margin']:g}", seed), weights_only=True)
                    for seed in entry["seeds"]
                ]
                per_seed = [float(s["accuracies"][domain][int(shot)].double().mean() * 100) for s in saved]
                assert accuracy["per_seed"] == pytest.approx(per_seed)
                assert accuracy["mean"] == pytest.approx(np.mean(per_seed))
                averaged = _seed_averaged(experiment, entry["margin"], entry["seeds"], domain, int(shot))
                assert accuracy["ci95"] == pytest.approx(1.96 * averaged.std() / np.sqrt(EPISODES))  # published CI


def test_each_margin_is_compared_with_zero_on_the_same_episodes(studied):
    experiment, study, stdout = studied
    means = {e["margin"]: e["accuracy"] for e in study["margins"]}
    found = {(c["domain"], c["shot"]): c for c in study["comparisons"]}
    assert set(found) == {(d, s) for d in ("novel", "base") for s in (1, 5)}
    for (domain, shot), comparison in found.items():
        assert comparison["margin"] == -0.2 and comparison["n"] == EPISODES and comparison["seeds"] == [4, 5]
        expected = means[-0.2][domain][str(shot)]["mean"] - means[0.0][domain][str(shot)]["mean"]
        assert comparison["mean_diff"] == pytest.approx(expected)
        # recomputed with scipy from the saved scores: episode by episode, the seed-averaged accuracies
        margin, zero = (_seed_averaged(experiment, m, [4, 5], domain, shot) for m in (-0.2, 0.0))
        assert comparison["mean_diff"] == pytest.approx(float(np.mean(margin - zero)), rel=1e-9)
        assert comparison["t_pvalue"] == pytest.approx(stats.ttest_rel(margin, zero).pvalue, rel=1e-9)
        assert comparison["t_pvalue_holm"] == comparison["t_pvalue"]  # Holm over a family of one margin
        exact = np.round(margin - zero, 6)  # seed averages of whole queries: float noise is a tie (evaluation.stats)
        assert comparison["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(exact).pvalue, rel=1e-9)
        each_seed = [
            float((_saved_accuracies(experiment, -0.2, seed, domain, shot) * 100).mean())
            - float((_saved_accuracies(experiment, 0.0, seed, domain, shot) * 100).mean())
            for seed in (4, 5)
        ]
        assert comparison["per_seed_diff"] == pytest.approx(each_seed)
    assert study["answer"].startswith("imagefolder / conv4 / neg-cosine: 1-shot: ")
    assert stdout.strip().splitlines()[-1] == study["answer"]


def test_table_figures_and_tensorboard_are_written(studied):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    experiment, study, _ = studied
    paths = StudyDir.of(experiment)
    table = pd.read_csv(paths.table_file("csv"))
    assert table["margin"].tolist() == [-0.2, 0.0] and table["seeds"].tolist() == [2, 2]
    assert table["loss"].tolist() == ["neg-cosine", "neg-cosine"]
    assert table.loc[0, "novel_1shot_diff"] == pytest.approx(study["comparisons"][0]["mean_diff"])
    assert len(json.loads(paths.table_file("json").read_text())) == 2
    markdown = paths.table_file("md").read_text()
    assert study["answer"] in markdown
    novel = {e["margin"]: e["accuracy"]["novel"]["1"] for e in study["margins"]}
    rows = [
        line.split(" | ") for line in markdown.splitlines() if line.startswith("| -0.2 |") or line.startswith("| 0 |")
    ]
    assert [row[3] for row in rows] == [f"{novel[m]['mean']:.2f} ± {novel[m]['ci95']:.2f}" for m in (-0.2, 0.0)]
    first = next(c for c in study["comparisons"] if c["domain"] == "novel" and c["shot"] == 1)
    assert rows[0][4] == f"{first['mean_diff']:+.2f} ± {first['ci95']:.2f}" + (" *" if first["significant"] else "")
    for name in ("accuracy_vs_margin", "discriminability_vs_margin"):
        assert paths.figure_file(name).stat().st_size > 20_000
    figures = EventAccumulator(str(paths.tensorboard_dir / "figures"))
    figures.Reload()
    assert set(figures.Tags()["images"]) == {"study/accuracy_vs_margin", "study/discriminability_vs_margin"}
    for margin in ("m=-0.2", "m=0"):
        run = EventAccumulator(str(paths.tensorboard_dir / margin))
        run.Reload()
        assert "_hparams_/session_start_info" in run.PluginTagToContent("hparams")


def test_a_study_killed_mid_grid_resumes_without_retraining_finished_margins(workspace, tmp_path):
    """A trial config studied (--config), driver killed once one margin finished; a rerun finishes the others."""
    _, images, cache = workspace
    geometry = {f"dataset.{key}": value for key, value in GEOMETRY.items()}  # the sweep's cache folders, read again
    config = tiny_config(images, cache, epochs=2, val_every=1, **{"dataset.image_size": 16, **geometry})
    config_file = tmp_path / "trial.yaml"
    config_file.write_text(yaml.safe_dump(config))
    storage = tmp_path / "experiments"
    argv = ["sweep", "study", "--config", str(config_file), "--storage", str(storage), "--margins", "-0.2", "-0.1"]
    assert main(argv) == 2  # 16 queries (promotion's default) do not fit 10 novel images per class: refused at once
    assert not storage.exists()
    argv += ["--test-episodes", str(EPISODES), "--queries", str(QUERIES)]
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", *argv, "--holdout-fraction", str(HOLDOUT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        start_new_session=True,
    )
    finished = None
    try:
        deadline = time.time() + 400
        while time.time() < deadline and finished is None:
            time.sleep(1)
            for result in storage.glob("*/study/tune/*/result.json"):
                rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
                if rows and rows[-1].get("epoch") == 2:
                    finished = result
                    break
        assert finished is not None, "no margin finished before the deadline"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    rows_before = finished.read_text()
    assert not StudyDir.of(experiments.latest(storage)).study_file.exists()
    experiment = experiments.latest(storage)
    assert main(["sweep", "study", str(experiment.root)]) == 0  # no options: resume the saved study
    assert finished.read_text() == rows_before  # the finished margin was not trained again
    study = json.loads(StudyDir.of(experiment).study_file.read_text())
    assert study["request"]["margins"] == [-0.2, -0.1, 0.0] and study["request"]["source"].startswith("config ")
    assert [run["margin"] for run in study["runs"]] == [-0.2, -0.1, 0.0]
    assert all(run["failure"] is None and run["checkpoint"] for run in study["runs"])
    results = sorted((experiment.root / "study" / "tune").glob("*/result.json"))
    assert len(results) == 3
    assert all(json.loads(r.read_text().splitlines()[-1])["epoch"] == 2 for r in results)


def test_sweep_promotion_and_study_read_one_cache_folder_per_split_geometry(studied, workspace):
    """The up-front decode, the trials, promotion and the study (held-out base and novel) all read the spec's
    geometry: one cache folder per split, each at the stored side the spec's crop scale and cap give; the study
    scores the base images its runs were trained without."""
    experiment, study, _ = studied
    _, _, cache = workspace
    promote.run(experiment)
    folders = sorted(entry.name for entry in cache.iterdir() if entry.is_dir())
    assert len(folders) == 3 and all(f"-s{STORED}-" in name for name in folders), folders  # base, val, novel
    run_checkpoint = sorted(StudyDir.of(experiment).root.glob("**/checkpoint.pt"))[0]
    trained_on = data.DatasetConfig(**torch.load(run_checkpoint, weights_only=True)["config"]["dataset"])
    assert trained_on.holdout_fraction == HOLDOUT and trained_on.max_stored_size == STORED
    _, held_by_run = data.load_base_parts(trained_on, progress=False)
    request = StudyRequest(**study["request"])
    held_by_study = scoring.held_out_base(experiment.spec(), request)
    assert held_by_study.stored_size == STORED and len(held_by_study) == study["held_out_images"]
    assert np.array_equal(held_by_study.images, held_by_run.images)
    assert np.array_equal(held_by_study.labels, held_by_run.labels)


def test_after_a_study_the_sweeps_tensorboard_line_still_opens_the_sweeps_hparams(studied):
    """TensorBoard shows one HParams experiment per logdir; the study declares its own, so the logdir the sweep prints
    must hold the sweep's alone (the experiment root would hold both, and TensorBoard would pick either)."""
    experiment, _, _ = studied
    command = dict((what, where) for what, where, _ in pointers(experiment))["TensorBoard"]
    assert command == f"tensorboard --logdir {experiment.tensorboard_dir}"
    sweep_board = board.load(experiment.tensorboard_dir)
    assert "stop" in {info.name for info in sweep_board.experiment().hparam_infos}  # the sweep's outcome column
    assert sorted(group.name for group in sweep_board.session_groups()) == sorted(
        record.trial_id for record in load_trials(experiment)
    )
    study_board = board.load(StudyDir.of(experiment).tensorboard_dir)
    assert {info.name for info in study_board.experiment().hparam_infos} == {"margin", "loss"}
