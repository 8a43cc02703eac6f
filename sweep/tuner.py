"""Ray Tune + Optuna: run the trials of a sweep across a Ray cluster, and resume an interrupted sweep.

Each trial is `sweep.trial.run` with a reporter that calls `ray.tune.report(metrics, checkpoint=…)`; Optuna's TPE
sampler (seeded, stored in `<experiment>/optuna.db`) proposes the points, starting from the published configuration;
ASHA (time_attr = epoch) stops weak trials early; a trial that fails is retried from its last checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sweep import space
from sweep.errors import DivergenceError, ExperimentError, SpecError
from sweep.experiment import STUDY_NAME, TUNE_NAME, Experiment
from sweep.reporters import CHECKPOINT_FILE, DIVERGED_MARKER
from sweep.spec import SweepSpec

LOCALHOST = "127.0.0.1"


# ---------------------------------------------------------------- the trainable (runs on the cluster's workers)


class TuneReporter:
    """Reporter for `sweep.trial.run` under Ray Tune: metrics plus the objective, and the checkpoint as a directory."""

    def __init__(self, objective: str) -> None:
        self.objective = objective

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any]) -> None:
        """Send one validation row and its checkpoint to Tune."""
        import torch
        from ray import tune

        row = dict(metrics)
        value = space.objective_value(row, self.objective)
        if value is not None:
            row[self.objective] = value
        with tempfile.TemporaryDirectory(prefix="negmargin-ckpt-") as directory:
            torch.save(checkpoint, Path(directory) / CHECKPOINT_FILE)
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(directory))


def load_checkpoint_state(checkpoint: Any) -> dict[str, Any] | None:
    """The state dict inside a Tune checkpoint (loaded with weights_only=True), or None."""
    if checkpoint is None:
        return None
    import torch

    with checkpoint.as_directory() as directory:
        return torch.load(Path(directory) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)


def train_trial(params: dict[str, Any], *, spec_data: dict[str, Any], experiment_root: str) -> None:
    """Tune's trainable: one sampled point → one `sweep.trial.run`, resumed from Tune's checkpoint if there is one."""
    from ray import tune

    from sweep import trial
    from sweep.spec import parse

    spec = parse(spec_data)
    experiment = Experiment(Path(experiment_root))
    config = trial.TrialConfig.from_dict(space.trial_config(spec, params, experiment))
    try:
        trial.run(config, TuneReporter(spec.objective), checkpoint=load_checkpoint_state(tune.get_checkpoint()))
    except DivergenceError as error:
        # Deterministic: retrying would diverge again. The trial keeps its last good report; the report says why.
        Path(tune.get_context().get_trial_dir(), DIVERGED_MARKER).write_text(f"{error}\n")


# ---------------------------------------------------------------- connecting to a cluster


def validate_address(address: str) -> None:
    """Reject an address that cannot name a Ray cluster, before anything starts."""
    if address in ("auto", "local") or address.startswith(("ray://", "http://", "https://")):
        if address.startswith(("http://", "https://")):
            raise SpecError(
                f"--address {address}: that is a dashboard/Jobs address; use `negmargin sweep submit` for it, "
                "or give the GCS address HOST:6379 here"
            )
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SpecError(f"--address {address!r}: expected HOST:PORT (e.g. 127.0.0.1:6379), ray://HOST:10001 or auto")


@contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Connect to `address` (or $RAY_ADDRESS); without one, start a local Ray bound to 127.0.0.1. Shut down after."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():  # a caller (a test, a notebook) already chose the cluster
        yield
        return
    if address:
        validate_address(address)
        try:
            ray.init(address=address, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise SpecError(
                f"--address {address}: cannot connect to a Ray cluster there ({str(error).splitlines()[0]})"
            ) from None
    else:
        ray.init(address="local", _node_ip_address=LOCALHOST, dashboard_host=LOCALHOST, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


def _check_storage(experiment: Experiment) -> None:
    """A multi-node cluster needs the experiment on storage every node reaches."""
    import ray

    from sweep.storage_check import check_storage_reachable

    check_storage_reachable(str(experiment.root), [node for node in ray.nodes() if node.get("Alive")])


# ---------------------------------------------------------------- building and running the Tuner


def _trainable(spec: SweepSpec, experiment: Experiment) -> Any:
    from ray import tune

    trainable = tune.with_parameters(
        train_trial, spec_data=spec.model_dump(mode="json"), experiment_root=str(experiment.root)
    )
    resources = {"cpu": spec.resources.cpu}
    if spec.resources.gpu:
        resources["gpu"] = spec.resources.gpu
    return tune.with_resources(trainable, resources)


def _searcher(spec: SweepSpec, experiment: Experiment) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(
        space=space.optuna_space(spec),
        metric=spec.objective,
        mode="max",
        points_to_evaluate=space.first_points(spec) or None,
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
        study_name=STUDY_NAME,
        storage=optuna.storages.RDBStorage(experiment.optuna_url),
    )


def _run_config(spec: SweepSpec, experiment: Experiment) -> Any:
    from ray import tune

    return tune.RunConfig(
        name=TUNE_NAME,
        storage_path=str(experiment.root),
        failure_config=tune.FailureConfig(max_failures=2),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute=spec.objective, checkpoint_score_order="max"
        ),
        verbose=1,
    )


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def build_tuner(spec: SweepSpec, experiment: Experiment) -> Any:
    """The Tuner of a sweep: OptunaSearch (seeded TPE, SQLite study), ASHA on epochs, retries from checkpoints."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(
        time_attr="epoch",
        max_t=spec.budget.max_epochs,
        grace_period=spec.budget.grace_period,
        reduction_factor=spec.budget.reduction_factor,
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
    return tune.Tuner(_trainable(spec, experiment), tune_config=tune_config, run_config=_run_config(spec, experiment))


def check_dataset(spec: SweepSpec) -> None:
    """Open the base and val splits (file lists only) so a missing dataset fails before any cluster work."""
    import data

    for split in ("base", "val"):
        dataset = data.build_dataset(spec.dataset.name, spec.dataset.root, split)
        if split == "val" and len(dataset.class_names) < spec.budget.val_way:
            raise SpecError(
                f"budget.val_way: {spec.budget.val_way} exceeds the {len(dataset.class_names)} classes of the val split"
            )


def prepare_validation_episodes(spec: SweepSpec, experiment: Experiment) -> None:
    """Sample the fixed validation episode sets once, before any trial, so every trial scores on the same episodes."""
    import data

    labels = None
    for shot in spec.shots:
        path = experiment.val_episodes(shot)
        if path.exists():
            continue
        if labels is None:
            dataset = data.build_dataset(spec.dataset.name, spec.dataset.root, "val")
            labels, class_names = dataset.labels, dataset.class_names
        episodes = data.EpisodeSet.sample(
            labels,
            spec.budget.val_way,
            shot,
            spec.budget.val_queries,
            spec.budget.val_episodes,
            spec.seed,
            class_names=class_names,
        )
        episodes.save(path)


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
            trainable=_trainable(spec, experiment),
            resume_unfinished=True,
            resume_errored=True,
        )
        tuner.fit()
    return experiment
