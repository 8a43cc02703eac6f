"""Ray Tune + Optuna: run the trials of a sweep across a Ray cluster, and resume an interrupted sweep.

Each trial is `sweep.trial.run` with a reporter that calls `ray.tune.report(metrics, checkpoint=…)`; Optuna's TPE
sampler (seeded, stored in `<experiment>/optuna.db`) proposes the points after the first points
(sweep.schema.first_points:
the setting's starting points of sweep.schema.published, then the spec's own); Tune keeps checkpoints by the spec's
selection metric; ASHA (time_attr = epoch) stops weak trials early; a trial that fails is retried from its last
checkpoint.
"""

from __future__ import annotations

from typing import Any

from clusters.session import alive_nodes, ray_session
from clusters.storage import check_storage_reachable
from sweep.errors import ExperimentError
from sweep.schema.first_points import first_points
from sweep.schema.objectives import SELECTION_SCORE
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import TUNE_NAME, Experiment, trial_dirname
from sweep.tuning import space, trainable

# A trial that ends hands its Ray worker to the next one: imports, CUDA context, cuDNN autotuning and torch.optim's
# first-use import of torch._dynamo (~2 s) are paid once per worker, not once per trial (benchmarks/trial_startup.py).
REUSE_ACTORS = True


def _check_storage(experiment: Experiment) -> None:
    """A multi-node cluster needs the experiment on storage every node reaches."""
    check_storage_reachable(str(experiment.root), alive_nodes())


# ---------------------------------------------------------------- building and running the Tuner


def sampler(spec: SweepSpec) -> Any:
    """Optuna's sampler as spec.searcher says, seeded with the sweep seed, every setting explicit."""
    import optuna

    settings = spec.searcher
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(
        seed=spec.seed,
        n_startup_trials=settings.n_startup_trials,
        multivariate=settings.multivariate,
        constant_liar=settings.constant_liar,
    )


def searcher(spec: SweepSpec, experiment: Experiment, storage: Any = None) -> Any:
    """The spec's sampler over its space in the experiment's SQLite study (named after the experiment), each Optuna
    trial linked to its Ray trial and told its value as spec.searcher says (sweep.tuning.searcher). `storage`: another
    Optuna storage for the study (the search replay's in-memory one)."""
    import optuna

    from sweep.tuning.searcher import LinkedOptunaSearch

    return LinkedOptunaSearch(
        space=space.optuna_space(spec),
        metric=spec.objective,
        mode="max",
        points_to_evaluate=first_points(spec) or None,
        sampler=sampler(spec),
        study_name=experiment.study_name,
        storage=storage if storage is not None else optuna.storages.RDBStorage(experiment.optuna_url),
        experiment_root=str(experiment.root),
        max_epochs=spec.epochs,
        trial_value=spec.searcher.trial_value,
        stopped_trials=spec.searcher.stopped_trials,
        selection=(spec.selection, spec.selection_from_epoch),
    )


def scheduler(spec: SweepSpec) -> Any:
    """ASHA on epochs: rungs at grace_period × reduction_factor^k below the budget (none when grace = epochs)."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="epoch",
        max_t=spec.epochs,
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
    )


def _run_config(spec: SweepSpec, experiment: Experiment) -> Any:
    """Tune's results and checkpoints under <exp>/tune: JSON and CSV results, no TensorBoard files of Tune's own."""
    from ray import tune

    from sweep.tuning.storage_watch import StorageWatch
    from sweep.tuning.tune_loggers import result_loggers

    return tune.RunConfig(
        name=TUNE_NAME,
        storage_path=str(experiment.root),
        callbacks=[*result_loggers(), StorageWatch(str(experiment.root), str(experiment.tune_dir))],
        failure_config=tune.FailureConfig(max_failures=2),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute=SELECTION_SCORE, checkpoint_score_order="max"
        ),
        verbose=1,
    )


def _trial_dirname(trial: Any) -> str:
    return trial_dirname(trial.trial_id)


def build_tuner(spec: SweepSpec, experiment: Experiment) -> Any:
    """The Tuner of a sweep: OptunaSearch (seeded sampler, SQLite study), ASHA on epochs, retries from checkpoints."""
    from ray import tune

    tune_config = tune.TuneConfig(
        metric=spec.objective,
        mode="max",
        search_alg=searcher(spec, experiment),
        scheduler=scheduler(spec),
        num_samples=spec.num_samples,
        max_concurrent_trials=spec.max_concurrent,
        trial_dirname_creator=_trial_dirname,
        reuse_actors=REUSE_ACTORS,
    )
    return tune.Tuner(
        trainable.with_resources(spec, experiment), tune_config=tune_config, run_config=_run_config(spec, experiment)
    )


def run(spec: SweepSpec, experiment: Experiment, address: str | None = None) -> Experiment:
    """Run the sweep's trials into `experiment` (made by sweep.storage.experiment.create, its validation episodes
    sampled by sweep.workflows.preflight) and wait for them."""
    with ray_session(address):
        _check_storage(experiment)
        _fit(build_tuner(spec, experiment))
    return experiment


def _fit(tuner: Any) -> None:
    """Run the Tuner; a storage fault (sweep.tuning.storage_watch) ends it as an OSError, the watch detached."""
    from sweep.tuning import storage_watch

    try:
        tuner.fit()
    finally:
        storage_watch.detach_all()


def resume(experiment: Experiment, address: str | None = None) -> Experiment:
    """Finish an interrupted sweep: finished trials stay as they are, errored ones continue from their checkpoints."""
    from ray import tune

    spec = experiment.spec()
    if not experiment.tune_dir.is_dir():
        raise ExperimentError(f"{experiment.root}: no Ray Tune state to resume (the sweep never started)")
    with ray_session(address):
        if not tune.Tuner.can_restore(str(experiment.tune_dir)):
            raise ExperimentError(f"{experiment.tune_dir}: Ray Tune cannot restore this experiment")
        _check_storage(experiment)
        tuner = tune.Tuner.restore(
            str(experiment.tune_dir),
            trainable=trainable.with_resources(spec, experiment),
            resume_unfinished=True,
            resume_errored=True,
        )
        _fit(tuner)
    return experiment
