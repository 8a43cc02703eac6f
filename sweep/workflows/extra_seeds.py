"""Optional part of promotion: retrain each promoted configuration with more training seeds, and report across seeds.

One promoted trial is one draw of the training randomness; `promotion.extra_seeds: N` retrains its configuration with
seeds seed+1 … seed+N (full budget, no early stopping) on the cluster, with the sweep's own trainable
(sweep.tuning.trainable), scores every run's best checkpoint on the same test episodes, and reports the mean and
standard deviation of the test accuracy over the runs that trained. It also records each run's validation at its
best checkpoint and their mean, which the selections file and the report choose the answer on (never on test). A run
whose loss diverged is not retried and has no score: it is listed under "diverged" with its seed, so the seed count
never shrinks without a word.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from sweep.schema.objectives import validation_score
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import Experiment
from sweep.storage.promotion_file import AcrossSeeds, FailedSeed, PromotedTrial
from sweep.tuning import trainable
from sweep.tuning.grid_runner import SeedRun, grid_tuner, seed_run

SEEDS_NAME = "seeds"


def retrain(
    spec: SweepSpec, experiment: Experiment, promoted: list[PromotedTrial], address: str | None = None
) -> list[SeedRun]:
    """Train every promoted configuration with `spec.promotion.extra_seeds` more seeds; one SeedRun per run."""
    from clusters.session import ray_session

    points = [{"trial_id": trial.trial_id, "params": trial.params} for trial in promoted]
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


def across_seeds(test_means: list[float], val_scores: list[float]) -> AcrossSeeds:
    """Mean and sample standard deviation of per-run test accuracies (one run per seed), and the mean of the same
    runs' validation scores."""
    return AcrossSeeds(
        mean=statistics.fmean(test_means),
        std=statistics.stdev(test_means) if len(test_means) > 1 else 0.0,
        n=len(test_means),
        runs=test_means,
        val_mean=statistics.fmean(val_scores),
        val_runs=val_scores,
    )


def with_seed_results(
    trials: list[PromotedTrial], runs: list[SeedRun], score: Callable[[SeedRun], dict[int, float]], objective: str
) -> list[PromotedTrial]:
    """Each trial with its `seeds` per shot (its own test mean and validation score plus those of the retrained seeds
    that trained; `score` gives a run's test mean per shot, `objective` is the validation's fallback:
    sweep.schema.objectives.validation_score) and its `seeds_failed`: the seeds that did not, with the reason."""
    updated = []
    for trial in trials:
        tests: dict[str, list[float]] = {shot: [test.mean] for shot, test in trial.test.items()}
        vals = {shot: [validation_score(trial.val, shot, objective)] for shot in trial.test}
        own_runs = [run for run in runs if run.trial_id == trial.trial_id]
        for run in own_runs:
            if run.checkpoint is None:
                continue
            for shot, mean in score(run).items():
                tests[str(shot)].append(mean)
                vals[str(shot)].append(validation_score(run.val, shot, objective))
        failed = [FailedSeed(seed=run.seed, reason=run.failure) for run in own_runs if run.failure]
        seeds = {shot: across_seeds(means, vals[shot]) for shot, means in tests.items()}
        updated.append(trial.model_copy(update={"seeds": seeds, "seeds_failed": failed}))
    return updated
