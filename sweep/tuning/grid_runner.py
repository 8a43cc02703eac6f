"""A Tune grid of full-budget runs: every point (a label and its searched values) trained with seeds spec.seed + k,
with the sweep's own trainable, no early stopping, retries from checkpoints and the best checkpoint kept.

Promotion's extra-seed retraining (sweep.workflows.extra_seeds) and the margin study (sweep.study.tune_grid) run their
grids through `grid_tuner` and read each run back with `seed_run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.paths import DIVERGED_MARKER, checkpoint_file
from sweep.schema.objectives import SELECTION_SCORE
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import Experiment
from sweep.storage.results import validation_metrics
from sweep.tuning import trainable


@dataclass(frozen=True)
class SeedRun:
    """One retraining of a promoted configuration: its seed, and its best checkpoint with the validation metrics
    reported with it (`val_…`, as a promoted trial's in promotion.json), or why it has none."""

    trial_id: str
    seed: int
    checkpoint: Path | None
    failure: str | None = None  # "diverged: …" or "error: …" when the run has no checkpoint to score
    val: dict[str, float] = field(default_factory=dict)


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

    from sweep.tuning.tune_loggers import result_loggers

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
    """What one run of a grid left: its best checkpoint and the validation reported with it, or the divergence /
    error that kept it from having one."""
    trial_id = result.config[trainable.RETRAIN_KEY]["trial_id"]
    seed = spec.seed + int(result.config[trainable.SEED_OFFSET_KEY])
    marker = Path(result.path) / DIVERGED_MARKER
    if marker.exists():
        return SeedRun(trial_id, seed, None, f"diverged: {marker.read_text().strip()}")
    best = best_checkpoint(result)
    if best is None:
        reason = str(result.error).strip().splitlines()[0] if result.error else "no validation report"
        return SeedRun(trial_id, seed, None, f"error: {reason}")
    checkpoint, metrics = best
    return SeedRun(trial_id, seed, checkpoint_file(checkpoint.path), val=validation_metrics(metrics))


def best_checkpoint(result: Any) -> tuple[Any, dict[str, Any]] | None:
    """(checkpoint, the report Tune kept it with) of a run's highest selection score, the first of equal ones as
    Tune's `Result.get_best_checkpoint`; None when the run kept none with a score."""
    kept = [pair for pair in result.best_checkpoints or [] if pair[1].get(SELECTION_SCORE) is not None]
    return max(kept, key=lambda pair: pair[1][SELECTION_SCORE]) if kept else None
