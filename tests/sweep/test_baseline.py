"""The baseline a sweep's answer is compared with: which trial it is, how it is named, and the paired difference."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import evaluation
from sweep.report.text import baseline_line
from sweep.schema import spec as spec_module
from sweep.scoring import baseline
from sweep.storage.promotion_file import BaselineDifference
from sweep.storage.results import TrialRecord

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
    assert baseline_line({"baseline": note}) == f"vs the baseline: {note}"
    unscored = [_record("zero", 0.0, 60.0, checkpoint=False)]  # an m = 0 trial without a checkpoint cannot be scored
    assert baseline.find_baseline(unscored, _spec({"uniform": [-0.5, 0.3]}, []))[0] is None


def test_paired_difference_over_seeds_averages_each_episode_and_lists_each_seed():
    generator = torch.Generator().manual_seed(0)
    base = [torch.rand(200, generator=generator) for _ in range(2)]
    better = [(b + 0.05).clamp(max=1.0) for b in base]
    difference = baseline.paired_difference(better, base)
    seed_mean = lambda runs: torch.stack(runs).double().mean(dim=0) * 100  # noqa: E731
    expected = evaluation.paired_comparison(seed_mean(better), seed_mean(base))
    assert difference["mean_diff"] == pytest.approx(expected["mean_diff"]) and difference["seeds"] == 2
    assert difference["per_seed"] == pytest.approx([float((a - b).double().mean() * 100) for a, b in zip(better, base)])
    assert difference["verdict"] == "beats the baseline"
    text = BaselineDifference.model_validate(difference).describe()
    assert text.startswith(f"{difference['mean_diff']:+.2f} ± {difference['ci95']:.2f} points (paired t p = ")
    assert text.endswith(": beats the baseline") and "over 2 seeds" in text


def test_verdict_says_plainly_when_a_difference_is_not_significant():
    assert baseline.verdict({"mean_diff": 0.4, "t_pvalue": 0.2, "wilcoxon_pvalue": 0.3}) == (
        "is not significantly different from the baseline"
    )
    assert baseline.verdict({"mean_diff": 1.0, "t_pvalue": 0.01, "wilcoxon_pvalue": 0.2}) == (
        "is not significantly different from the baseline"  # both tests must agree
    )
    assert baseline.verdict({"mean_diff": -1.0, "t_pvalue": 0.001, "wilcoxon_pvalue": 0.002}) == (
        "is worse than the baseline"
    )
