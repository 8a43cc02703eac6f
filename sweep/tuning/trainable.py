"""The Tune trainable: one trial of a sweep, or one extra-seed retraining of a promoted configuration, on a worker.

Both are `sweep.trial.run` of the trial config `sweep.tuning.space.trial_config` makes, reported through `TuneReporter`
and resumed from Tune's checkpoint when a retry has one. The config Tune passes is either the searched values of a
sweep trial (what OptunaSearch samples) or, for a retraining, {RETRAIN_KEY: {"trial_id", "params"}, SEED_OFFSET_KEY:
k}, trained with seed spec.seed + k. A diverging run is not retried (it would diverge again): it keeps its last
good report and its trial directory gets DIVERGED_MARKER with the error, which the results read back.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data.paths import CHECKPOINT_FILE, DIVERGED_MARKER
from sweep.errors import DivergenceError
from sweep.schema.objectives import SELECTION_SCORE, objective_value, selection_score
from sweep.storage.experiment import Experiment
from sweep.tuning import space

if TYPE_CHECKING:
    from evaluation.checkpoint import Checkpoint

RETRAIN_KEY = "retrain"
SEED_OFFSET_KEY = "seed_offset"


def report_row(metrics: dict[str, Any], objective: str, selection: str, selection_from_epoch: int) -> dict[str, Any]:
    """The row a trial reports to Tune: its validation metrics plus the objective, the selection metric and the
    selection score Tune keeps checkpoints by (sweep.schema.objectives)."""
    row = dict(metrics)
    for name in (objective, selection):
        value = objective_value(metrics, name)
        if value is not None:
            row[name] = value
    score = selection_score(metrics, selection, selection_from_epoch)
    if score is not None:
        row[SELECTION_SCORE] = score
    return row


class TuneReporter:
    """Reporter for `sweep.trial.run` under Ray Tune: metrics plus the objective, the checkpoint selection metric
    (val_acc_mean is computed here) and the selection score Tune keeps checkpoints by, and the checkpoint."""

    def __init__(self, objective: str, selection: str | None = None, selection_from_epoch: int = 1) -> None:
        self.objective = objective
        self.selection = selection or objective
        self.selection_from_epoch = selection_from_epoch
        self.reports = 0

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        """Training metrics go to Tune with the next validation report (ASHA compares trials on those only)."""

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint) -> None:
        """Send one validation row and its checkpoint to Tune."""
        from ray import tune

        row = report_row(metrics, self.objective, self.selection, self.selection_from_epoch)
        with tempfile.TemporaryDirectory(prefix="negmargin-ckpt-") as directory:
            checkpoint.save(Path(directory) / CHECKPOINT_FILE)
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(directory))
        self.reports += 1

    def report_divergence(self, error: DivergenceError) -> None:
        """Close a run that diverged before its first validation: Tune needs one row with the objective, so it
        gets -inf (no score: results and ASHA rank it last) and `diverged`, without a checkpoint."""
        from ray import tune

        if self.reports == 0:
            tune.report({"epoch": error.epoch, self.objective: float("-inf"), "diverged": True})


def load_checkpoint_state(checkpoint: Any, log: Callable[[str], None] = print) -> Checkpoint | None:
    """The checkpoint inside a Tune checkpoint (evaluation.checkpoint.Checkpoint.load), or None.

    One that cannot be read (a storage fault cut its file short, or its file was removed as half-written:
    sweep.storage.trial_checkpoints) is not trained from: the newest earlier checkpoint of the same trial that reads
    is, else none (the trial starts again from its first epoch); `log` is told so in one line."""
    if checkpoint is None:
        return None
    from evaluation.checkpoint import Checkpoint
    from evaluation.errors import EvaluationError

    with checkpoint.as_directory() as directory:
        try:
            return Checkpoint.load(Path(directory))
        except EvaluationError as error:
            problem = str(error)
    registered = Path(checkpoint.path)
    earlier = sorted(path for path in registered.parent.glob("checkpoint_*") if path.name < registered.name)
    for candidate in reversed(earlier):
        try:
            found = Checkpoint.load(candidate)
        except EvaluationError:
            continue
        log(f"Resuming:    {problem}; the trial continues from {candidate.name} (epoch {found.epoch}) instead")
        return found
    log(f"Resuming:    {problem}; no earlier checkpoint of the trial reads, so it starts again from its first epoch")
    return None


def point_of(config: dict[str, Any], spec_seed: int) -> tuple[dict[str, Any], int]:
    """(searched values, training seed) of the config Tune passes: a sweep point, or a retraining of one."""
    if RETRAIN_KEY in config:
        return dict(config[RETRAIN_KEY]["params"]), spec_seed + int(config[SEED_OFFSET_KEY])
    return dict(config), spec_seed


def train(config: dict[str, Any], *, spec_data: dict[str, Any], experiment_root: str) -> None:
    """Tune's trainable: the trial of `config`, resumed from Tune's checkpoint if there is one."""
    from ray import tune

    from sweep.trial import phases

    with phases.recording_to_env_dir(tune.get_context().get_trial_id()):  # benchmarks/trial_startup.py only
        _train(config, spec_data, experiment_root)


def _train(config: dict[str, Any], spec_data: dict[str, Any], experiment_root: str) -> None:
    from ray import tune

    from sweep import trial
    from sweep.schema.spec import parse
    from sweep.trial import phases

    run = trial.run  # imports the training code (torch, data, models, evaluation) in a new worker
    phases.mark("imports")
    spec = parse(spec_data)
    params, seed = point_of(config, spec.seed)
    trial_config = space.trial_config(spec, params, Experiment(Path(experiment_root)).episodes_dir, seed=seed)
    checkpoint = load_checkpoint_state(tune.get_checkpoint())
    reporter = TuneReporter(spec.objective, spec.selection, spec.selection_from_epoch)
    try:
        run(trial.TrialConfig.from_dict(trial_config), reporter, checkpoint=checkpoint)
    except DivergenceError as error:
        Path(tune.get_context().get_trial_dir(), DIVERGED_MARKER).write_text(f"{error}\n")
        reporter.report_divergence(error)


def with_resources(spec: Any, experiment: Experiment) -> Any:
    """The trainable bound to `spec` and `experiment`, asking each trial for the spec's resources (within a Ray
    session: `resources.gpu: auto` may probe the cluster)."""
    from ray import tune

    trainable = tune.with_parameters(
        train, spec_data=spec.model_dump(mode="json"), experiment_root=str(experiment.root)
    )
    from sweep.tuning.gpu_packing import trial_gpus

    resources = {"cpu": spec.resources.cpu}
    gpus = trial_gpus(spec, experiment)  # resources.gpu, or what its probe decided when it is "auto"
    if gpus:
        resources["gpu"] = gpus
    return tune.with_resources(trainable, resources)
