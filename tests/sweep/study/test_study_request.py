"""The margin study's grid, request and comparison rules (no training: these run in milliseconds)."""

import pytest
import torch
import yaml

from sweep.cli import main
from sweep.errors import ExperimentError, SpecError
from sweep.schema import spec as spec_module
from sweep.storage import experiment as experiments
from sweep.study import compare
from sweep.study.layout import StudyDir
from sweep.study.margins import checked_margins, default_margins, parse_margins
from sweep.study.request import build_request, resolve_request, save_request
from sweep.study.scoring import RunScores

PARAMS = {"margin": -0.1, "scale": 10.0, "weight_decay": 5e-4, "drop_rate": 0.0, "dropblock_size": 1}


def test_default_grid_spans_the_searched_range_with_zero():
    grid = default_margins("neg-cosine", (-0.5, 0.3))
    assert grid == [-0.5, -0.375, -0.25, -0.125, 0.0, 0.15, 0.3]
    assert default_margins("neg-softmax", (-0.6, 0.0)) == [-0.6, -0.5, -0.4, -0.3, -0.2, -0.1, 0.0]
    assert 0.0 in default_margins("neg-cosine", (-0.4, -0.1))  # widened to hold 0
    assert default_margins("neg-cosine", (-0.1, -0.1)) == default_margins("neg-cosine", (-0.5, 0.3))  # fixed: span
    assert max(default_margins("neg-softmax", (-1.0, 0.5))) == 0.0  # clipped: a dot-product head takes m <= 0
    with pytest.raises(SpecError, match="no margin study"):
        default_margins("softmax", (0.0, 0.0))


def test_chosen_margins_get_zero_and_are_checked_against_the_loss():
    assert checked_margins("neg-cosine", [0.1, -0.2, -0.2]) == [-0.2, 0.0, 0.1]  # 0 added, sorted, distinct
    with pytest.raises(SpecError, match="needs margin <= 0"):
        checked_margins("neg-softmax", [-0.1, 0.2])
    assert parse_margins("-0.2, 0,0.1") == [-0.2, 0.0, 0.1]
    with pytest.raises(SpecError, match="comma-separated"):
        parse_margins("-0.2;0")


def _experiment(tmp_path, **changes):
    data = yaml.safe_load(spec_module.preset_path("default").read_text())
    data.update(storage_path=str(tmp_path), **changes)
    spec = spec_module.parse(data)
    return experiments.create(spec), spec


def test_a_rerun_resumes_the_saved_study_and_refuses_another(tmp_path):
    experiment, spec = _experiment(tmp_path)
    study = StudyDir.of(experiment)
    request = build_request(spec, PARAMS, "test", margins=[-0.2], seeds=2)
    assert request.margins == [-0.2, 0.0] and request.seeds == 2 and request.holdout_fraction == 0.1
    selected = {**PARAMS, "margin": -0.3}  # the default grid holds the configuration's own margin too
    assert build_request(spec, selected, "test").margins == [-0.5, -0.375, -0.3, -0.25, -0.125, 0.0, 0.1, 0.2]
    assert build_request(spec, PARAMS, "test").margins == [-0.5, -0.375, -0.25, -0.125, -0.1, 0.0, 0.1, 0.2]
    save_request(study, request)
    assert resolve_request(study, spec, None) == request  # no options: the saved study
    assert resolve_request(study, spec, None, margins=[0.0, -0.2], seeds=2) == request
    with pytest.raises(ExperimentError, match="other margins, seeds.*--restart"):
        resolve_request(study, spec, None, margins=[-0.3], seeds=3)


def test_study_user_errors_exit_2_before_training(tmp_path, capsys):
    experiment, _ = _experiment(
        tmp_path, loss="neg-softmax", search={"margin": {"uniform": [-0.5, 0.0]}}, points_to_evaluate=[]
    )
    assert main(["sweep", "study", str(experiment.root), "--margins", "-0.1", "0.2"]) == 2
    assert "needs margin <= 0" in capsys.readouterr().err
    assert main(["sweep", "study", str(experiment.root)]) == 2  # a sweep that never ran has nothing selected
    assert "no trial results yet" in capsys.readouterr().err
    assert main(["sweep", "study", str(tmp_path / "nowhere")]) == 2
    assert "no such experiment" in capsys.readouterr().err
    assert main(["sweep", "study"]) == 2
    assert "--config" in capsys.readouterr().err
    assert main(["sweep", "study", "--latest", str(experiment.root)]) == 2
    assert "--latest names the experiment" in capsys.readouterr().err
    assert main(["sweep", "study", "--latest", "--storage", str(tmp_path / "empty")]) == 2
    assert "holds no experiments" in capsys.readouterr().err
    newest, _ = _experiment(tmp_path, search={"margin": {"uniform": [-0.5, 0.0]}}, points_to_evaluate=[])
    assert main(["sweep", "study", "--latest", "--storage", str(tmp_path)]) == 2  # the newest one, unrun
    assert f"{newest.root}" in capsys.readouterr().err
    assert not StudyDir.of(experiment).root.exists()


def _scores(diffs: dict[float, float], episodes: int = 40, seeds=(0, 1)) -> dict:
    """Accuracies where margin m is m=0's plus diffs[m] on every episode, with seeded noise per seed."""
    generator = torch.Generator().manual_seed(0)
    base = {seed: torch.rand(episodes, generator=generator) * 0.5 for seed in seeds}
    scores = {}
    for margin, diff in diffs.items():
        for seed in seeds:
            noise = (torch.rand(episodes, generator=generator) - 0.5) * 0.02
            acc = (base[seed] + diff + (noise if margin else 0)).clamp(0, 1)
            separation = {"inter": 1.0 + margin, "intra": 0.5, "phi": (1.0 + margin) / 0.5}
            scores[(margin, seed)] = RunScores(
                {"novel": {1: acc}, "base": {1: acc}}, {"novel": separation, "base": separation}, {}
            )
    return scores


def test_comparisons_are_paired_on_seed_averaged_episodes_and_holm_adjusted():
    scores = _scores({0.0: 0.0, -0.2: 0.1, -0.1: 0.0})
    found = compare.comparisons(scores, [-0.2, -0.1, 0.0], [1])
    assert {(c["domain"], c["margin"]) for c in found} == {
        ("novel", -0.2),
        ("novel", -0.1),
        ("base", -0.2),
        ("base", -0.1),
    }
    better = next(c for c in found if c["margin"] == -0.2 and c["domain"] == "novel")
    summaries = compare.margin_summaries(scores, [-0.2, -0.1, 0.0], [1])
    means = {s["margin"]: s["accuracy"]["novel"]["1"]["mean"] for s in summaries}
    assert better["mean_diff"] == pytest.approx(means[-0.2] - means[0.0])
    assert better["n"] == 40 and better["seeds"] == [0, 1] and len(better["per_seed_diff"]) == 2
    assert better["significant"] and better["t_pvalue_holm"] >= better["t_pvalue"]
    assert not next(c for c in found if c["margin"] == -0.1 and c["domain"] == "novel")["significant"]
    line = compare.answer("x / conv4 / neg-cosine", found, [1], summaries)
    assert line.startswith("x / conv4 / neg-cosine: 1-shot: m = -0.2 beats m = 0 by +")
    assert "2 seeds, 2 of them ahead" in line


def test_the_answer_says_so_when_no_margin_is_better():
    scores = _scores({0.0: 0.0, -0.2: -0.05})
    found = compare.comparisons(scores, [-0.2, 0.0], [1])
    summaries = compare.margin_summaries(scores, [-0.2, 0.0], [1])
    line = compare.answer("x / conv4 / neg-cosine", found, [1], summaries)
    assert line == (
        f"x / conv4 / neg-cosine: 1-shot: no margin is significantly better than m = 0 (best: m = 0 itself; next "
        f"m = -0.2, {found[0]['mean_diff']:+.2f} ± {found[0]['ci95']:.2f})"
    )
