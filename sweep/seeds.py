"""Optional part of promotion: retrain each promoted configuration with more training seeds, and report across seeds.

One promoted trial is one draw of the training randomness; `promotion.extra_seeds: N` retrains its configuration with
seeds seed+1 … seed+N (full budget, no early stopping) on the cluster, scores every run's best checkpoint on the same
test episodes, and reports the mean and standard deviation of the test accuracy over all N + 1 runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweep import space
from sweep.experiment import Experiment
from sweep.spec import SweepSpec

SEEDS_NAME = "seeds"


def train_seed(
    point: dict[str, Any], *, spec_data: dict[str, Any], experiment_root: str, params_by_trial: dict[str, dict]
) -> None:
    """Tune trainable: the configuration of one promoted trial, trained with another seed."""
    from ray import tune

    from sweep import trial
    from sweep.spec import parse
    from sweep.tuner import TuneReporter, load_checkpoint_state

    spec = parse(spec_data)
    params = params_by_trial[point["trial_id"]]
    config = space.trial_config(
        spec, params, Experiment(Path(experiment_root)), seed=spec.seed + int(point["seed_offset"])
    )
    trial.run(
        trial.TrialConfig.from_dict(config),
        TuneReporter(spec.objective),
        checkpoint=load_checkpoint_state(tune.get_checkpoint()),
    )


def retrain(
    spec: SweepSpec, experiment: Experiment, promoted: list[dict[str, Any]], address: str | None = None
) -> dict[str, list[Path]]:
    """Train every promoted configuration with `spec.promotion.extra_seeds` more seeds; best checkpoint per run."""
    from ray import tune

    from sweep.tuner import CHECKPOINT_FILE, ray_session

    params_by_trial = {trial["trial_id"]: trial["params"] for trial in promoted}
    trainable = tune.with_parameters(
        train_seed,
        spec_data=spec.model_dump(mode="json"),
        experiment_root=str(experiment.root),
        params_by_trial=params_by_trial,
    )
    resources = {"cpu": spec.resources.cpu, **({"gpu": spec.resources.gpu} if spec.resources.gpu else {})}
    param_space = {
        "trial_id": tune.grid_search(list(params_by_trial)),
        "seed_offset": tune.grid_search(list(range(1, spec.promotion.extra_seeds + 1))),
    }
    with ray_session(address):
        tuner = tune.Tuner(
            tune.with_resources(trainable, resources),
            param_space=param_space,
            tune_config=tune.TuneConfig(metric=spec.objective, mode="max", max_concurrent_trials=spec.max_concurrent),
            run_config=tune.RunConfig(
                name=SEEDS_NAME,
                storage_path=str(experiment.root),
                verbose=1,
                failure_config=tune.FailureConfig(max_failures=2),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=spec.objective),
            ),
        )
        results = tuner.fit()
    checkpoints: dict[str, list[Path]] = {trial_id: [] for trial_id in params_by_trial}
    for result in results:
        best = result.get_best_checkpoint(spec.objective, "max")
        if best is not None:
            checkpoints[result.config["trial_id"]].append(Path(best.path) / CHECKPOINT_FILE)
    return checkpoints


def across_seeds(test_means: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation of per-run test accuracies (one run per seed)."""
    return {
        "mean": statistics.fmean(test_means),
        "std": statistics.stdev(test_means) if len(test_means) > 1 else 0.0,
        "n": len(test_means),
        "runs": test_means,
    }


def add_seed_results(
    promotion: dict[str, Any], checkpoints: dict[str, list[Path]], score: Callable[[Path], dict[int, float]]
) -> None:
    """Fill `trial["seeds"][shot]` of every promoted trial: its own test mean plus the retrained seeds'."""
    for trial in promotion["trials"]:
        per_shot: dict[str, list[float]] = {shot: [test["mean"]] for shot, test in trial["test"].items()}
        for checkpoint in checkpoints.get(trial["trial_id"], []):
            for shot, mean in score(checkpoint).items():
                per_shot[str(shot)].append(mean)
        trial["seeds"] = {shot: across_seeds(means) for shot, means in per_shot.items()}
