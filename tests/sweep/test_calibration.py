"""`negmargin calibrate` end to end on the tiny glyph set: 2 margins × 2 seeds × 2 epochs, run as worker processes,
scored as promotion scores, its table read back and checked against the saved runs; a rerun trains nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

import data
import evaluation
from sweep.cli import main
from sweep.workflows import calibration, calibration_table

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
    argv = ["calibrate", "default", "--margins", "-0.3", "--seeds", "0", "1", "--workers", "2", "--device", "cpu"]
    argv += [f"--set={key}={value}" for key, value in settings.items()]
    argv += ["--out", str(out), "--results", str(results_md)]
    assert main(argv) == 0
    return out, results_md, argv


def test_every_margin_and_seed_ran_its_full_budget_and_was_scored_on_the_same_episodes(calibrated):
    out, _, _ = calibrated
    runs = sorted((out / "runs").glob("*.pt"))
    assert [path.name for path in runs] == ["m+0.000_s0.pt", "m+0.000_s1.pt", "m-0.300_s0.pt", "m-0.300_s1.pt"]
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
        a = torch.stack([by[(-0.3, s)].novel["final"][shot] for s in (0, 1)]).double().mean(0) * 100
        b = torch.stack([by[(0.0, s)].novel["final"][shot] for s in (0, 1)]).double().mean(0) * 100
        pooled = evaluation.paired_comparison(a, b)
        row = re.search(rf"^\| -0\.3 \| final \| {shot} \| ([^|]+) \|", table, re.M)
        assert row is not None, table
        assert row.group(1).strip() == f"{pooled['mean_diff']:+.2f} ± {pooled['ci95']:.2f} (p {pooled['t_pvalue']:.2g})"
    accuracy_rows = re.findall(r"^\| (0|-0\.3) \| [\d.]+ \| [\d.]+ \| \d/\d \|", table, re.M)
    assert accuracy_rows == ["0", "-0.3"]
    met, line = calibration_table.regime_check(results, "final")
    assert f"- {line}" in table and line.endswith("MET" if met else "NOT MET")


def test_a_rerun_trains_nothing_and_rewrites_the_same_section(calibrated, capsys):
    out, results_md, argv = calibrated
    before = {path: path.stat().st_mtime_ns for path in (out / "runs").glob("*.pt")}
    capsys.readouterr()
    assert main(argv) == 0
    assert "4 of 4 runs already done; 0 to run" in capsys.readouterr().out
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
