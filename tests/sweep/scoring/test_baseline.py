"""The baseline a sweep's answer is compared with: which trial it is, how it is named, and promotion's paired,
seed-keyed difference to it (the same numbers as the margin study's)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import evaluation
from sweep.cli import main
from sweep.report.text import baseline_line
from sweep.schema import spec as spec_module
from sweep.scoring import baseline
from sweep.storage.promotion_file import BaselineDifference, PromotedTrial, ShotScore
from sweep.storage.results import TrialRecord
from sweep.storage.selections import Selection
from sweep.study import compare
from sweep.study.scoring import RunScores
from sweep.tuning.grid_runner import SeedRun
from sweep.workflows import extra_seeds, promotion

from helpers.specs import full_search_spec_data


def _record(trial_id: str, margin: float, objective: float, checkpoint: bool = True) -> TrialRecord:
    params = {"margin": margin, "scale": 10.0, "weight_decay": 5e-4, "drop_rate": 0.0, "dropblock_size": 1}
    return TrialRecord(
        trial_id=trial_id,
        params=params,
        status="TERMINATED",
        stop_reason="completed",
        epochs_run=6,
        best={"epoch": 6, "val_acc_mean": objective},
        best_objective=objective,
        best_checkpoint=Path(f"/ckpt/{trial_id}") if checkpoint else None,
        history=pd.DataFrame(),
    )


def _spec(margin_space: dict, first_points: list[dict]) -> spec_module.SweepSpec:
    data = full_search_spec_data()
    data["search"]["margin"] = margin_space
    data["points_to_evaluate"] = [
        {"scale": 10.0, "weight_decay": 5.0e-4, "drop_rate": 0.0, "dropblock_size": 1, **point}
        for point in first_points
    ]
    return spec_module.parse(data)


def test_the_m_0_trial_is_the_baseline_preferring_the_first_point_among_several():
    spec = _spec({"uniform": [-0.5, 0.3]}, [{"margin": 0.0}])
    records = [_record("best", -0.3, 70.0), _record("zero-b", 0.0, 66.0), _record("zero-a", 0.0, 65.0)]
    records[1].params["scale"] = 12.0  # not the first point: the first point's own m = 0 trial is the baseline
    found, note = baseline.find_baseline(records, spec)
    assert found is not None and found.record.trial_id == "zero-a" and found.label == "m = 0"
    assert note == "baseline: m = 0 (trial zero-a)"


def test_a_space_without_m_0_names_the_first_point_as_its_baseline():
    spec = _spec({"uniform": [-0.5, -0.1]}, [{"margin": -0.3}])
    records = [_record("a", -0.2, 70.0), _record("first", -0.3, 66.0)]
    found, note = baseline.find_baseline(records, spec)
    assert found is not None and found.record.trial_id == "first"
    assert found.label == "the spec's first point (m = -0.3)"
    assert note == "baseline: the spec's first point (m = -0.3), trial first: no trial at m = 0"


def test_no_m_0_and_no_first_point_says_there_is_no_baseline():
    spec = _spec({"uniform": [-0.5, -0.1]}, [])
    found, note = baseline.find_baseline([_record("a", -0.2, 70.0)], spec)
    assert (
        found is None and note == "no baseline: no trial at m = 0 and no points_to_evaluate to compare the answer with"
    )
    entry = Selection(
        dataset="glyphs",
        backbone="conv4",
        loss="neg-cosine",
        shot=1,
        params={"margin": -0.2},
        val_acc=70.0,
        test_acc=60.0,
        test_ci95=1.0,
        test_episodes=600,
        experiment="exp",
        trial_id="a",
        updated="now",
        baseline=note,
    )
    assert baseline_line(entry) == f"vs the baseline: {note}"
    unscored = [_record("zero", 0.0, 60.0, checkpoint=False)]  # an m = 0 trial without a checkpoint cannot be scored
    assert baseline.find_baseline(unscored, _spec({"uniform": [-0.5, 0.3]}, []))[0] is None


def _promoted(trial_id: str, accuracies: dict[int, torch.Tensor]) -> PromotedTrial:
    test = {str(shot): ShotScore(**evaluation.accuracy_summary(acc)) for shot, acc in accuracies.items()}
    return PromotedTrial(rank=1, trial_id=trial_id, params={}, val={}, epoch=1, checkpoint="/c", test=test)


def test_a_one_sided_extra_seed_failure_pairs_the_seeds_both_have_as_the_study_does(tmp_path: Path):
    """Promotion retrains seeds 1 and 2; seed 1 diverges for the baseline only. The selected trial's difference is
    paired on seeds 0 and 2 (not on list positions, which would pair its seed 1 with the baseline's seed 2), says so,
    and has the numbers the margin study's path gives for the same accuracies."""
    generator = torch.Generator().manual_seed(0)
    accuracy = {  # (trial, training seed) -> per-episode accuracies [E] at shot 1
        ("sel", 0): torch.rand(60, generator=generator),
        ("sel", 1): torch.rand(60, generator=generator) * 0.2,  # far below: pairing it would flip the sign
        ("sel", 2): torch.rand(60, generator=generator),
        ("base", 0): torch.rand(60, generator=generator) * 0.9,
        ("base", 2): torch.rand(60, generator=generator) * 0.9,
    }
    checkpoints = {tmp_path / f"{trial}-{seed}.pt": {1: acc} for (trial, seed), acc in accuracy.items()}
    scored = {trial: {0: {1: accuracy[(trial, 0)]}} for trial in ("sel", "base")}  # the sweep's own seed, 0
    runs = [
        SeedRun("sel", 1, tmp_path / "sel-1.pt"),
        SeedRun("sel", 2, tmp_path / "sel-2.pt"),
        SeedRun("base", 1, None, "diverged: loss is nan"),
        SeedRun("base", 2, tmp_path / "base-2.pt"),
    ]
    trials = [_promoted("sel", {1: accuracy[("sel", 0)]}), _promoted("base", {1: accuracy[("base", 0)]})]
    scorer = promotion.seed_scorer(scored, checkpoints.__getitem__)
    updated = extra_seeds.with_seed_results(trials, runs, scorer, "val_acc_mean")
    assert [t.seeds["1"].n for t in updated] == [3, 2] and updated[1].seeds_failed[0].seed == 1
    difference = promotion.baseline_differences(scored, ["sel"], "base")["sel"]["1"]
    assert difference.seeds == 2 and difference.seed_ids == [0, 2]

    study_scores = {
        (-0.2 if trial == "sel" else 0.0, seed): RunScores({"novel": {1: acc}, "base": {1: acc}}, {}, {})
        for (trial, seed), acc in accuracy.items()
    }
    study = next(c for c in compare.comparisons(study_scores, [-0.2, 0.0], [1]) if c["domain"] == "novel")
    assert study["seeds"] == difference.seed_ids
    for key in ("mean_diff", "ci95", "t_pvalue", "wilcoxon_pvalue", "n"):
        assert getattr(difference, key) == study[key]
    assert difference.per_seed == study["per_seed_diff"]
    by_hand = lambda trial: (accuracy[(trial, 0)].double() + accuracy[(trial, 2)].double()) / 2 * 100  # noqa: E731
    assert difference.mean_diff == pytest.approx(float((by_hand("sel") - by_hand("base")).mean()))
    assert study["t_pvalue_holm"] == difference.t_pvalue  # a family of one: the same rule gives the same verdict
    assert (difference.verdict == "beats the baseline") == study["significant"]
    assert "over 2 seeds (seed 0 " in difference.describe() and ", seed 2 " in difference.describe()


def test_promotion_holm_corrects_over_the_promoted_trials_when_asked():
    generator = torch.Generator().manual_seed(1)
    base = torch.rand(50, generator=generator)
    scored = {
        trial: {0: {1: (base + shift + torch.rand(50, generator=generator) * 0.05).clamp(0, 1)}}
        for trial, shift in (("a", 0.03), ("b", 0.0), ("base", 0.0))
    }
    scored["base"][0][1] = base
    plain = promotion.baseline_differences(scored, ["a", "b"], "base")
    corrected = promotion.baseline_differences(scored, ["a", "b"], "base", holm=True)
    expected = evaluation.holm([plain["a"]["1"].t_pvalue, plain["b"]["1"].t_pvalue])
    assert [corrected[t]["1"].t_pvalue_holm for t in ("a", "b")] == pytest.approx(expected)
    assert plain["a"]["1"].t_pvalue_holm is None and corrected["a"]["1"].mean_diff == plain["a"]["1"].mean_diff
    assert "Holm p = " in corrected["a"]["1"].describe() and "Holm" not in plain["a"]["1"].describe()


def test_a_difference_written_before_seed_ids_were_recorded_still_reads_and_describes():
    old = {"mean_diff": 1.0, "ci95": 0.5, "t_pvalue": 0.01, "wilcoxon_pvalue": 0.02, "n": 30}
    difference = BaselineDifference.model_validate({**old, "seeds": 2, "per_seed": [0.5, 1.5], "verdict": "beats"})
    assert difference.seed_ids == [] and difference.t_pvalue_holm is None
    assert difference.describe() == (
        "+1.00 ± 0.50 points (paired t p = 0.01, Wilcoxon p = 0.02) over 2 seeds (+0.50, +1.50): beats"
    )


def test_sweep_promote_takes_holm(tmp_path: Path, capsys):
    assert main(["sweep", "promote", str(tmp_path / "nowhere"), "--holm"]) == 2
    error = capsys.readouterr().err
    assert "no such experiment" in error and "unrecognized arguments" not in error
