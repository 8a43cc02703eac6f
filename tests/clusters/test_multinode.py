"""Sweeps on a real multi-node cluster (a head and two worker `ray start` nodes on 127.0.0.1, CPU only):
submitted through the Jobs API, surviving the loss of a worker node and of the driver.

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

import pytest
import yaml

from clusters import jobs
from clusters.local import cluster as local
from sweep import experiment as experiments
from sweep import submission
from sweep.results import load_trials

from helpers.clusters import cli, nodes, start_cluster, trial_rows, wait_for, write_colour_imagefolder

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multinode")
    write_colour_imagefolder(root / "folder", base_images=150)
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("multinode-cluster")
    started = start_cluster(state_dir, workers=2, head_cpus=0, worker_cpus=1)
    yield started
    local.down(state_dir)


def write_spec(workspace: Path, name: str, num_samples: int, max_epochs: int) -> tuple[Path, Path]:
    """A conv4 sweep on the tiny image folder (seconds an epoch on one CPU), no early stopping; (spec, storage)."""
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
    spec_file = workspace / f"{name}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    return spec_file, storage


def _experiment_root(storage: Path) -> Path | None:
    found = sorted(storage.glob("*/tune"))
    return found[0].parent if found else None


def _last_epochs(storage: Path) -> dict[str, int]:
    root = _experiment_root(storage)
    return {trial: rows[-1]["epoch"] for trial, rows in trial_rows(root).items() if rows} if root else {}


def _saved_as_terminated(storage: Path) -> set[str]:
    """Trial directories (trial_<id>) that Tune's newest saved experiment state lists as TERMINATED."""
    root = _experiment_root(storage)
    states = sorted((root / "tune").glob("experiment_state-*.json")) if root else []
    try:
        trials = [json.loads(entry[0]) for entry in json.loads(states[-1].read_text())["trial_data"]] if states else []
    except (json.JSONDecodeError, KeyError, IndexError, OSError):
        return set()  # being written: ask again
    return {f"trial_{trial['trial_id']}" for trial in trials if trial.get("status") == "TERMINATED"}


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


def test_a_sweep_submitted_through_the_jobs_api_completes_and_its_results_are_read_back(cluster, workspace, capsys):
    spec_file, storage = write_spec(workspace, "submitted", num_samples=2, max_epochs=3)
    code, _ = cli(["sweep", "submit", str(spec_file), "--address", cluster.dashboard_url, "--no-promote"])
    captured = capsys.readouterr()
    assert code == 0, captured.out[-3000:]
    job_id = captured.out.splitlines()[0]
    assert jobs.status(job_id, cluster.dashboard_url) == "SUCCEEDED"
    assert f"job {job_id}: SUCCEEDED" in captured.err
    experiment_root = _experiment_root(storage)
    _assert_complete(experiment_root, count=2, max_epochs=3)
    assert yaml.safe_load((experiment_root / "spec.yaml").read_text())["name"] == "submitted"


def test_a_killed_driver_is_resumed_without_rerunning_finished_trials(cluster, workspace):
    max_epochs, count = 6, 3
    spec_file, storage = write_spec(workspace, "driverloss", num_samples=count, max_epochs=max_epochs)
    job_id = submission.submit_sweep(str(spec_file), cluster.dashboard_url, promote=False)

    def one_finished_one_running():
        # Finished: all epochs reported and TERMINATED in Tune's saved experiment state (a trial that ended after
        # Tune's last save is, to the resumed sweep, unfinished: it is completed again).
        epochs, saved = _last_epochs(storage), _saved_as_terminated(storage)
        finished = [trial for trial, epoch in epochs.items() if epoch == max_epochs and trial in saved]
        return finished if finished and any(epoch < max_epochs for epoch in epochs.values()) else None

    finished = wait_for(one_finished_one_running, 420, "a trial to finish while another runs", interval=0.5)
    client = jobs.connect(cluster.dashboard_url)
    driver = wait_for(lambda: client.get_job_info(job_id).driver_info, 60, "the job's driver to register")
    os.kill(int(driver.pid), signal.SIGKILL)
    assert jobs.wait(job_id, cluster.dashboard_url, timeout=120) == "FAILED"
    experiment_root = _experiment_root(storage)
    before = {trial: (experiment_root / "tune" / trial / "result.json").read_text() for trial in finished}

    # A driver on this machine joining by address: Ray wants RAY_AUTH_MODE=token set (it never infers it then).
    resume = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.cli",
            "sweep",
            "resume",
            str(experiment_root),
            "--address",
            cluster.gcs_address,
            "--no-promote",
        ],
        cwd=jobs.project_root(),
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, RAY_AUTH_MODE="token"),
    )
    assert resume.returncode == 0, resume.stderr[-3000:]
    # The interrupted trial may repeat the epochs after the experiment's last saved state; finished ones are untouched.
    _assert_complete(experiment_root, count=count, max_epochs=max_epochs, exact=False)
    for trial, text in before.items():
        assert (experiment_root / "tune" / trial / "result.json").read_text() == text


def test_trials_of_a_killed_worker_resume_from_their_checkpoint_on_the_surviving_worker(cluster, workspace):
    max_epochs = 12
    spec_file, storage = write_spec(workspace, "nodeloss", num_samples=2, max_epochs=max_epochs)
    job_id = submission.submit_sweep(str(spec_file), cluster.dashboard_url, promote=False)
    at_kill = wait_for(
        lambda: (
            (epochs := _last_epochs(storage)) and len(epochs) == 2 and all(e >= 2 for e in epochs.values()) and epochs
        ),
        420,
        "both trials to report two checkpointed epochs",
    )
    assert all(epoch < max_epochs for epoch in at_kill.values()), f"trials finished before the kill: {at_kill}"
    local.kill_raylet(cluster, "worker-1")  # one of the two running trials is on it (one CPU per worker)

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
