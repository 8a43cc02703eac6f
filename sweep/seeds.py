"""Optional part of promotion: retrain each promoted configuration with more training seeds, and report across seeds.

One promoted trial is one draw of the training randomness; `promotion.extra_seeds: N` retrains its configuration with
seeds seed+1 … seed+N (full budget, no early stopping) on the cluster, with the sweep's own trainable
(sweep.trainable), scores every run's best checkpoint on the same test episodes, and reports the mean and standard
deviation of the test accuracy over the runs that trained. A run whose loss diverged is not retried and has no
score: it is listed under "diverged" with its seed, so the seed count never shrinks without a word.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep import trainable
from sweep.experiment import Experiment
from sweep.objectives import SELECTION_SCORE
from sweep.spec import SweepSpec
from sweep.trial.checkpoints import DIVERGED_MARKER, checkpoint_file

SEEDS_NAME = "seeds"


@dataclass(frozen=True)
class SeedRun:
    """One retraining of a promoted configuration: its seed, and its best checkpoint or why it has none."""

    trial_id: str
    seed: int
    checkpoint: Path | None
    failure: str | None = None  # "diverged: …" or "error: …" when the run has no checkpoint to score


def retrain(
    spec: SweepSpec, experiment: Experiment, promoted: list[dict[str, Any]], address: str | None = None
) -> list[SeedRun]:
    """Train every promoted configuration with `spec.promotion.extra_seeds` more seeds; one SeedRun per run."""
    from clusters.session import ray_session

    points = [{"trial_id": trial["trial_id"], "params": trial["params"]} for trial in promoted]
    offsets = list(range(1, spec.promotion.extra_seeds + 1))
    with ray_session(address):
        tuner = restored_grid(spec, experiment, points, offsets) or grid_tuner(
            spec, experiment, points, offsets, storage=experiment.root, name=SEEDS_NAME
        )
        results = tuner.fit()
    return [seed_run(result, spec) for result in results]


def restored_grid(
    spec: SweepSpec, experiment: Experiment, points: list[dict[str, Any]], seed_offsets: list[int]
) -> Any:
    """The retraining grid an interrupted promotion left in <experiment>/seeds, restored (finished runs kept,
    unfinished ones continued from their checkpoints), when it trains exactly these points and seeds; else None."""
    from ray import tune

    path = experiment.root / SEEDS_NAME
    if not (path.is_dir() and tune.Tuner.can_restore(str(path))):
        return None
    planned = {
        (trial.config[trainable.RETRAIN_KEY]["trial_id"], int(trial.config[trainable.SEED_OFFSET_KEY]))
        for trial in tune.ExperimentAnalysis(str(path)).trials
    }
    if planned != {(point["trial_id"], offset) for point in points for offset in seed_offsets}:
        return None
    return tune.Tuner.restore(
        str(path), trainable=trainable.with_resources(spec, experiment), resume_unfinished=True, resume_errored=True
    )


def grid_tuner(
    spec: SweepSpec,
    experiment: Experiment,
    points: list[dict[str, Any]],
    seed_offsets: list[int],
    *,
    storage: Path,
    name: str,
) -> Any:
    """A Tuner that trains every point ({"trial_id": label, "params": searched values}) with seed spec.seed + k for
    every k of `seed_offsets`, at full budget (no early stopping), with the sweep's trainable, retries from
    checkpoints (FailureConfig) and the best checkpoint by the selection metric kept; Tune's state in storage/name."""
    from ray import tune

    param_space = {
        trainable.RETRAIN_KEY: tune.grid_search(points),
        trainable.SEED_OFFSET_KEY: tune.grid_search(list(seed_offsets)),
    }
    return tune.Tuner(
        trainable.with_resources(spec, experiment),
        param_space=param_space,
        tune_config=tune.TuneConfig(metric=spec.objective, mode="max", max_concurrent_trials=spec.max_concurrent),
        run_config=grid_run_config(spec, storage, name),
    )


def grid_run_config(spec: SweepSpec, storage: Path, name: str) -> Any:
    """The RunConfig of a grid of full-budget runs: retries, and the best checkpoint by the selection metric kept."""
    from ray import tune

    from sweep.tune_loggers import result_loggers

    return tune.RunConfig(
        name=name,
        storage_path=str(storage),
        verbose=1,
        callbacks=result_loggers(),  # no TensorBoard files of Tune's own under the experiment
        failure_config=tune.FailureConfig(max_failures=2),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=1, checkpoint_score_attribute=SELECTION_SCORE, checkpoint_score_order="max"
        ),
    )


def seed_run(result: Any, spec: SweepSpec) -> SeedRun:
    """What one run of a grid left: its best checkpoint, or the divergence / error that kept it from having one."""
    trial_id = result.config[trainable.RETRAIN_KEY]["trial_id"]
    seed = spec.seed + int(result.config[trainable.SEED_OFFSET_KEY])
    marker = Path(result.path) / DIVERGED_MARKER
    if marker.exists():
        return SeedRun(trial_id, seed, None, f"diverged: {marker.read_text().strip()}")
    best = result.get_best_checkpoint(SELECTION_SCORE, "max")
    if best is None:
        reason = str(result.error).strip().splitlines()[0] if result.error else "no validation report"
        return SeedRun(trial_id, seed, None, f"error: {reason}")
    return SeedRun(trial_id, seed, checkpoint_file(best.path))


def across_seeds(test_means: list[float]) -> dict[str, Any]:
    """Mean and sample standard deviation of per-run test accuracies (one run per seed)."""
    return {
        "mean": statistics.fmean(test_means),
        "std": statistics.stdev(test_means) if len(test_means) > 1 else 0.0,
        "n": len(test_means),
        "runs": test_means,
    }


def add_seed_results(
    promotion: dict[str, Any], runs: list[SeedRun], score: Callable[[SeedRun], dict[int, float]]
) -> None:
    """Fill `trial["seeds"][shot]` of every promoted trial: its own test mean plus the retrained seeds' that trained
    (`score` gives a run's test mean per shot), and `trial["seeds_failed"]`: the seeds that did not, with the reason."""
    for trial in promotion["trials"]:
        per_shot: dict[str, list[float]] = {shot: [test["mean"]] for shot, test in trial["test"].items()}
        own_runs = [run for run in runs if run.trial_id == trial["trial_id"]]
        for run in own_runs:
            if run.checkpoint is None:
                continue
            for shot, mean in score(run).items():
                per_shot[str(shot)].append(mean)
        trial["seeds"] = {shot: across_seeds(means) for shot, means in per_shot.items()}
        trial["seeds_failed"] = [{"seed": run.seed, "reason": run.failure} for run in own_runs if run.failure]
