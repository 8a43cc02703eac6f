"""Faults of the experiment's filesystem under a running sweep, on a real local Ray cluster and a real Optuna SQLite
study: a real small tmpfs filled up (ENOSPC) where this process may mount one (else the error injected into Ray
Tune's copy of its state), a read-only filesystem (EROFS, injected there: a filesystem with files open for writing
cannot be remounted read-only), and an I/O error (EIO) there that truncates Tune's saved experiment state and searcher
state. Each call ends in one line with exit code 4 and its lease released, no checkpoint left half-written where the
storage lets it be removed; the same command then completes the sweep with every trial once in the trial table and
in the Optuna study."""

from __future__ import annotations

import errno
from pathlib import Path

import optuna
import pytest
import yaml

from sweep.cli import main
from sweep.storage import optuna_study, trial_checkpoints, tune_state
from sweep.storage.experiment import Experiment
from sweep.storage.faults import STORAGE_FAULT_EXIT
from sweep.storage.lease import LEASE_DIR, holder_of
from sweep.storage.results import load_trials

from helpers.storage_faults import SmallFilesystem, checkpoints, failing_state_copy, when

TRIALS = 3
SPEC = {
    "name": "faults",
    "dataset": {"name": "glyphs", "root": None, "cache_dir": None, "image_size": 16},
    "backbone": "conv4",
    "loss": "neg-cosine",
    "search": {
        "margin": {"uniform": [-0.4, 0.2]},
        "scale": {"fixed": 8.0},
        "weight_decay": {"fixed": 5.0e-4},
        "drop_rate": {"fixed": 0.0},
        "dropblock_size": {"fixed": 1},
    },
    "points_to_evaluate": [{"margin": 0.0}],
    "epochs": 2,
    "val_every": 1,
    "warmup_epochs": 0,
    "batch_size": 256,
    "lr": 3.0e-3,
    "dropblock_ramp_iters": 10,
    "validation": {"episodes": 5, "shots": [1, 5], "queries": 5, "finetune_epochs": 3},
    "scheduler": {"grace_period": 2, "reduction_factor": 2},
    "num_samples": TRIALS,
    "max_concurrent": 1,
    "resources": {"cpu": 1, "gpu": 0},
    "objective": "val_acc_mean",
    "seed": 3,
    "device": "cpu",
}


@pytest.fixture
def sweep_on_small_fs(tmp_path, glyph_cache):
    """(spec file, experiment root, the small filesystem or None): the experiment on a 48 MB tmpfs when one can be
    mounted (the sweep writes about 11 MB), else in tmp_path."""
    spec_file = tmp_path / "faults.yaml"
    dataset = dict(SPEC["dataset"], root=str(glyph_cache), cache_dir=str(tmp_path / "cache"))
    spec_file.write_text(yaml.safe_dump(dict(SPEC, dataset=dataset)))
    filesystem = SmallFilesystem.mount(tmp_path / "fs", size_mb=48)
    root = (tmp_path / "fs" / "experiment").resolve()
    yield spec_file, root, filesystem
    if filesystem is not None:
        filesystem.clear()
        filesystem.unmount()


def _run(spec_file: Path, root: Path, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["sweep", "run", str(spec_file), "--experiment", str(root), "--no-promote"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_stopped(code: int, err: str, spec_file: Path, root: Path, fault: str) -> None:
    """Exit 4, one line (the last; Ray's log lines before it carry no traceback) naming the fault and the same
    command."""
    ours = [line for line in err.splitlines() if line.startswith("negmargin:")]
    assert code == STORAGE_FAULT_EXIT
    assert len(ours) == 1 and ours[0].startswith("negmargin: storage fault: ") and err.strip().endswith(ours[0])
    assert "Traceback" not in err  # Ray's own reports of the fault are left out: the line says it
    assert fault in ours[0]
    assert ours[0].endswith(f"once fixed, run: negmargin sweep run {spec_file} --experiment {root} --no-promote")


def _assert_nothing_half_written(root: Path) -> None:
    """The Optuna study opens, each Ray trial in it once; every trial checkpoint file there is whole (torch reads
    it: the ones a fault cut short were removed)."""
    import torch

    study = optuna.load_study(study_name=root.name, storage=f"sqlite:///{root / 'optuna.db'}")
    assert len({trial.user_attrs.get("ray_trial_id") for trial in study.trials}) == len(study.trials)
    for path in root.glob("tune/trial_*/checkpoint_*/checkpoint.pt"):
        assert isinstance(torch.load(path, weights_only=True), dict), path


def test_storage_faults_stop_in_one_line_and_the_same_command_completes(sweep_on_small_fs, monkeypatch, capsys):
    spec_file, root, filesystem = sweep_on_small_fs
    tune_dir = Experiment(root).tune_dir

    # 1. the filesystem fills up once the first checkpoint is written (a real tmpfs, else an injected ENOSPC)
    if filesystem is not None:
        with when(lambda: checkpoints(tune_dir) >= 1, filesystem.fill):
            code, _, err = _run(spec_file, root, capsys)
    else:
        with failing_state_copy(monkeypatch, tune_dir, errno.ENOSPC, armed=lambda: checkpoints(tune_dir) >= 1):
            code, _, err = _run(spec_file, root, capsys)
        monkeypatch.undo()
    _assert_stopped(code, err, spec_file, root, f"no space left on {root}")
    assert holder_of(root) is None and not (root / LEASE_DIR).exists()  # released
    if filesystem is not None:
        assert " KB free;" in err or " B free;" in err  # what was left once the sweep stopped
        filesystem.clear()
    _assert_nothing_half_written(root)
    first = checkpoints(tune_dir)

    # 2. the filesystem turns read-only once a new checkpoint is written (injected: see the module's docstring)
    with failing_state_copy(monkeypatch, tune_dir, errno.EROFS, armed=lambda: checkpoints(tune_dir) > first):
        code, out, err = _run(spec_file, root, capsys)
    monkeypatch.undo()
    _assert_stopped(code, err, spec_file, root, f"{root} is on a read-only filesystem")
    assert holder_of(root) is None
    _assert_nothing_half_written(root)
    second = checkpoints(tune_dir)

    # 3. an I/O error while Tune copies its state into the experiment, leaving its experiment state and its searcher
    # state truncated
    with failing_state_copy(
        monkeypatch,
        tune_dir,
        errno.EIO,
        armed=lambda: checkpoints(tune_dir) > second and bool(tune_state.good_copies(root)),
        truncate=("experiment_state-*.json", "searcher-state-*.pkl"),
    ) as failed:
        code, _, err = _run(spec_file, root, capsys)
    monkeypatch.undo()
    assert failed
    _assert_stopped(code, err, spec_file, root, f"I/O error on {root}")
    assert holder_of(root) is None
    broken = tune_state.problems(tune_dir)
    assert sorted(path.name for path in broken) == [
        sorted(tune_dir.glob("experiment_state-*.json"))[-1].name,
        sorted(tune_dir.glob("searcher-state-*.pkl"))[-1].name,
    ]
    assert trial_checkpoints.partial(tune_dir) == []

    # 4. the fault cleared: the same command says it restores the copy of Tune's last save, and completes the sweep
    code, out, err = _run(spec_file, root, capsys)
    assert code == 0, err
    restored = [line for line in out.splitlines() if line.startswith("Tune state:  unreadable (experiment_state-")]
    assert len(restored) == 1 and "continuing from the copy of Tune's last save" in restored[0], out
    assert "searcher-state-" in restored[0]
    assert "Traceback" not in err and "does not exist on storage anymore" not in out + err
    records = load_trials(Experiment(root))
    assert len(records) == TRIALS and len({record.trial_id for record in records}) == TRIALS
    assert all(record.status == "TERMINATED" and record.stop_reason == "completed" for record in records)
    assert all(record.error is None for record in records)  # the trials stopped by the faults: no error recorded
    assert all(record.history["epoch"].tolist() == [1, 2] for record in records)
    study = optuna.load_study(study_name=root.name, storage=f"sqlite:///{root / 'optuna.db'}")
    complete = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(trial.user_attrs["ray_trial_id"] for trial in complete) == sorted(r.trial_id for r in records)
    assert all(trial.user_attrs["stop_reason"] == "completed" for trial in complete)
    others = [trial for trial in study.trials if trial.state != optuna.trial.TrialState.COMPLETE]
    assert all(trial.user_attrs.get("stop_reason") == optuna_study.ORPHANED for trial in others), others  # asked for
    # by a driver the fault stopped before Tune saved the trial: closed as lost, never run
    assert holder_of(root) is None
    _assert_nothing_half_written(root)
