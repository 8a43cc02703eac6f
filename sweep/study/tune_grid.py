"""The study's grid as one Ray Tune experiment: every margin × seed trained at full budget, resumable.

Each run is the sweep's own trainable (sweep.tuning.trainable: `sweep.trial.run` of `sweep.tuning.space.trial_config`)
on a spec
whose dataset holds out the study's base part, so a run is exactly a sweep trial of the selected configuration at
that margin, less the held-out images. Tune's state lives in study/tune; a rerun restores it: finished runs are kept
as they are, unfinished and errored ones continue from their last checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clusters.session import alive_nodes, ray_session
from clusters.storage import check_storage_reachable
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import TUNE_NAME, Experiment
from sweep.study.layout import StudyDir
from sweep.study.margins import label
from sweep.study.request import StudyRequest
from sweep.tuning import grid_runner, trainable


@dataclass(frozen=True)
class MarginRun:
    """One trained point of the grid: its margin, training seed, best checkpoint (by the objective) or failure."""

    margin: float
    seed: int
    checkpoint: Path | None
    failure: str | None = None


def holdout_spec(spec: SweepSpec, request: StudyRequest) -> SweepSpec:
    """The experiment's spec with the study's base part held out of every run's pretraining."""
    dataset = spec.dataset.model_copy(
        update={"holdout_fraction": request.holdout_fraction, "holdout_seed": request.holdout_seed}
    )
    return spec.model_copy(update={"dataset": dataset})


def train_grid(
    spec: SweepSpec, experiment: Experiment, study: StudyDir, request: StudyRequest, address: str | None = None
) -> list[MarginRun]:
    """Train (or finish training) every margin × seed of `request`; one MarginRun per run, in grid order."""
    from ray import tune

    run_spec = holdout_spec(spec, request)
    margins = {label(margin): margin for margin in request.margins}
    points = [{"trial_id": name, "params": {**request.params, "margin": m}} for name, m in margins.items()]
    study.root.mkdir(parents=True, exist_ok=True)
    with ray_session(address):
        check_storage_reachable(str(experiment.root), alive_nodes())
        if study.tune_dir.is_dir() and tune.Tuner.can_restore(str(study.tune_dir)):
            tuner = tune.Tuner.restore(
                str(study.tune_dir),
                trainable=trainable.with_resources(run_spec, experiment),
                resume_unfinished=True,
                resume_errored=True,
            )
        else:
            offsets = list(range(request.seeds))
            tuner = grid_runner.grid_tuner(run_spec, experiment, points, offsets, storage=study.root, name=TUNE_NAME)
        results = tuner.fit()
    runs = [grid_runner.seed_run(result, run_spec) for result in results]  # type: ignore[attr-defined]  # iterates by __getitem__
    ordered = [MarginRun(margins[run.trial_id], run.seed, run.checkpoint, run.failure) for run in runs]
    return sorted(ordered, key=lambda run: (run.margin, run.seed))
