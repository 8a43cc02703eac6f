"""`negmargin calibrate` end to end on the tiny glyph set: 2 margins × 3 seeds (0 and 1 tuned, 2 held out) × 2 epochs,
run as worker processes, scored as promotion scores, its table (the regime check on the held-out seeds and on all, the
seed-to-seed spread) read back and checked against the saved runs; a rerun trains nothing."""

from __future__ import annotations

import importlib.util
import re
import statistics
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import data
import evaluation
from sweep.cli import build_parser, main
from sweep.storage import learning_curves
from sweep.tuning import replay
from sweep.workflows import calibration, calibration_table
from sweep.workflows.calibration_seeds import DEFAULT_SEEDS, TUNED_SEEDS, split_seeds

SETTINGS = {
    "dataset.name": "glyphs",
    "dataset.image_size": 16,
    "epochs": 2,
    "selection_from_epoch": 1,
    "val_every": 1,
    "batch_size": 64,
    "validation.episodes": 10,
    "validation.queries": 5,
    "validation.finetune_epochs": 5,
    "promotion.test_episodes": 20,
    "promotion.queries": 5,
    "promotion.finetune_epochs": 5,
}


@pytest.fixture(scope="module")
def calibrated(glyph_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("calibration") / "cal"
    results_md = out.parent / "RESULTS.md"
    results_md.write_text("# Results\n\nkept as it is\n")
    settings = {**SETTINGS, "dataset.root": str(glyph_cache), "dataset.cache_dir": str(out.parent / "cache")}
    argv = ["calibrate", "default", "--margins", "-0.3", "--seeds", "0", "1", "2", "--tuned-seeds", "0", "1"]
    argv += ["--workers", "2", "--device", "cpu"]
    argv += [f"--set={key}={value}" for key, value in settings.items()]
    argv += ["--out", str(out), "--results", str(results_md), "--curves", str(out.parent / "curves.csv")]
    assert main(argv) == 0
    return out, results_md, argv


def test_every_margin_and_seed_ran_its_full_budget_and_was_scored_on_the_same_episodes(calibrated):
    out, _, _ = calibrated
    runs = sorted((out / "runs").glob("*.pt"))
    assert [path.name for path in runs] == [f"m{m}_s{s}.pt" for m in ("+0.000", "-0.300") for s in (0, 1, 2)]
    for path in runs:
        result = calibration.load_result(path)
        assert [int(row["epoch"]) for row in result.curve] == [1, 2]  # every epoch validated, to the full budget
        assert result.best_epoch in (1, 2)
        for kind in ("final", "best"):
            assert sorted(result.novel[kind]) == [1, 5]
            assert all(
                acc.shape == (20,) and 0 <= float(acc.min()) <= float(acc.max()) <= 1
                for acc in result.novel[kind].values()
            )
        if result.best_epoch == 2:  # the best is the final checkpoint: the same scores
            assert all(torch.equal(result.novel["best"][s], result.novel["final"][s]) for s in (1, 5))
    for shot in (1, 5):  # one saved set per shot, shared by every run (paired)
        assert data.EpisodeSet.load(out / "episodes" / f"test_{shot}shot.pt").indices.shape == (20, 5, shot + 5)
        assert data.EpisodeSet.load(out / "episodes" / f"val_{shot}shot.pt").indices.shape == (10, 5, shot + 5)


def test_the_table_reads_back_the_paired_differences_of_the_saved_runs(calibrated):
    out, results_md, _ = calibrated
    results = [calibration.load_result(path) for path in sorted((out / "runs").glob("*.pt"))]
    table = (out / "calibration.md").read_text()
    document = results_md.read_text()
    assert document.startswith("# Results\n\nkept as it is\n") and table.strip() in document
    by = {(r.margin, r.seed): r for r in results}
    for shot in (1, 5):
        a = torch.stack([by[(-0.3, s)].novel["final"][shot] for s in (0, 1, 2)]).double().mean(0) * 100
        b = torch.stack([by[(0.0, s)].novel["final"][shot] for s in (0, 1, 2)]).double().mean(0) * 100
        pooled = evaluation.paired_comparison(a, b)
        row = re.search(rf"^\| -0\.3 \| final \| {shot} \| ([^|]+) \|", table, re.M)
        assert row is not None, table
        assert row.group(1).strip() == f"{pooled['mean_diff']:+.2f} ± {pooled['ci95']:.2f} (p {pooled['t_pvalue']:.2g})"
    accuracy_rows = re.findall(r"^\| (0|-0\.3) \| [\d.]+ \| [\d.]+ \| \d/\d/\d \|", table, re.M)
    assert accuracy_rows == ["0", "-0.3"]
    met, line = calibration_table.regime_check(results, "final")
    assert f"- on all seeds: {line}" in table.splitlines() and line.endswith("MET" if met else "NOT MET")


def _seed_differences(results, kind, shot):
    """{seed: m = -0.3 minus m = 0 in points, mean over the episodes} computed from the saved runs."""
    by = {(r.margin, r.seed): r.novel[kind][shot].double() * 100 for r in results}
    return {s: float((by[(-0.3, s)] - by[(0.0, s)]).mean()) for s in (0, 1, 2)}


def test_the_held_out_seed_is_marked_and_checked_apart_with_the_seed_to_seed_spread(calibrated):
    out, _, _ = calibrated
    results = [calibration.load_result(path) for path in sorted((out / "runs").glob("*.pt"))]
    lines = (out / "calibration.md").read_text().splitlines()
    assert "Tuned seeds (the configuration was chosen on them): 0 1; held-out seeds: 2." in lines
    assert any(
        line.startswith("| m | checkpoint | shot | pooled | seed 0 | seed 1 | seed 2 (held out) |") for line in lines
    )
    for kind in ("final", "best"):
        held = calibration_table.regime_check(results, kind, [2])[1]
        every = calibration_table.regime_check(results, kind)[1]
        assert held.startswith(f"regime ({kind} checkpoints, seeds 2): best negative margin m = -0.3 vs m = 0: ")
        assert every.startswith(f"regime ({kind} checkpoints, seeds 0 1 2): best negative margin m = -0.3")
        regime = [line for line in lines if line.startswith("- on ") and f"({kind} checkpoints" in line]
        assert regime == [f"- on the held-out seeds: {held}", f"- on all seeds: {every}"]
        for shot in (1, 5):
            diffs = _seed_differences(results, kind, shot)
            # on one seed the pooled difference is that seed's own
            assert f"{shot}-shot {diffs[2]:+.2f} ± " in held and f"seeds {diffs[2]:+.1f})" in held
            all_seeds = list(diffs.values())
            spread = [
                "0 1 2",
                f"{statistics.mean(all_seeds):+.2f}",
                f"{statistics.stdev(all_seeds):.2f}",
                f"{min(all_seeds):+.2f}",
                f"{max(all_seeds):+.2f}",
            ]
            assert f"| -0.3 | {kind} | {shot} | all | {' | '.join(spread)} |" in lines
            d = f"{diffs[2]:+.2f}"
            assert f"| -0.3 | {kind} | {shot} | held out | 2 | {d} | – | {d} | {d} |" in lines


def test_with_no_held_out_seed_the_table_says_so_instead_of_repeating_the_all_seeds_check(calibrated):
    out, _, _ = calibrated
    results = [calibration.load_result(path) for path in sorted((out / "runs").glob("*.pt"))]
    table = calibration_table.markdown(results, "val_acc_mean", "t", tuned_seeds=[0, 1, 2])
    lines = table.splitlines()
    assert "Tuned seeds (the configuration was chosen on them): 0 1 2; held-out seeds: none." in lines
    for kind in ("final", "best"):
        regime = [line for line in lines if line.startswith("- on ") and f"({kind} checkpoints" in line]
        assert regime == [
            f"- on the held-out seeds ({kind} checkpoints): none ran — every seed run (0 1 2) is one the "
            "configuration was chosen on, so the check below can flatter it",
            f"- on all seeds: {calibration_table.regime_check(results, kind)[1]}",
        ]
    assert not [line for line in lines if "| held out |" in line or "(held out)" in line]
    assert len([line for line in lines if line.startswith("| -0.3 | ") and "| all | 0 1 2 |" in line]) == 4


def test_the_command_runs_six_seeds_by_default_three_of_them_tuned():
    args = build_parser().parse_args(["calibrate"])
    assert args.seeds == list(DEFAULT_SEEDS) == [0, 1, 2, 3, 4, 5]
    assert args.tuned_seeds == list(TUNED_SEEDS) == [0, 1, 2]
    assert split_seeds(args.seeds, args.tuned_seeds) == ([0, 1, 2], [3, 4, 5])
    assert build_parser().parse_args(["calibrate", "--tuned-seeds"]).tuned_seeds == []  # every seed held out
    assert split_seeds([4, 1, 4], [1, 7]) == ([1], [4])


def test_a_rerun_trains_nothing_and_rewrites_the_same_section(calibrated, capsys):
    out, results_md, argv = calibrated
    before = {path: path.stat().st_mtime_ns for path in (out / "runs").glob("*.pt")}
    capsys.readouterr()
    assert main(argv) == 0
    assert "6 of 6 runs already done; 0 to run" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in (out / "runs").glob("*.pt")} == before
    assert results_md.read_text().count("<!-- calibration:default -->") == 1


def test_a_searched_parameter_without_a_value_is_one_line_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    document = yaml.safe_load(calibration.spec_module.preset_path("default").read_text())
    document["search"]["scale"] = {"uniform": [5.0, 20.0]}
    document.pop("points_to_evaluate")
    spec.write_text(yaml.safe_dump(document))
    assert main(["calibrate", str(spec), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("scale searched, not fixed: give a value, e.g. --set scale=…") and "\n" not in error
    assert not (tmp_path / "out").exists()
    assert main(["calibrate", "--set", "epochs", "--out", str(tmp_path / "out")]) == 2
    assert "--set 'epochs': expected KEY=VALUE" in capsys.readouterr().err


def test_the_learning_curve_table_holds_every_epoch_of_every_run_and_its_checkpoints_test_accuracy(calibrated):
    out, _, _ = calibrated
    table = learning_curves.read(out.parent / "curves.csv")
    assert len(table) == 2 * 3 * 2  # margins × seeds × epochs
    for path in sorted((out / "runs").glob("*.pt")):
        result = calibration.load_result(path)
        rows = table[(table["margin"] == result.margin) & (table["seed"] == result.seed)].sort_values("epoch")
        assert rows["epoch"].tolist() == [1, 2] and (rows["scale"] == 10.0).all()
        assert rows["epoch_seconds"].tolist() == pytest.approx(result.epoch_seconds, abs=1e-3)
        assert sum(result.epoch_seconds) <= result.seconds and min(result.epoch_seconds) > 0
        assert sorted(result.novel_by_epoch) == [1, 2]  # every validated epoch's checkpoint scored
        for epoch, scores in result.novel_by_epoch.items():
            row = rows[rows["epoch"] == epoch].iloc[0]
            assert row["val_acc_1shot"] == pytest.approx(result.curve[epoch - 1]["val_acc_1shot"], abs=1e-3)
            for shot in (1, 5):
                assert row[f"test_acc_{shot}shot"] == pytest.approx(100 * float(scores[shot].double().mean()), abs=1e-3)
        assert all(torch.equal(result.novel["final"][s], result.novel_by_epoch[2][s]) for s in (1, 5))
        assert all(torch.equal(result.novel["best"][s], result.novel_by_epoch[result.best_epoch][s]) for s in (1, 5))


def test_the_search_comparison_replays_the_recorded_table_and_reads_its_table_back(calibrated, tmp_path):
    out, _, _ = calibrated
    spec = tmp_path / "spec.yaml"  # the calibrated spec, with a rung at epoch 1 and two trials at once
    document = yaml.safe_load((out / "spec.yaml").read_text())
    document.update(scheduler={"grace_period": 1, "reduction_factor": 2}, num_samples=2, max_concurrent=2)
    spec.write_text(yaml.safe_dump(document))
    efficiency = _benchmark_module("sweep_efficiency")
    strategies = [s for s in efficiency.STRATEGIES if s.name in ("grid", "tpe2-asha")]
    rows, table, text = efficiency.compare(
        out.parent / "curves.csv", str(spec), [0, 1, 2], strategies, ["margin"], tmp_path / "out", progress=print
    )
    back = pd.read_csv(tmp_path / "out" / "sweep_efficiency_seeds.csv")
    assert len(back) == 2 * 3 and back.groupby("strategy")["sweep_seed"].apply(list).to_dict() == {
        "grid": [0, 1, 2],
        "tpe2-asha": [0, 1, 2],
    }
    recording = replay.Recording.from_table(learning_curves.read(out.parent / "curves.csv"), "val_acc_mean")
    finals = sorted(recording.score(i, e) for i in range(2) for e in (1, 2))
    assert all(any(abs(score - f) < 1e-9 for f in finals) for score in back["score"])  # a recorded configuration's
    grid = back[back["strategy"] == "grid"]
    assert (grid["epochs"] == 2 * 2).all()  # both configurations to the 2-epoch budget
    grid_best = float(grid["score"].median())
    assert back["regret"].tolist() == pytest.approx((grid_best - back["score"]).tolist())
    assert "| margin | grid |" in text and "| margin | tpe2-asha |" in text
    assert (tmp_path / "out" / "sweep_efficiency.png").stat().st_size > 10_000


def _benchmark_module(name: str):
    """A script of benchmarks/ imported as a module."""
    path = Path(__file__).resolve().parents[3] / "benchmarks" / f"{name}.py"
    loaded = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    sys.modules[loaded.name] = module  # dataclasses resolve their module by name
    loaded.loader.exec_module(module)
    return module
