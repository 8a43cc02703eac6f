"""A tiny sweep on a real local Ray cluster (CPU): trials, ASHA, Optuna, promotion, report, TensorBoard (read back as
the TensorBoard server reads it), resume."""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from scipy import stats

import data
import evaluation
import sweep
from data.paths import CHECKPOINT_FILE
from evaluation.checkpoint import Checkpoint
from sweep.cli import main
from sweep.report import tensorboard_files
from sweep.schema import spec as spec_module
from sweep.schema.objectives import objective_value
from sweep.storage import experiment as experiments
from sweep.storage import selections
from sweep.storage.promotion_file import BaselineDifference, FailedSeed, PromotedTrial, ShotScore
from sweep.storage.results import load_trials
from sweep.storage.selections import BaselineTrial, Selection
from sweep.workflows import extra_seeds as seeds
from sweep.workflows import promotion as promote

from helpers import tensorboard as board
from helpers.datasets import section

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
    "points_to_evaluate": [{"margin": -0.1, "scale": 8.0}, {"margin": 0.0, "scale": 8.0}],  # m = 0: the baseline
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
    experiment = sweep.run_sweep(spec_file, promote=False).experiment  # the library pipeline the CLI calls
    assert experiment.root.parent == root / "experiments"
    novel_before = _novel_cache_files(cache)
    assert sweep.promote(experiment.root, selections=selections_file).experiment == experiment
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
        # the best is the first report with the highest objective (val_acc_mean: selection_metric is not set)
        best = record.history.loc[record.history["val_acc_mean"].idxmax()]
        assert record.best["epoch"] == best["epoch"] and record.best_objective == best["val_acc_mean"]
        for shot in (1, 5):  # a whole number of the 10 episodes x 25 queries answered right, in percent
            correct = record.best[f"val_acc_{shot}shot"] * 250 / 100
            assert correct == pytest.approx(round(correct), abs=1e-6)
        assert record.best["val_acc_mean"] == pytest.approx(
            (record.best["val_acc_1shot"] + record.best["val_acc_5shot"]) / 2
        )


def test_optuna_study_holds_every_trial_and_tried_the_given_point_first(finished):
    experiment, _, _ = finished
    study = optuna.load_study(study_name=experiment.root.name, storage=experiment.optuna_url)  # named after it
    assert len(study.trials) == 6
    assert study.trials[0].params == {"margin": -0.1, "scale": 8.0}  # the spec's points_to_evaluate, tried first
    assert len({trial.params["margin"] for trial in study.trials}) == 6


def test_optuna_study_and_report_match_trial_for_trial(finished, capsys):
    experiment, _, _ = finished
    study = optuna.load_study(study_name=experiment.root.name, storage=experiment.optuna_url)
    capsys.readouterr()
    assert main(["sweep", "report", str(experiment.root), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["study"] == experiment.root.name
    by_ray_id = {trial.user_attrs["ray_trial_id"]: trial for trial in study.trials}
    assert sorted(by_ray_id) == sorted(row["trial"] for row in report["trials"])  # one Optuna trial per Ray trial
    histories = {record.trial_id: record.history for record in load_trials(experiment)}
    for row in report["trials"]:
        trial = by_ray_id[row["trial"]]
        assert trial.number == row["optuna"]
        assert trial.params == {"margin": pytest.approx(row["margin"]), "scale": pytest.approx(row["scale"])}
        assert trial.user_attrs["stop_reason"] == row["stop"]
        assert trial.user_attrs["epochs_run"] == row["epochs"]
        assert trial.value == pytest.approx(histories[row["trial"]]["val_acc_mean"].iloc[-1])  # its last report
        # Tune passes the last report to Optuna as the value, the earlier ones as intermediate values
        assert max([*trial.intermediate_values.values(), trial.value]) == pytest.approx(row["objective"])
    stopped = {ray_id for ray_id, trial in by_ray_id.items() if trial.user_attrs["stop_reason"] != "completed"}
    assert stopped and {stop["trial"] for stop in report["stops"]} == stopped
    assert main(["sweep", "report", str(experiment.root)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[3].startswith("Selected hyperparameters")
    assert printed[-1] == f"Optuna:      optuna-dashboard {experiment.optuna_url}   (study {experiment.root.name})"


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
        data.load_split(section("glyphs", None, 16, str(cache)), "novel")


def test_promotion_results_carry_cis_and_paired_comparisons(finished):
    experiment, _, _ = finished
    promotion = _promotion_json(experiment)
    assert [trial["rank"] for trial in promotion["trials"]] == [1, 2]
    for trial in promotion["trials"]:
        saved = torch.load(experiment.promotion_dir / f"{trial['trial_id']}_accuracies.pt", weights_only=True)
        for shot in ("1", "5"):
            test, episodes = trial["test"][shot], saved[int(shot)].double().numpy() * 100
            assert test["episodes"] == 30 and episodes.shape == (30,)
            assert test["mean"] == pytest.approx(episodes.mean())
            assert test["ci95"] == pytest.approx(1.96 * episodes.std() / np.sqrt(30))  # published CI: ddof 0
    assert {c["shot"] for c in promotion["comparisons"]} == {1, 5}
    for comparison in promotion["comparisons"]:  # recomputed with scipy from the saved per-episode accuracies
        a, b = (_saved_accuracies(experiment, comparison[key])[comparison["shot"]] for key in ("a", "b"))
        a, b = a.double().numpy() * 100, b.double().numpy() * 100
        assert comparison["mean_diff"] == pytest.approx(float(np.mean(a - b)))
        if np.array_equal(a, b):  # no difference at all: both p-values are 1 (the tests are undefined)
            assert comparison["t_pvalue"] == comparison["wilcoxon_pvalue"] == 1.0
        else:
            assert comparison["t_pvalue"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
            exact = np.round(a - b, 6)  # whole queries: float noise is no difference (evaluation.stats)
            assert comparison["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(exact).pvalue, rel=1e-9)


def _promotion_json(experiment) -> dict:
    """promotion.json as written on disk (its layout is what other tools read)."""
    return json.loads(experiment.promotion_file.read_text())


def _saved_accuracies(experiment, trial_id: str) -> dict[int, torch.Tensor]:
    return torch.load(experiment.promotion_dir / f"{trial_id}_accuracies.pt", weights_only=True)


def test_the_baseline_at_m_0_is_scored_and_every_answer_is_compared_with_it(finished, capsys):
    """Promotion scores the m = 0 trial (a first point) whatever its rank; each promoted trial's paired test
    difference to it is in promotion.json, the report's first lines, the selections file and TensorBoard."""
    experiment, selections_file, _ = finished
    promotion = _promotion_json(experiment)
    found = promotion["baseline"]
    at_zero = [record for record in load_trials(experiment) if record.params["margin"] == 0.0]
    assert found["label"] == "m = 0" and [found["trial_id"]] == [record.trial_id for record in at_zero]
    promoted_ids = [trial["trial_id"] for trial in promotion["trials"]]
    if found["trial_id"] not in promoted_ids:
        assert found["entry"]["rank"] == "baseline" and found["entry"]["test"]["1"]["episodes"] == 30
    base = _saved_accuracies(experiment, found["trial_id"])
    assert sorted(found["differences"]) == sorted(promoted_ids)
    for trial_id, per_shot in found["differences"].items():
        for shot, difference in per_shot.items():
            mine = _saved_accuracies(experiment, trial_id)[int(shot)]
            assert difference["mean_diff"] == pytest.approx(
                float((mine.double() - base[int(shot)].double()).mean()) * 100
            )
            p_values = (difference["t_pvalue"], difference["wilcoxon_pvalue"])
            assert difference["verdict"] == evaluation.verdict(difference["mean_diff"], *p_values)
            assert difference["seeds"] == 1 and difference["seed_ids"] == [experiment.spec().seed]
    capsys.readouterr()
    assert main(["sweep", "report", str(experiment.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for entry in selections.read(selections_file):
        difference = found["differences"][entry.trial_id][str(entry.shot)]
        assert entry.vs_baseline is not None
        assert entry.vs_baseline.mean_diff == pytest.approx(difference["mean_diff"], abs=1e-6)
        assert entry.baseline == BaselineTrial(label="m = 0", trial_id=found["trial_id"])
        shown = f"    vs the baseline, m = 0 (trial {found['trial_id']}): "
        if entry.trial_id == found["trial_id"]:
            assert shown + "the selected configuration is the baseline (m = 0)" in lines
        else:
            assert shown + BaselineDifference.model_validate(difference).describe() in lines
            assert f"{difference['mean_diff']:+.2f} ± {difference['ci95']:.2f} points (paired t p = " in "\n".join(
                lines
            )
    groups = {group.name: group for group in board.load(experiment.root).session_groups()}
    for trial_id in [*promoted_ids, found["trial_id"]]:
        metrics = {value.name.tag: value.value for value in groups[trial_id].metric_values}
        for shot in ("1", "5"):
            expected = 0.0 if trial_id == found["trial_id"] else found["differences"][trial_id][shot]["mean_diff"]
            assert metrics[f"whole_trial/test_vs_baseline_{shot}shot"] == pytest.approx(expected)


def test_report_and_selections(finished, capsys):
    experiment, selections_file, _ = finished
    capsys.readouterr()
    assert main(["sweep", "report", str(experiment.root), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ranked = [row for row in report["promoted"] if row["rank"] != "baseline"]
    baseline_rows = [row for row in report["promoted"] if row["rank"] == "baseline"]
    assert len(report["trials"]) == 6 and [row["rank"] for row in ranked] == [1, 2]  # top_k = 2
    # m = 0 joins as "baseline" only when it is not already one of the top 2 (which it is depends on ASHA's order)
    assert len(baseline_rows) == (0 if any(row["margin"] == 0.0 for row in ranked) else 1)
    best = report["trials"][0]
    assert best["objective"] == max(row["objective"] for row in report["trials"])
    started = [row for row in report["trials"] if isinstance(row["start"], str)]  # the others: sampled (null, NaN)
    assert sorted((row["start"], row["margin"], row["scale"]) for row in started) == [
        ("spec", -0.1, 8.0),
        ("spec", 0.0, 8.0),
    ]
    assert _promotion_json(experiment)["selection_metric"] == "val_acc_mean"  # no selection_metric: the objective
    entries = selections.read(selections_file)
    assert sorted(entry.shot for entry in entries) == [1, 5]
    assert all(entry.dataset == "glyphs" and entry.backbone == "conv4" for entry in entries)
    promoted_ids = {row["trial"] for row in report["promoted"]}
    assert all(entry.trial_id in promoted_ids for entry in entries)
    rows = [Selection.model_validate(row) for row in report["selected"]]
    # the report's rows are the entries; `updated` is when each was made (the report is built after promotion)
    assert [row.model_copy(update={"updated": ""}) for row in rows] == [
        entry.model_copy(update={"updated": ""}) for entry in entries
    ]
    assert (
        main(["sweep", "select", "--dataset", "glyphs", "--backbone", "conv4", "--selections", str(selections_file)])
        == 0
    )
    assert "1-shot" in capsys.readouterr().out


def test_reporting_a_finished_sweep_loads_neither_torch_nor_tensorboard(finished):
    experiment, _, _ = finished
    probe = (
        "import sys\nfrom sweep.cli import main\ncode = main(['sweep', 'report', sys.argv[1]])\n"
        "print('loaded:', ','.join(m for m in ('torch', 'tensorboard', 'matplotlib') if m in sys.modules))\n"
        "raise SystemExit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(experiment.root)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "loaded:"


def test_tensorboard_shows_one_session_per_trial_and_the_promoted_trials_test_metrics(finished):
    experiment, _, _ = finished
    records = load_trials(experiment)
    events = sorted(experiment.root.rglob("events.out.tfevents.*"))
    assert events and all(experiment.tensorboard_dir in path.parents for path in events)  # none of Ray Tune's logger
    for record in records:  # while Tune's JSON and CSV results stay
        assert {"result.json", "progress.csv"} <= {
            path.name for path in experiment.trial_dir(record.trial_id).iterdir()
        }

    loaded = board.load(experiment.tensorboard_dir)  # the printed `tensorboard --logdir <exp>/tensorboard`
    infos = {info.name: info for info in loaded.experiment().hparam_infos}
    assert list(infos) == ["margin", "scale", "stop"]
    assert (infos["margin"].domain_interval.min_value, infos["margin"].domain_interval.max_value) == (-0.4, 0.2)
    assert (infos["scale"].domain_interval.min_value, infos["scale"].domain_interval.max_value) == (5.0, 20.0)
    groups = loaded.session_groups()
    assert sorted(group.name for group in groups) == sorted(record.trial_id for record in records)
    assert all(len(group.sessions) == 1 for group in groups)
    promotion = _promotion_json(experiment)
    scored = promotion["trials"] + ([promotion["baseline"]["entry"]] if "entry" in promotion["baseline"] else [])
    tested = {trial["trial_id"]: trial["test"] for trial in scored}  # the promoted trials and the baseline
    assert len(tested) in (2, 3)
    for group in groups:
        metrics = {value.name.tag: value.value for value in group.metric_values}
        record = next(record for record in records if record.trial_id == group.name)
        assert metrics["whole_trial/val_acc_5shot"] == pytest.approx(record.best["val_acc_5shot"])
        assert metrics["whole_trial/epochs_run"] == record.epochs_run
        if group.name in tested:
            for shot in ("1", "5"):
                assert metrics[f"whole_trial/test_acc_{shot}shot"] == pytest.approx(tested[group.name][shot]["mean"])
                assert metrics[f"whole_trial/test_ci95_{shot}shot"] == pytest.approx(tested[group.name][shot]["ci95"])
        else:
            assert not any(tag.startswith("whole_trial/test_") for tag in metrics)
        curve = loaded.scalars(f"trial_{group.name}", "val/acc_1shot")
        assert curve == [
            (int(e), pytest.approx(v)) for e, v in zip(record.history["epoch"], record.history["val_acc_1shot"])
        ]
    assert loaded.tags("images") == {".": [tensorboard_files.FIGURE_TAG]}
    assert experiment.margin_figure.read_bytes().startswith(b"\x89PNG")


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
    sweep.resume_sweep(experiment.root, promote=False)
    records = load_trials(experiment)
    assert len(records) == 6 and all(record.status == "TERMINATED" for record in records)
    assert finished_trial.read_text() == rows_before  # the finished trial was not re-run


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its (size, modification time in ns)."""
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def test_rerunning_a_finished_experiment_prints_its_report_and_touches_nothing(finished, workspace, capsys):
    experiment, _, _ = finished
    _, spec_file, _ = workspace
    before = _files(experiment.root)
    capsys.readouterr()
    assert main(["sweep", "run", str(spec_file), "--experiment", str(experiment.root), "--no-promote"]) == 0
    out = capsys.readouterr().out
    assert f"Experiment:  {experiment.root} (finished: nothing to do)" in out
    assert out.count(f"Results:     {experiment.root}") == 1  # the report's pointer lines
    assert _files(experiment.root) == before


def test_a_changed_spec_is_refused_in_one_line_before_anything_is_touched(finished, workspace, tmp_path, capsys):
    experiment, _, _ = finished
    _, spec_file, _ = workspace
    changed = yaml.safe_load(spec_file.read_text())
    changed["epochs"] = 4
    changed["search"]["scale"] = {"fixed": 8.0}
    changed_file = tmp_path / "changed.yaml"
    changed_file.write_text(yaml.safe_dump(changed))
    before = _files(experiment.root)
    capsys.readouterr()
    assert main(["sweep", "run", str(changed_file), "--experiment", str(experiment.root), "--no-promote"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"negmargin: error: {experiment.root}: the spec differs")
    assert "(epochs, search.scale.fixed, search.scale.loguniform)" in err
    assert _files(experiment.root) == before


def test_promotion_retrains_with_extra_seeds_and_reports_across_seeds(finished, tmp_path):
    experiment, _, _ = finished
    spec = yaml.safe_load(experiment.spec_file.read_text())
    original = experiment.spec_file.read_text()
    spec["promotion"].update(top_k=1, extra_seeds=1)
    experiment.spec_file.write_text(yaml.safe_dump(spec))
    try:
        promotion = promote.run(experiment, selections_path=tmp_path / "selections.yaml").model_dump(exclude_none=True)
    finally:
        experiment.spec_file.write_text(original)
    (trial,) = promotion["trials"]
    retrained = sorted((experiment.root / "seeds").rglob(CHECKPOINT_FILE))
    run_dirs = {
        json.loads(params.read_text())["retrain"]["trial_id"]: params.parent
        for params in (experiment.root / "seeds").glob("*/params.json")
    }
    # its extra seed's best checkpoint: of those Tune kept (the best and the latest), the first best by the selection
    # metric in what the trial stored with each
    kept = [Checkpoint.load(path).metrics for path in sorted(run_dirs[trial["trial_id"]].rglob(CHECKPOINT_FILE))]
    best = max(kept, key=lambda metrics: objective_value(metrics, experiment.spec().selection))
    for shot in ("1", "5"):
        seeds = trial["seeds"][shot]
        assert seeds["n"] == 2 and seeds["runs"][0] == trial["test"][shot]["mean"]
        assert seeds["mean"] == pytest.approx(statistics.fmean(seeds["runs"]))
        assert seeds["std"] == pytest.approx(statistics.stdev(seeds["runs"]))
        # the validation the answer is chosen on: the trial's own at its best checkpoint, then the retrained run's at
        # its best, and their mean
        key = f"val_acc_{shot}shot"
        assert seeds["val_runs"] == [trial["val"][key], pytest.approx(best[key])]
        assert seeds["val_mean"] == pytest.approx(statistics.fmean(seeds["val_runs"]))
    assert trial["seeds_failed"] == []
    entries = selections.read(tmp_path / "selections.yaml")
    assert [entry.shot for entry in entries] == [1, 5]
    for entry in entries:  # chosen on that mean, and says over how many seeds
        assert entry.val_seeds == 2
        assert entry.val_acc == pytest.approx(trial["seeds"][str(entry.shot)]["val_mean"], abs=1e-3)
    found = promotion["baseline"]  # retrained with the same extra seed: the difference is over both seeds
    for shot in ("1", "5"):
        difference = found["differences"][trial["trial_id"]][shot]
        assert difference["seeds"] == 2 and len(difference["per_seed"]) == 2
    if "entry" in found:
        assert found["entry"]["seeds"]["1"]["n"] == 2 and found["entry"]["seeds_failed"] == []
    # another training seed: another network. Compared by weights, not by test means: the tiny sweep's networks score
    # near chance, where two of them can tie on a shot's mean (750 queries: it happened).
    original = Checkpoint.load(trial["checkpoint"]).backbone_state
    assert retrained
    for path in retrained:
        weights = Checkpoint.load(path).backbone_state
        assert any(not torch.equal(value, weights[key]) for key, value in original.items())
    assert not list((experiment.root / "seeds").rglob("events.out.tfevents.*"))  # no TensorBoard files of Tune's


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
    test = {"1": ShotScore(mean=40.0, ci95=1.0, episodes=30)}
    promoted = PromotedTrial(rank=1, trial_id="t1", params=params, val={}, epoch=1, checkpoint="-", test=test)
    runs = seeds.retrain(spec, experiment, [promoted])
    assert len(runs) == 1 and runs[0].checkpoint is None and runs[0].seed == spec.seed + 1
    assert runs[0].failure.startswith("diverged: training diverged: non-finite loss at epoch 1")
    score = lambda run: pytest.fail("a diverged run has no checkpoint")  # noqa: E731
    (trial,) = seeds.with_seed_results([promoted], runs, score=score, objective=spec.objective)
    assert trial.seeds["1"].n == 1 and trial.seeds["1"].runs == [40.0]
    assert trial.seeds_failed == [FailedSeed(seed=spec.seed + 1, reason=runs[0].failure)]
