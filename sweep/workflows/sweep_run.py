"""A sweep as one idempotent command: `negmargin sweep run SPEC --experiment DIR` starts the experiment on its first
call and resumes it on every later one, so a scheduler (a RayJob's backoffLimit, a Kubernetes Job, Slurm's requeue,
cron) may simply repeat the command after losing the driver or the whole cluster.

Each call, holding the experiment's lease (sweep.storage.lease) from start to end, runs the stages not yet done:
    trials     a new sweep (no restorable Ray Tune state), or Tune's saved state restored: finished trials kept,
               unfinished ones continued from their checkpoints, the Optuna study continued
    promotion  the top-k trials on the test episodes (extra-seed retraining resumed, sweep.workflows.extra_seeds), when
    promoting report     report.md, the figure and the TensorBoard files
and records each in progress.json (written atomically once the stage has finished), so a stage that a dead driver
left half done runs again, and a stage done is never redone. A call that finds every stage done prints the report and
touches nothing. The spec must be the one the experiment was started with (a changed one is one ExperimentError line,
before anything is written).

A fault of the experiment's filesystem (full, over quota, read-only, stale, I/O error) met anywhere in a call ends it
with one StorageFaultError line naming the path, the fault and this call's command (sweep.storage.faults), the lease
released. Before the trials start, the free space is compared with what they will write (sweep.storage.space_needed):
one warning line when it is short, a refusal when not even one trial's checkpoint fits. Ray Tune's saved state is
read back before it is restored: an unreadable one is replaced by the copy of Tune's last save
(sweep.storage.tune_state), in one line; trial checkpoints a fault left half-written are removed
(sweep.storage.trial_checkpoints), in one line, and a trial never trains from one (sweep.tuning.trainable).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweep.errors import ExperimentError, StorageFaultError
from sweep.schema.spec import SweepSpec
from sweep.storage import experiment as experiments
from sweep.storage import faults, space_needed, trial_checkpoints, tune_state
from sweep.storage import progress_file as progress_files
from sweep.storage.experiment import Experiment
from sweep.storage.lease import LEASE_DIR
from sweep.storage.progress_file import Attempt, Progress

TRIALS, PROMOTION, REPORT = "trials", "promotion", "report"
IGNORED_SPEC_KEYS = ("storage_path",)  # where experiments go: the experiment directory itself is given


# ---------------------------------------------------------------- the experiment directory and its progress


def progress_file(experiment: Experiment) -> Path:
    """<experiment>/progress.json: the stages done and every call that worked on the experiment."""
    return progress_files.path_of(experiment.root)


def read_progress(experiment: Experiment) -> Progress:
    """The stages done and the attempts (empty before the first call); ExperimentError (one line) if damaged."""
    return progress_files.read(progress_file(experiment))


def mark_done(experiment: Experiment, stage: str) -> None:
    """Record that `stage` has finished (atomically: a driver killed before this line leaves it to be redone)."""
    progress = read_progress(experiment).with_done(stage, _now())
    progress_files.write(progress_file(experiment), progress)


def stages(promote: bool) -> list[str]:
    """The stages of a sweep, in order."""
    return [TRIALS, PROMOTION, REPORT] if promote else [TRIALS, REPORT]


def finished(experiment: Experiment, promote: bool, log: Callable[[str], None]) -> bool:
    """Whether every stage of the sweep (with or without promotion) is done; when it is, `log` is told that there is
    nothing to do."""
    if not all(stage in read_progress(experiment).done for stage in stages(promote)):
        return False
    log(f"Experiment:  {experiment.root} (finished: nothing to do)")
    return True


def spec_differences(stored: SweepSpec, given: SweepSpec) -> list[str]:
    """Dotted keys whose values differ between two specs (storage_path aside)."""
    left, right = _flatten(stored.model_dump(mode="json")), _flatten(given.model_dump(mode="json"))
    keys = sorted(set(left) | set(right))
    return [key for key in keys if key.split(".")[0] not in IGNORED_SPEC_KEYS and left.get(key) != right.get(key)]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def check_can_hold(root: Path, spec: SweepSpec) -> Experiment | None:
    """The experiment at `root` when it exists and was started with `spec`; None when `root` is free for a new one
    (missing or empty). ExperimentError, writing nothing, when `root` is something else or the spec changed."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise ExperimentError(f"{root}: exists and is not a directory")
    if not (root / "spec.yaml").is_file():
        if all(entry.name == LEASE_DIR for entry in root.iterdir()):  # empty, or only the lease this call took
            return None
        raise ExperimentError(f"{root}: exists and is not an experiment directory (no spec.yaml)")
    experiment = experiments.open_existing(root)
    changed = spec_differences(experiment.spec(), spec)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise ExperimentError(
            f"{root}: the spec differs from the one this experiment was started with ({shown}); "
            "give the same spec to resume it, or a new --experiment directory for a new sweep"
        )
    return experiment


# ---------------------------------------------------------------- the stages


def run_trials(spec: SweepSpec, experiment: Experiment, address: str | None, log: Callable[[str], None]) -> None:
    """Start the sweep's trials, or restore and continue them from Ray Tune's saved state."""
    from ray import tune

    from sweep.storage import optuna_study
    from sweep.tuning import tuner
    from sweep.workflows import preflight

    restorable = saved_state_usable(experiment, log)
    if restorable and tune.Tuner.can_restore(str(experiment.tune_dir)):
        remove_partial_checkpoints(experiment, log)
        known = saved_trial_ids(experiment)
        closed = optuna_study.close_orphaned_trials(experiment, known)
        log(
            f"Resuming:    {len(known)} trials in Ray Tune's saved state"
            + (f"; {closed} Optuna trials never saved by Tune marked failed" if closed else "")
        )
        tuner.resume(experiment, address=address)
        return
    if experiment.tune_dir.exists():  # a driver died before Tune first saved its state: start again beside it
        aside = experiment.root / f"{experiment.tune_dir.name}-unsaved-{time.strftime('%Y%m%d-%H%M%S')}"
        experiment.tune_dir.rename(aside)
        log(f"Starting:    Ray Tune never saved its state; what it wrote is kept in {aside.name}")
    closed = optuna_study.close_orphaned_trials(experiment, set())
    if closed:
        log(f"             {closed} Optuna trials of that attempt marked failed")
    preflight.prepare_validation_episodes(spec, experiment)
    tuner.run(spec, experiment, address=address)


def saved_state_usable(experiment: Experiment, log: Callable[[str], None]) -> bool:
    """Whether Ray Tune's saved state can be restored. A state that does not read back whole (a fault truncated it)
    is replaced by the copy of Tune's last save (sweep.storage.tune_state), in one line; ExperimentError when it was
    saved but no copy was kept. False when Tune never saved a state (no tune/, or no experiment state in it)."""
    tune_dir = experiment.tune_dir
    if not tune_dir.is_dir():
        return False
    broken = tune_state.problems(tune_dir)
    if not broken:
        return True
    shown = "; ".join(f"{path.name} {reason}" for path, reason in sorted(broken.items()))
    restored = tune_state.restore_good_copy(experiment.root, tune_dir, broken)
    if restored is not None:
        copy, aside = restored
        taken = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(copy.taken))
        log(
            f"Tune state:  unreadable ({shown}); continuing from the copy of Tune's last save, of {taken} "
            f"({copy.folder.relative_to(experiment.root)}; the unreadable files are kept in {aside.name})"
        )
        return True
    if not any(path.name.startswith("experiment_state-") for path in tune_state.state_files(tune_dir)):
        return False  # Tune never saved its state: the trials start again beside what it wrote
    raise ExperimentError(
        f"{tune_dir}: Ray Tune's saved state is unreadable ({shown}) and no good copy of it was kept; "
        f"move {tune_dir} aside to start the trials again (the Optuna study keeps every finished trial)"
    )


def remove_partial_checkpoints(experiment: Experiment, log: Callable[[str], None]) -> None:
    """Remove the trial checkpoint files a fault left half-written (sweep.storage.trial_checkpoints), in one line."""
    removed = trial_checkpoints.remove_partial(experiment.tune_dir)
    if removed:
        shown = ", ".join(str(path.parent.relative_to(experiment.tune_dir)) for path in removed)
        log(
            f"Checkpoints: {len(removed)} left half-written by a storage fault removed ({shown}); "
            "their trials continue from their last whole checkpoint"
        )


def saved_trial_ids(experiment: Experiment) -> set[str]:
    """The Ray trial ids in Ray Tune's newest saved experiment state."""
    from ray.tune import ExperimentAnalysis

    return {trial.trial_id for trial in ExperimentAnalysis(str(experiment.tune_dir)).trials}


def start_or_resume(
    spec: SweepSpec,
    root: Path,
    *,
    address: str | None = None,
    promote: bool = True,
    selections: Path | None = None,
    lease_wait: float = 0.0,
    log: Callable[[str], None] = print,
    before_trials: Callable[[Experiment], None] | None = None,
    command: str | None = None,
) -> tuple[Experiment, Any]:
    """Run whatever stages of the sweep at `root` are not done yet, holding its lease; (experiment, report).

    `spec` is validated and absolute (sweep.schema.spec.with_absolute_paths), and its caller (sweep.workflows.pipelines
    .run_sweep) has found `root` not finished before any work; that is checked again here, holding the lease, since
    another driver may have finished it since. `before_trials` runs once the experiment exists and before its first
    stage (the CLI prints the first points there); `command` is what a StorageFaultError tells the user to run once
    the storage is fixed (default: `negmargin sweep run <root>/spec.yaml --experiment <root>`)."""
    root = root.expanduser().resolve()
    command = command or f"negmargin sweep run {root / 'spec.yaml'} --experiment {root}"
    with faults.stopping_on_faults(root, command):
        return _run_stages(spec, root, address, promote, selections, lease_wait, log, before_trials)


def _run_stages(
    spec: SweepSpec,
    root: Path,
    address: str | None,
    promote: bool,
    selections: Path | None,
    lease_wait: float,
    log: Callable[[str], None],
    before_trials: Callable[[Experiment], None] | None,
) -> tuple[Experiment, Any]:
    """start_or_resume's work, storage faults left to it."""
    from sweep import report as reports
    from sweep.storage.lease import ExperimentLease

    root.mkdir(parents=True, exist_ok=True)
    lease = ExperimentLease(root).acquire(wait_s=lease_wait)
    try:
        existing = check_can_hold(root, spec)  # holding the lease: another driver may have made or finished it since
        if existing is not None and finished(existing, promote, log):
            return existing, reports.build(existing)
        experiment = existing or experiments.create_at(spec, root)
        progress = read_progress(experiment)
        progress = progress.with_attempt(_attempt(bool(progress.attempts)))
        progress_files.write(progress_file(experiment), progress)
        done = progress.done
        log(f"Experiment:  {root}" + (f" (resuming; done: {', '.join(done) or 'nothing yet'})" if existing else ""))
        if before_trials is not None:
            before_trials(experiment)
        if TRIALS not in done:
            check_free_space(spec, experiment, log)
            run_trials(spec, experiment, address, log)
            mark_done(experiment, TRIALS)
        if promote and PROMOTION not in done:
            from sweep.workflows import promotion as promotion

            promotion.run(experiment, selections_path=selections, address=address)
            mark_done(experiment, PROMOTION)
        result = reports.write_all(experiment)
        mark_done(experiment, REPORT)
        return experiment, result
    except Exception as error:
        if faults.fault_errno(error) is not None:
            _remove_partial_checkpoints_if_possible(Experiment(root))
        raise
    finally:
        lease.release()


def _remove_partial_checkpoints_if_possible(experiment: Experiment) -> None:
    """After a storage fault, holding the lease: remove the checkpoint files it left half-written, where the storage
    still lets us (a read-only one does not: the next call removes them before resuming)."""
    try:
        trial_checkpoints.remove_partial(experiment.tune_dir)
    except OSError:
        pass


def check_free_space(spec: SweepSpec, experiment: Experiment, log: Callable[[str], None]) -> None:
    """Before the trials: one warning line when the experiment's filesystem has less free space than the trials
    still have to write; a StorageFaultError when not even one trial's first checkpoint (and its copy) fits."""
    import errno

    written = sum(path.stat().st_size for path in experiment.tune_dir.rglob("*") if path.is_file())
    short = space_needed.shortfall(spec, experiment.root, already_written=written)
    if short is None:
        return
    needed, checkpoint, free = short
    if free < 2 * checkpoint:
        raise StorageFaultError(
            f"{faults.describe(errno.ENOSPC, experiment.root)}, and a trial's first checkpoint needs "
            f"{faults.human_bytes(2 * checkpoint)} (the sweep needs about {faults.human_bytes(needed)}); "
            "free space there, then run the same command",
            path=str(experiment.root),
            errno=errno.ENOSPC,
        )
    log(space_needed.warning_line(experiment.root, needed, free))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _attempt(resumed: bool) -> Attempt:
    import os
    import socket

    return Attempt(started=_now(), host=socket.gethostname(), pid=os.getpid(), resumed=resumed)
