"""Sweeps on a real multi-node cluster (a head and two worker `ray start` nodes on 127.0.0.1, CPU only):
submitted through the Jobs API, surviving the loss of a worker node, and, as one command repeated by a scheduler
(`negmargin sweep run SPEC --experiment DIR`), the loss of the driver, of the whole head node and of the driver during
promotion, while a second driver is refused.

The head has no CPUs, so every trial (resources {cpu: 1}) runs on worker-1 or worker-2, one at a time on each, and
the experiment lives in this machine's temp dir, which every node of this one-machine cluster shares
(clusters.storage accepts it for that reason).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from clusters import jobs
from clusters.local import cluster as local
from sweep.storage import experiment as experiments
from sweep.storage import optuna_study, selections
from sweep.storage.lease import holder_of
from sweep.storage.results import load_trials
from sweep.workflows import submission
from sweep.workflows import sweep_run as workflow

from helpers.clusters import (
    checkpointed_epochs,
    cli,
    files_of,
    nodes,
    saved_trial_states,
    start_cluster,
    trial_rows,
    wait_for,
    write_colour_imagefolder,
)

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multinode")
    write_colour_imagefolder(root / "folder", base_images=150, novel_images=12)
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("multinode-cluster")
    started = start_cluster(state_dir, workers=2, head_cpus=0, worker_cpus=1)
    yield started
    local.down(state_dir)


def write_spec(workspace: Path, name: str, num_samples: int, max_epochs: int, **overrides) -> tuple[Path, Path]:
    """A conv4 sweep on the tiny image folder (seconds an epoch on one CPU), no early stopping, with `overrides`
    of top-level keys; (spec, storage)."""
    storage = workspace / name / "experiments"
    spec = {
        "name": name,
        "dataset": {
            "name": "imagefolder",
            "root": str(workspace / "folder"),
            "cache_dir": str(workspace / "cache"),
            "image_size": 16,
        },
        "backbone": "conv4",
        "loss": "neg-cosine",
        "search": {
            "margin": {"uniform": [-0.3, 0.0]},
            "scale": {"fixed": 10.0},
            "weight_decay": {"fixed": 5.0e-4},
            "drop_rate": {"fixed": 0.0},
            "dropblock_size": {"fixed": 1},
        },
        "epochs": max_epochs,
        "val_every": 1,
        "warmup_epochs": 0,
        "batch_size": 64,
        "lr": 3.0e-3,
        "dropblock_ramp_iters": 10,
        "validation": {"episodes": 5, "shots": [1], "queries": 5, "finetune_epochs": 5},
        "scheduler": {"grace_period": max_epochs, "reduction_factor": 2},
        "num_samples": num_samples,
        "max_concurrent": 2,
        "resources": {"cpu": 1, "gpu": 0},
        "objective": "val_acc_1shot",
        "seed": 1,
        "storage_path": str(storage),
        "device": "cpu",
    }
    spec.update(overrides)
    spec_file = workspace / f"{name}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    return spec_file, storage


def _experiment_root(storage: Path) -> Path | None:
    found = sorted(storage.glob("*/tune"))
    return found[0].parent if found else None


def _assert_complete(experiment_root: Path, count: int, max_epochs: int, exact: bool = True) -> dict[str, list[dict]]:
    """Every trial TERMINATED after all its epochs, none missing; with `exact`, each reported once (nothing redone)."""
    records = load_trials(experiments.open_existing(experiment_root))
    assert len(records) == count
    assert all(record.status == "TERMINATED" and record.epochs_run == max_epochs for record in records)
    assert all(0 <= record.best["val_acc_1shot"] <= 100 for record in records)
    rows = trial_rows(experiment_root)
    assert len(rows) == count
    for trial, trial_rows_ in rows.items():
        epochs = [row["epoch"] for row in trial_rows_]
        assert epochs[-1] == max_epochs and set(epochs) == set(range(1, max_epochs + 1)), trial
        assert not exact or epochs == list(range(1, max_epochs + 1)), trial
    return rows


def test_a_sweep_submitted_through_the_jobs_api_completes_and_its_results_are_read_back(
    cluster, workspace, capsys, failure_log
):
    spec_file, storage = write_spec(workspace, "submitted", num_samples=2, max_epochs=3)
    failure_log.watch_cluster(cluster)
    code, _ = cli(["sweep", "submit", str(spec_file), "--address", cluster.dashboard_url, "--no-promote"])
    captured = capsys.readouterr()
    assert code == 0, captured.out[-3000:]
    job_id = captured.out.splitlines()[0]
    assert jobs.status(job_id, cluster.dashboard_url) == "SUCCEEDED"
    assert f"job {job_id}: SUCCEEDED" in captured.err
    experiment_root = _experiment_root(storage)
    _assert_complete(experiment_root, count=2, max_epochs=3)
    assert yaml.safe_load((experiment_root / "spec.yaml").read_text())["name"] == "submitted"


def test_trials_of_a_killed_worker_resume_from_their_checkpoint_on_the_surviving_worker(
    cluster, workspace, failure_log
):
    max_epochs = 12
    spec_file, storage = write_spec(workspace, "nodeloss", num_samples=2, max_epochs=max_epochs)
    job_id = submission.submit_sweep(str(spec_file), cluster.dashboard_url, promote=False)
    failure_log.watch_cluster(cluster)
    failure_log.add_source(f"job {job_id}", lambda: jobs.logs(job_id, cluster.dashboard_url))
    # Checkpoints are written to the experiment by the trials themselves as they report (result.json only reaches
    # it when Tune next saves its state, up to its checkpoint period later), so they say where a trial is now.
    at_kill = wait_for(
        lambda: (
            (root := _experiment_root(storage))
            and (epochs := checkpointed_epochs(root))
            and len(epochs) == 2
            and all(e >= 2 for e in epochs.values())
            and epochs
        ),
        420,
        "both trials to checkpoint two epochs",
        interval=0.2,
    )
    local.kill_raylet(cluster, "worker-1")  # one of the two running trials is on it (one CPU per worker)
    assert all(epoch < max_epochs for epoch in at_kill.values()), f"trials finished before the kill: {at_kill}"

    final = jobs.wait(job_id, cluster.dashboard_url, timeout=600)
    assert final == "SUCCEEDED", jobs.logs(job_id, cluster.dashboard_url)[-3000:]
    # The GCS marks a node dead only after its health checks time out, which can come after the job finished.
    wait_for(lambda: nodes(cluster)["worker-1"]["state"] == "DEAD", 120, "the GCS to mark worker-1 dead")
    assert nodes(cluster)["worker-2"]["state"] == "ALIVE"
    rows = _assert_complete(_experiment_root(storage), count=2, max_epochs=max_epochs)
    # A trial (re)starts where iterations_since_restore is 1: once for both, and again, past epoch 1, for the one
    # that lost its node: it continued from its last checkpoint, not from epoch 0.
    starts = {
        trial: [row["epoch"] for row in trial_rows_ if row["iterations_since_restore"] == 1]
        for trial, trial_rows_ in rows.items()
    }
    restarted = {trial: epochs for trial, epochs in starts.items() if len(epochs) > 1}
    assert len(restarted) == 1, starts
    ((trial, epochs),) = restarted.items()
    assert epochs[0] == 1 and len(epochs) == 2 and epochs[1] >= 3


# ---------------------------------------------------------------- one command, repeated after every loss

PROMOTION = {"top_k": 1, "test_episodes": 20, "shots": [1], "queries": 5, "finetune_epochs": 5}


def sweep_command(spec_file: Path, experiment_dir: Path) -> list[str]:
    """The command a scheduler repeats: the same every time."""
    return [sys.executable, "-m", "sweep.cli", "sweep", "run", str(spec_file), "--experiment", str(experiment_dir)]


def driver_environment(address: str) -> dict[str, str]:
    """A driver on this machine joining the cluster at `address` as a job's driver does (RAY_ADDRESS; Ray wants
    RAY_AUTH_MODE=token set then), with Tune saving its experiment state every second (TUNE_GLOBAL_CHECKPOINT_S), so
    that "Tune's saved state lists the trial as finished" follows the trial within a second."""
    return dict(
        os.environ, RAY_AUTH_MODE="token", RAY_ADDRESS=address, PYTHONUNBUFFERED="1", TUNE_GLOBAL_CHECKPOINT_S="1"
    )


def start_driver(command: list[str], address: str, log: Path) -> subprocess.Popen:
    """Start the command as its own process group, its output appended to `log`."""
    with open(log, "a") as out:
        out.write(f"\n===== {' '.join(command)}  (RAY_ADDRESS={address})\n")
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            cwd=jobs.project_root(),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=driver_environment(address),
            start_new_session=True,
        )


def run_to_end(command: list[str], address: str, log: Path, timeout: float = 600) -> int:
    """Run the command to its end; its exit code."""
    return start_driver(command, address, log).wait(timeout)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL a driver and everything in its process group."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def finished_while_others_run(experiment_root: Path, count: int) -> list[str] | None:
    """Trials that Tune's saved state lists as finished, while fewer than `count` are."""
    states = saved_trial_states(experiment_root)
    finished = sorted(trial for trial, status in states.items() if status == "TERMINATED")
    return finished if finished and len(finished) < count else None


def assert_trials_match_the_study(experiment_root: Path, count: int, max_epochs: int) -> list:
    """Trial by trial: every trial of the table finished all its epochs, each epoch reported once, and its Optuna
    trial is COMPLETE with the trial's point, epochs and last objective; the study holds no other finished or running
    trial (one a dead driver asked for but Tune never saved is FAIL, marked as lost)."""
    experiment = experiments.open_existing(experiment_root)
    spec = experiment.spec()
    records = load_trials(experiment)
    assert len(records) == count
    rows = trial_rows(experiment_root)
    study = optuna_study.trials_by_ray_id(experiment)
    for record in records:
        assert record.status == "TERMINATED" and record.epochs_run == max_epochs, record.trial_id
        epochs = [row["epoch"] for row in rows[f"trial_{record.trial_id}"]]
        # every epoch reported; one reported after Tune's last save is reported again when the trial continues from
        # its last saved checkpoint (never a finished trial); the results keep each epoch's last report
        assert sorted(set(epochs)) == list(range(1, max_epochs + 1)) and epochs[0] == 1, (record.trial_id, epochs)
        assert record.history["epoch"].tolist() == list(range(1, max_epochs + 1)), record.trial_id
        linked = study[record.trial_id]
        assert linked.state == optuna.trial.TrialState.COMPLETE, record.trial_id
        assert linked.value == pytest.approx(record.history[spec.objective].iloc[-1], abs=1e-6)
        assert linked.params["margin"] == pytest.approx(record.params["margin"])
        assert linked.user_attrs[optuna_study.EPOCHS_RUN] == max_epochs
        assert linked.user_attrs[optuna_study.STOP_REASON] == "completed"
    others = [trial for ray_id, trial in study.items() if ray_id not in {r.trial_id for r in records}]
    assert all(trial.state == optuna.trial.TrialState.FAIL for trial in others), others
    assert all(trial.user_attrs[optuna_study.STOP_REASON] == optuna_study.ORPHANED for trial in others)
    every = optuna_study.load_study(experiment).trials
    assert sum(trial.state == optuna.trial.TrialState.COMPLETE for trial in every) == count
    assert not any(trial.state == optuna.trial.TrialState.RUNNING for trial in every)
    return records


def assert_promoted_once(experiment_root: Path, attempts: int) -> None:
    """Promotion and report done once, by the last of `attempts` calls; one selection per shot."""
    experiment = experiments.open_existing(experiment_root)
    progress = workflow.read_progress(experiment)
    assert set(progress.done) == {workflow.TRIALS, workflow.PROMOTION, workflow.REPORT}
    assert [attempt.resumed for attempt in progress.attempts] == [False] + [True] * (attempts - 1)
    promotion = experiment.promotion()
    assert promotion is not None
    promoted = [trial.trial_id for trial in promotion.trials]
    assert [trial.rank for trial in promotion.trials if isinstance(trial.rank, int)] == [1]
    assert len(set(promoted)) == len(promoted)  # each trial scored once
    table = {record.trial_id for record in load_trials(experiment)}
    scored = [path.name.removesuffix("_accuracies.pt") for path in experiment.promotion_dir.iterdir()]
    assert promoted[0] in scored and set(scored) <= table
    entries = selections.read(selections.default_path(experiment))
    assert [entry.shot for entry in entries] == [1]  # one selection per shot
    assert experiment.report_file.is_file()


def assert_a_further_call_does_nothing(command: list[str], experiment_root: Path, address: str, log: Path) -> None:
    """The same command on a finished experiment prints its report and changes no file."""
    before = files_of(experiment_root)
    assert run_to_end(command, address, log, timeout=300) == 0
    assert f"Experiment:  {experiment_root} (finished: nothing to do)" in log.read_text()
    assert files_of(experiment_root) == before


def test_a_second_driver_is_refused_and_a_killed_driver_is_finished_by_the_same_command(
    cluster, workspace, tmp_path, failure_log
):
    count, max_epochs = 3, 3
    spec_file, storage = write_spec(workspace, "driverloss", count, max_epochs, promotion=PROMOTION)
    root = storage / "driverloss"
    command = sweep_command(spec_file, root)
    log = failure_log.watch("drivers", tmp_path / "drivers.log")
    failure_log.watch_cluster(cluster)
    first = start_driver(command, cluster.gcs_address, log)

    # (d) The same command while the first driver runs: refused in one line naming it, before any work.
    wait_for(lambda: checkpointed_epochs(root), 420, "the first driver's trials to checkpoint", interval=0.2)
    assert holder_of(root).pid == first.pid
    progress_before = workflow.progress_file(experiments.Experiment(root)).read_text()
    second = subprocess.run(
        command,
        cwd=jobs.project_root(),
        capture_output=True,
        text=True,
        timeout=300,
        env=driver_environment(cluster.gcs_address),
    )
    assert second.returncode == 2, second.stderr[-3000:]
    assert second.stderr.startswith("negmargin: error: ") and len(second.stderr.strip().splitlines()) == 1
    assert f"pid {first.pid} on host " in second.stderr and "another driver is running this experiment" in second.stderr
    assert workflow.progress_file(experiments.Experiment(root)).read_text() == progress_before
    assert first.poll() is None  # the first driver carries on

    # (a) Kill the first driver once Tune has saved a trial as finished while others have not finished.
    finished = wait_for(lambda: finished_while_others_run(root, count), 420, "a trial to finish", interval=0.2)
    kill(first)
    kept = {trial: (root / "tune" / trial / "result.json").read_text() for trial in finished}
    assert run_to_end(command, cluster.gcs_address, log) == 0
    assert_trials_match_the_study(root, count, max_epochs)
    for trial, text in kept.items():  # finished trials were not run again
        assert (root / "tune" / trial / "result.json").read_text() == text, trial
    assert_promoted_once(root, attempts=2)
    assert_a_further_call_does_nothing(command, root, cluster.gcs_address, log)


@pytest.fixture
def spare_clusters(tmp_path_factory):
    """Start more local clusters (head without CPUs, two one-CPU workers) by name; all stopped at teardown."""
    state_dirs: list[Path] = []

    def start(name: str) -> local.LocalCluster:
        state_dirs.append(tmp_path_factory.mktemp(name))
        return start_cluster(state_dirs[-1], workers=2, head_cpus=0, worker_cpus=1)

    yield start
    for state_dir in state_dirs:
        local.down(state_dir, timeout=10)


def test_after_the_head_node_dies_the_same_command_finishes_the_sweep_on_a_new_cluster(
    workspace, tmp_path, spare_clusters, failure_log
):
    count, max_epochs = 3, 3
    spec_file, storage = write_spec(workspace, "headloss", count, max_epochs, promotion=PROMOTION)
    root = storage / "headloss"
    command = sweep_command(spec_file, root)
    log = failure_log.watch("drivers", tmp_path / "drivers.log")
    lost = spare_clusters("headloss-first")
    failure_log.watch_cluster(lost)
    driver = start_driver(command, lost.gcs_address, log)
    finished = wait_for(lambda: finished_while_others_run(root, count), 420, "a trial to finish", interval=0.2)

    # The head node dies with everything on it: GCS, dashboard, its raylet, and the driver (a job's driver runs on
    # the head). Its workers are left without a cluster; stop them, as losing their pods would.
    os.killpg(lost.node("head").pid, signal.SIGKILL)
    kill(driver)
    kept = {trial: (root / "tune" / trial / "result.json").read_text() for trial in finished}
    local.down(lost.state_dir, timeout=10)

    replacement = spare_clusters("headloss-second")
    failure_log.watch_cluster(replacement)
    assert run_to_end(command, replacement.gcs_address, log) == 0
    assert_trials_match_the_study(root, count, max_epochs)
    for trial, text in kept.items():
        assert (root / "tune" / trial / "result.json").read_text() == text, trial
    assert_promoted_once(root, attempts=2)


def test_a_driver_killed_during_promotion_is_finished_by_the_same_command_without_duplicates(
    cluster, workspace, tmp_path, failure_log
):
    count, max_epochs = 2, 3
    promotion = dict(PROMOTION, extra_seeds=1)  # promotion retrains the promoted configuration with one more seed
    spec_file, storage = write_spec(workspace, "promotionloss", count, max_epochs, promotion=promotion)
    root = storage / "promotionloss"
    experiment = experiments.Experiment(root)
    command = sweep_command(spec_file, root)
    log = failure_log.watch("drivers", tmp_path / "drivers.log")
    failure_log.watch_cluster(cluster)
    driver = start_driver(command, cluster.gcs_address, log)

    # Kill it once promotion has scored the test episodes and Tune has saved the retraining it started.
    wait_for(lambda: saved_trial_states(root, "seeds"), 600, "promotion to start retraining", interval=0.1)
    kill(driver)
    assert not experiment.promotion_file.exists()
    assert set(workflow.read_progress(experiment).done) == {workflow.TRIALS}
    trials_before = files_of(root / "tune")

    assert run_to_end(command, cluster.gcs_address, log) == 0
    assert files_of(root / "tune") == trials_before  # no trial ran again
    assert_trials_match_the_study(root, count, max_epochs)
    assert_promoted_once(root, attempts=2)
    # The retraining grid was continued, not started again: one run per (configuration, seed), all finished, every
    # epoch reported once.
    runs = {path.parent.name: json.loads(path.read_text()) for path in sorted((root / "seeds").glob("*/params.json"))}
    planned = [(config["retrain"]["trial_id"], config["seed_offset"]) for config in runs.values()]
    assert len(planned) == len(set(planned)) == len(saved_trial_states(root, "seeds"))
    assert set(saved_trial_states(root, "seeds").values()) == {"TERMINATED"}
    promotion = experiment.promotion()
    assert promotion is not None and (promotion.trials[0].trial_id, 1) in planned
    for run, rows in trial_rows(root, "seeds").items():
        assert [row["epoch"] for row in rows] == list(range(1, max_epochs + 1)), run
    assert set(trial_rows(root, "seeds")) == set(runs)
    seeds_of_promoted = promotion.trials[0].seeds["1"]
    assert seeds_of_promoted.n == 2 and len(seeds_of_promoted.runs) == 2
