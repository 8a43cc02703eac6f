"""promotion.json: what promotion writes is what the selections file, the report and the study read back, in the
layout other tools read; a file that is not one is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweep.errors import ExperimentError
from sweep.storage import promotion_file
from sweep.storage.promotion_file import (
    BaselineDifference,
    BaselineSection,
    Comparison,
    PromotedTrial,
    Promotion,
    ShotScore,
)

STATS = {"mean_diff": 1.5, "ci95": 0.5, "t_pvalue": 0.01, "wilcoxon_pvalue": 0.02, "n": 30}


def _trial(rank, trial_id: str, margin: float) -> PromotedTrial:
    return PromotedTrial(
        rank=rank,
        trial_id=trial_id,
        params={"margin": margin, "scale": 8.0},
        val={"val_acc_1shot": 40.0},
        epoch=3,
        eligible_epochs=[2, 3],
        checkpoint=f"/x/{trial_id}/checkpoint_000002",
        test={"1": ShotScore(mean=41.0, ci95=float("nan"), episodes=30)},
    )


def _promotion() -> Promotion:
    best, zero = _trial(1, "a1", -0.1), _trial("baseline", "b0", 0.0)
    difference = BaselineDifference(**STATS, seeds=1, per_seed=[1.5], verdict="beats the baseline")
    return Promotion(
        experiment="/x",
        objective="val_acc_mean",
        selection_metric="val_acc_1shot",
        shots=[1],
        test_episodes={"1": "/x/episodes/test_1shot.pt"},
        trials=[best],
        comparisons=[Comparison(**STATS, shot=1, a="a1", b="a2")],
        baseline=BaselineSection(
            note="baseline: m = 0 (trial b0)",
            label="m = 0",
            trial_id="b0",
            differences={"a1": {"1": difference}},
            entry=zero,
        ),
        seconds=2.5,
    )


def test_written_and_read_back_unchanged_in_the_json_layout(tmp_path: Path) -> None:
    path = promotion_file.write(tmp_path / "promotion.json", _promotion())
    read = promotion_file.read(path)
    assert read is not None
    assert read.model_dump_json() == _promotion().model_dump_json()  # NaN included
    on_disk = json.loads(path.read_text())
    assert list(on_disk) == [
        "format", "experiment", "objective", "selection_metric", "shots", "test_episodes", "trials", "comparisons",
        "baseline", "seconds",
    ]  # fmt: skip
    assert on_disk["baseline"]["entry"]["rank"] == "baseline"
    assert on_disk["baseline"]["differences"]["a1"]["1"]["verdict"] == "beats the baseline"
    assert read.scored_trials() == [read.trials[0], read.baseline.entry]
    assert read.baseline.difference("a1", 1) == read.baseline.differences["a1"]["1"]


def test_without_a_baseline_the_section_holds_only_its_note(tmp_path: Path) -> None:
    promotion = _promotion().model_copy(update={"baseline": BaselineSection(note="no baseline: no trial at m = 0")})
    path = promotion_file.write(tmp_path / "promotion.json", promotion)
    assert json.loads(path.read_text())["baseline"] == {"note": "no baseline: no trial at m = 0", "differences": {}}
    assert promotion_file.read(tmp_path / "missing.json") is None


@pytest.mark.parametrize(
    "text, message", [("{not json", "not valid JSON"), ('{"trials": []}', "not a promotion file \\(experiment")]
)
def test_a_file_that_is_not_a_promotion_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "promotion.json"
    path.write_text(text)
    with pytest.raises(ExperimentError, match=message) as error:
        promotion_file.read(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
