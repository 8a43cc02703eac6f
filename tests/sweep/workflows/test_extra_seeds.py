"""Promotion's extra seeds: a retrained run is read back with its best checkpoint and the validation reported with it,
and each configuration records its runs' validation and their mean beside their test means (what the answer is chosen
on: tests/sweep/test_selections.py). The real retraining on a Ray cluster is in test_sweep_end_to_end.py."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from ray.tune import Checkpoint, Result

from data.paths import CHECKPOINT_FILE
from sweep.schema.objectives import SELECTION_SCORE
from sweep.storage.promotion_file import PromotedTrial, ShotScore
from sweep.tuning import trainable
from sweep.tuning.grid_runner import SeedRun, seed_run
from sweep.workflows import extra_seeds

from helpers.specs import full_search_spec

SPEC = full_search_spec()  # seed 0, objective val_acc_mean


def _kept(tmp_path: Path, epoch: int, score: float | None) -> tuple[Checkpoint, dict]:
    """A checkpoint directory Tune kept, with the report it came with (epoch, 1-shot validation = score)."""
    directory = tmp_path / f"checkpoint_{epoch:06d}"
    directory.mkdir()
    (directory / CHECKPOINT_FILE).write_bytes(b"")
    metrics = {"epoch": epoch, "val_acc_1shot": score, "val_ci_1shot": 2.0, "train_acc": 0.5, "training_iteration": 1}
    if score is not None:
        metrics[SELECTION_SCORE] = score
    return Checkpoint.from_directory(str(directory)), metrics


def _result(path: Path, kept: list[tuple[Checkpoint, dict]], error: Exception | None = None) -> Result:
    config = {trainable.RETRAIN_KEY: {"trial_id": "t1", "params": {}}, trainable.SEED_OFFSET_KEY: 2}
    return Result(
        metrics={"config": config}, checkpoint=None, error=error, path=str(path), best_checkpoints=kept or None
    )


def test_a_retrained_run_is_read_with_its_best_checkpoint_and_the_validation_reported_with_it(tmp_path: Path):
    kept = [_kept(tmp_path, 2, 55.0), _kept(tmp_path, 4, 61.0), _kept(tmp_path, 6, 61.0), _kept(tmp_path, 8, None)]
    run = seed_run(_result(tmp_path, kept), SPEC)
    assert (run.trial_id, run.seed, run.failure) == ("t1", SPEC.seed + 2, None)
    assert run.checkpoint == tmp_path / "checkpoint_000004" / CHECKPOINT_FILE  # the first of equal scores, as Tune
    assert run.val == {"val_acc_1shot": 61.0, "val_ci_1shot": 2.0}  # the val_ metrics of that report, nothing else


def test_a_retrained_run_without_a_kept_checkpoint_is_an_error_with_its_reason(tmp_path: Path):
    run = seed_run(_result(tmp_path, [], error=RuntimeError("worker died\nmore")), SPEC)
    assert run.checkpoint is None and run.val == {} and run.failure == "error: worker died"
    unscored = seed_run(_result(tmp_path, [_kept(tmp_path, 1, None)]), SPEC)
    assert unscored.checkpoint is None and unscored.failure == "error: no validation report"


def test_each_configuration_records_its_runs_validation_and_their_mean_beside_the_test():
    test = {shot: ShotScore(mean=40.0, ci95=1.0, episodes=30) for shot in ("1", "5")}
    own = {"val_acc_1shot": 50.0, "val_acc_mean": 60.0}  # validated at 1 shot only: 5-shot falls back to the objective
    promoted = PromotedTrial(rank=1, trial_id="t1", params={}, val=own, epoch=3, checkpoint="/c", test=test)
    runs = [
        SeedRun("t1", 1, Path("/r1"), val={"val_acc_1shot": 54.0, "val_acc_mean": 63.0}),
        SeedRun("t1", 2, None, "diverged: loss is nan"),  # no checkpoint: neither its test nor its validation counts
        SeedRun("t1", 3, Path("/r3"), val={"val_acc_1shot": 49.0, "val_acc_mean": 58.5}),
        SeedRun("other", 1, Path("/o1"), val={"val_acc_1shot": 99.0, "val_acc_mean": 99.0}),
    ]
    scores = {Path("/r1"): {1: 41.0, 5: 42.0}, Path("/r3"): {1: 39.0, 5: 38.0}}
    (trial,) = extra_seeds.with_seed_results([promoted], runs, lambda run: scores[run.checkpoint], SPEC.objective)
    one, five = trial.seeds["1"], trial.seeds["5"]
    assert one.runs == [40.0, 41.0, 39.0] and one.val_runs == [50.0, 54.0, 49.0]
    assert five.runs == [40.0, 42.0, 38.0] and five.val_runs == [60.0, 63.0, 58.5]
    for seeds in (one, five):
        assert seeds.n == len(seeds.val_runs) == 3
        assert seeds.val_mean == pytest.approx(statistics.fmean(seeds.val_runs))
    assert [failed.seed for failed in trial.seeds_failed] == [2]
