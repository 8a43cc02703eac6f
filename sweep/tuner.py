"""Ray Tune + Optuna: run the trials of a sweep across a Ray cluster, and resume an interrupted sweep.

Each trial is `sweep.trial.run` with a reporter that calls `ray.tune.report(metrics, checkpoint=…)`; Optuna's TPE
sampler (seeded, stored in `<experiment>/optuna.db`) proposes the points after the first points (sweep.first_points:
the setting's starting points of sweep.published, then the spec's own); Tune keeps checkpoints by the spec's
selection metric; ASHA (time_attr = epoch) stops weak trials early; a trial that fails is retried from its last
checkpoint.
"""

from __future__ import annotations

from typing import Any

from clusters.session import alive_nodes, ray_session
from clusters.storage import check_storage_reachable
from sweep import space, trainable
from sweep.errors import ExperimentError, SpecError
from sweep.experiment import TUNE_NAME, Experiment, trial_dirname
from sweep.first_points import first_points
from sweep.spec import SweepSpec


def _check_storage(experiment: Experiment) -> None:
    """A multi-node cluster needs the experiment on storage every node reaches."""
    check_storage_reachable(str(experiment.root), alive_nodes())


# ---------------------------------------------------------------- building and running the Tuner


def _searcher(spec: SweepSpec, experiment: Experiment) -> Any:
    """Seeded TPE over the spec's space in the experiment's SQLite study (named after the experiment), each Optuna
    trial linked to its Ray trial (sweep.searcher)."""
    import optuna

    from sweep.searcher import LinkedOptunaSearch

    return LinkedOptunaSearch(
        space=space.optuna_space(spec),
        metric=spec.objective,
        mode="max",
        points_to_evaluate=first_points(spec) or None,
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
        study_name=experiment.study_name,
        storage=optuna.storages.RDBStorage(experiment.optuna_url),
        experiment_root=str(experiment.root),
        max_epochs=spec.epochs,
    )


def _run_config(spec: SweepSpec, experiment: Experiment) -> Any:
    """Tune's results and checkpoints under <exp>/tune: JSON and CSV results, no TensorBoard files of Tune's own."""
    from ray import tune

    from sweep.tune_loggers import result_loggers

    return tune.RunConfig(
        name=TUNE_NAME,
        storage_path=str(experiment.root),
        callbacks=result_loggers(),
        failure_config=tune.FailureConfig(max_failures=2),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute=spec.selection, checkpoint_score_order="max"
        ),
        verbose=1,
    )


def _trial_dirname(trial: Any) -> str:
    return trial_dirname(trial.trial_id)


def build_tuner(spec: SweepSpec, experiment: Experiment) -> Any:
    """The Tuner of a sweep: OptunaSearch (seeded TPE, SQLite study), ASHA on epochs, retries from checkpoints."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(
        time_attr="epoch",
        max_t=spec.epochs,
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
    )
    tune_config = tune.TuneConfig(
        metric=spec.objective,
        mode="max",
        search_alg=_searcher(spec, experiment),
        scheduler=scheduler,
        num_samples=spec.num_samples,
        max_concurrent_trials=spec.max_concurrent,
        trial_dirname_creator=_trial_dirname,
    )
    return tune.Tuner(
        trainable.with_resources(spec, experiment), tune_config=tune_config, run_config=_run_config(spec, experiment)
    )


def check_dataset(spec: SweepSpec) -> None:
    """Open the base and val splits (file lists only) so a missing dataset fails before any cluster work."""
    import data

    for split in ("base", "val"):
        dataset = data.build_dataset(spec.dataset.name, spec.dataset.root, split)
        if split == "val" and len(dataset.class_names) < spec.validation.way:
            raise SpecError(
                f"validation.way: {spec.validation.way} exceeds the {len(dataset.class_names)} classes of the val split"
            )


def prepare_validation_episodes(spec: SweepSpec, experiment: Experiment) -> None:
    """Sample the fixed validation episode sets once, before any trial, so every trial scores on the same episodes."""
    import data

    missing = [shot for shot in spec.validation.shots if not experiment.val_episodes(shot).exists()]
    if not missing:
        return
    val = data.build_dataset(spec.dataset.name, spec.dataset.root, "val")
    v = spec.validation
    for shot in missing:
        data.EpisodeSet.load_or_sample(
            experiment.val_episodes(shot),
            val.labels,
            n_way=v.way,
            n_shot=shot,
            n_query=v.queries,
            n_episodes=v.episodes,
            seed=v.seed,
            class_names=val.class_names,
        )


def run(spec: SweepSpec, experiment: Experiment, address: str | None = None) -> Experiment:
    """Run the sweep's trials into `experiment` (made by sweep.experiment.create) and wait for them."""
    prepare_validation_episodes(spec, experiment)
    with ray_session(address):
        _check_storage(experiment)
        build_tuner(spec, experiment).fit()
    return experiment


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
        tuner.fit()
    return experiment
