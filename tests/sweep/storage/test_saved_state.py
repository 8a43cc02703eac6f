"""What a resume reads after a storage fault (or a killed driver), without a cluster: Ray Tune's saved state read back
and replaced by the copy of Tune's last save when a fault cut it short (never by an older state, which could name
checkpoints Tune has deleted since); trial checkpoints cut short found from their end, removed, and never trained
from; an Optuna study left in the middle of a commit opened all the same."""

from __future__ import annotations

import json
import pickle
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from ray.tune import Checkpoint as TuneCheckpoint

from evaluation.checkpoint import Checkpoint, ModelSpec, is_whole
from sweep.schema import spec as spec_module
from sweep.storage import experiment as experiments
from sweep.storage import trial_checkpoints, tune_state
from sweep.storage.experiment import Experiment
from sweep.tuning.trainable import load_checkpoint_state
from sweep.workflows import sweep_run

SESSION_1, SESSION_2 = "2026-01-01_00-00-00", "2026-01-02_00-00-00"

# ------------------------------------------------------------------------------------------ Tune's saved state


def _save(folder: Path, stamp: str, trials: int) -> None:
    """One save of Tune's state as Tune makes it in its staging folder (pickles and JSON, the same names)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"experiment_state-{stamp}.json").write_text(json.dumps({"trials": trials}))
    (folder / f"searcher-state-{stamp}.pkl").write_bytes(pickle.dumps({"searcher": list(range(trials * 50))}))
    (folder / f"search_gen_state-{stamp}.json").write_bytes(pickle.dumps({"counter": trials}))


def _upload(staging: Path, tune_dir: Path, cut: tuple[str, ...] = ()) -> None:
    """Tune's copy of its staging folder into the experiment, the files matching `cut` cut in half by a fault."""
    tune_dir.mkdir(parents=True, exist_ok=True)
    for path in staging.iterdir():
        payload = path.read_bytes()
        if any(path.match(pattern) for pattern in cut):
            payload = payload[: len(payload) // 2]
        (tune_dir / path.name).write_bytes(payload)


@pytest.fixture
def tune_folders(tmp_path):
    """(experiment root, Tune's staging folder on the driver, <exp>/tune with tuner.pkl, which Tune writes there)."""
    tune_dir = tmp_path / "tune"
    tune_dir.mkdir()
    (tune_dir / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 1}))
    return tmp_path, tmp_path / "staging", tune_dir


def test_a_state_cut_short_is_replaced_by_the_copy_of_the_same_save_not_an_older_one(tune_folders):
    root, staging, tune_dir = tune_folders
    _save(staging, SESSION_1, trials=1)
    assert tune_state.keep_good_copy(root, staging, tune_dir) is True
    _upload(staging, tune_dir)
    assert tune_state.keep_good_copy(root, staging, tune_dir) is False  # that save is copied already
    _save(staging, SESSION_1, trials=2)  # the next save: copied at once, before Tune's upload of it
    assert tune_state.keep_good_copy(root, staging, tune_dir) is True
    assert [copy.folder.name for copy in tune_state.good_copies(root)] == ["b", "a"]
    assert tune_state.problems(tune_dir) == {}  # the upload of the first save: whole, older

    # the upload of the second save fails half way: its experiment state and searcher state cut short
    _upload(staging, tune_dir, cut=("experiment_state-*", "searcher-state-*"))
    broken = tune_state.problems(tune_dir)
    assert sorted(path.name for path in broken) == [
        f"experiment_state-{SESSION_1}.json",
        f"searcher-state-{SESSION_1}.pkl",
    ]
    assert broken[tune_dir / f"experiment_state-{SESSION_1}.json"].startswith("not whole JSON")
    assert broken[tune_dir / f"searcher-state-{SESSION_1}.pkl"].startswith("truncated pickle")
    copy, aside = tune_state.restore_good_copy(root, tune_dir, broken)
    assert copy.folder.name == "b" and tune_state.problems(tune_dir) == {}
    for name in (f"experiment_state-{SESSION_1}.json", f"searcher-state-{SESSION_1}.pkl"):
        assert (tune_dir / name).read_bytes() == (staging / name).read_bytes()
    assert json.loads((tune_dir / f"experiment_state-{SESSION_1}.json").read_text()) == {"trials": 2}  # the last save
    assert sorted(path.name for path in aside.iterdir()) == [
        f"experiment_state-{SESSION_1}.json",
        f"searcher-state-{SESSION_1}.pkl",
    ]  # the cut files kept, moved aside


def test_a_new_session_cut_short_is_replaced_by_its_own_copy(tune_folders):
    """A resumed sweep saves under a new stamp; its upload cut short is replaced by the copy of that save, not by the
    older session's whole files (which a restore would otherwise read: Tune reads the newest stamp)."""
    root, staging, tune_dir = tune_folders
    _save(staging, SESSION_1, trials=2)
    _upload(staging, tune_dir)
    tune_state.keep_good_copy(root, staging, tune_dir)
    _save(staging, SESSION_2, trials=3)
    tune_state.keep_good_copy(root, staging, tune_dir)
    _upload(staging, tune_dir, cut=("search_gen_state-*",))
    broken = tune_state.problems(tune_dir)
    assert [path.name for path in broken] == [f"search_gen_state-{SESSION_2}.json"]
    tune_state.restore_good_copy(root, tune_dir, broken)
    assert [path.name for path in tune_state.state_files(tune_dir)] == [
        "tuner.pkl",
        f"experiment_state-{SESSION_2}.json",
        f"searcher-state-{SESSION_2}.pkl",
        f"search_gen_state-{SESSION_2}.json",
    ]
    assert pickle.loads((tune_dir / f"search_gen_state-{SESSION_2}.json").read_bytes()) == {"counter": 3}


def test_a_good_copy_cut_short_is_not_used(tune_folders):
    root, staging, tune_dir = tune_folders
    _save(staging, SESSION_1, trials=1)
    tune_state.keep_good_copy(root, staging, tune_dir)
    _save(staging, SESSION_1, trials=2)
    tune_state.keep_good_copy(root, staging, tune_dir)
    newest = tune_state.good_copies(root)[0]
    (newest.folder / f"experiment_state-{SESSION_1}.json").write_text('{"tri')  # a fault mid-copy
    assert [copy.folder.name for copy in tune_state.good_copies(root)] == ["a"]


def test_an_unreadable_state_without_a_good_copy_is_one_line_not_a_restart(tmp_path):
    experiment = Experiment(tmp_path)
    _save(experiment.tune_dir, SESSION_1, trials=1)
    (experiment.tune_dir / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 1}))
    state = experiment.tune_dir / f"experiment_state-{SESSION_1}.json"
    state.write_text('{"trials": ')
    logged: list[str] = []
    with pytest.raises(sweep_run.ExperimentError) as raised:
        sweep_run.saved_state_usable(experiment, logged.append)
    assert str(raised.value).startswith(f"{experiment.tune_dir}: Ray Tune's saved state is unreadable ({state.name} ")
    assert "\n" not in str(raised.value) and logged == []
    assert state.read_text() == '{"trials": '  # left as it was


def test_a_state_tune_never_saved_starts_the_trials_again(tmp_path):
    experiment = Experiment(tmp_path)
    experiment.tune_dir.mkdir()
    (experiment.tune_dir / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 1}))
    assert sweep_run.saved_state_usable(experiment, print) is False


# ------------------------------------------------------------------------------------------ trial checkpoints


def _checkpoint(folder: Path, epoch: int) -> Path:
    """A trial checkpoint (the real format) of `epoch` in Tune's checkpoint folder `folder`."""
    model = ModelSpec("conv4", {}, "neg-cosine", 16, num_classes=5, scale=10.0, margin=-0.1)
    state = {"layer.weight": torch.full((64, 64), float(epoch)), "layer.bias": torch.zeros(64)}
    return Checkpoint(model, state, epoch=epoch, metrics={"val_acc_1shot": 50.0 + epoch}).save(folder / "checkpoint.pt")


def _cut(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("kept", [lambda size: 0, lambda size: 100, lambda size: size // 2, lambda size: size - 1])
def test_a_checkpoint_cut_short_is_not_whole(tmp_path, kept):
    path = _checkpoint(tmp_path / "checkpoint_000000", epoch=1)
    assert is_whole(path) and is_whole(path.parent)
    _cut(path, kept(path.stat().st_size))
    assert not is_whole(path)
    assert not is_whole(tmp_path / "missing" / "checkpoint.pt")


def test_half_written_checkpoints_are_removed_and_their_folders_kept(tmp_path):
    tune_dir = tmp_path / "tune"
    whole = [_checkpoint(tune_dir / "trial_a" / f"checkpoint_00000{n}", epoch=n + 1) for n in range(2)]
    cut = _checkpoint(tune_dir / "trial_a" / "checkpoint_000002", epoch=3)
    _cut(cut, cut.stat().st_size // 3)
    empty = _checkpoint(tune_dir / "trial_b" / "checkpoint_000000", epoch=1)
    _cut(empty, 0)  # a full disk: created, nothing written
    assert trial_checkpoints.partial(tune_dir) == [cut, empty]
    assert trial_checkpoints.remove_partial(tune_dir) == [cut, empty]
    assert not cut.exists() and not empty.exists() and cut.parent.is_dir() and empty.parent.is_dir()
    assert all(path.exists() and is_whole(path) for path in whole)
    assert trial_checkpoints.partial(tune_dir) == []


def test_a_resumed_trial_never_trains_from_an_unreadable_checkpoint(tmp_path):
    trial_dir = tmp_path / "tune" / "trial_a"
    for n in range(3):
        _checkpoint(trial_dir / f"checkpoint_00000{n}", epoch=n + 1)
    latest = trial_dir / "checkpoint_000002" / "checkpoint.pt"

    lines: list[str] = []
    assert load_checkpoint_state(TuneCheckpoint.from_directory(str(latest.parent)), lines.append).epoch == 3
    assert lines == []  # whole: used as it is

    _cut(latest, latest.stat().st_size // 2)  # what Tune registered, cut short afterwards
    _cut(trial_dir / "checkpoint_000001" / "checkpoint.pt", 10)
    found = load_checkpoint_state(TuneCheckpoint.from_directory(str(latest.parent)), lines.append)
    assert (
        found is not None
        and found.epoch == 1
        and torch.equal(found.backbone_state["layer.weight"][0, :1], torch.ones(1))
    )
    assert len(lines) == 1
    assert lines[0].startswith(f"Resuming:    checkpoint {latest} cannot be read: ")
    assert lines[0].endswith("; the trial continues from checkpoint_000000 (epoch 1) instead")

    lines.clear()
    (trial_dir / "checkpoint_000000" / "checkpoint.pt").unlink()  # removed as half-written
    assert load_checkpoint_state(TuneCheckpoint.from_directory(str(latest.parent)), lines.append) is None
    assert len(lines) == 1 and lines[0].endswith("so it starts again from its first epoch")


# ------------------------------------------------------------------------------------------ the Optuna study

_KILLED_MID_COMMIT = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size = 1")  # pages reach the file before the commit ends, as in a large commit
db.execute("BEGIN")
for number in range(30000):
    db.execute("INSERT INTO study_user_attributes (study_id, key, value_json) VALUES (1, ?, ?)", (f"k{number}", "1"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_study_a_killed_driver_left_mid_commit_opens_and_keeps_its_trials(glyph_cache, tmp_path):
    """The driver is killed inside an Optuna commit: SQLite's rollback journal is left beside the study, which a
    read-only connection cannot play back ("attempt to write a readonly database"). The experiment opens, the
    unfinished commit is rolled back, every finished trial is there."""
    data = yaml.safe_load(spec_module.preset_path("default").read_text())
    data["dataset"].update(name="glyphs", root=str(glyph_cache), cache_dir=str(tmp_path / "cache"), image_size=16)
    experiment = experiments.create_at(spec_module.with_absolute_paths(spec_module.parse(data)), tmp_path / "exp")
    study = optuna.create_study(study_name=experiment.study_name, storage=experiment.optuna_url)
    for value in (1.0, 2.0, 3.0):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=value))
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_COMMIT, str(experiment.optuna_db)], check=False)
    assert killed.returncode == -signal.SIGKILL
    journal = Path(f"{experiment.optuna_db}-journal")
    assert journal.stat().st_size > 0
    with pytest.raises(sqlite3.OperationalError, match="readonly database"):  # what the read-only check met
        sqlite3.connect(f"file:{experiment.optuna_db}?mode=ro", uri=True).execute("SELECT 1 FROM studies").fetchall()

    assert experiments.open_existing(experiment.root).root == experiment.root
    assert not journal.exists()  # played back
    reloaded = optuna.load_study(study_name=experiment.study_name, storage=experiment.optuna_url)
    assert [trial.value for trial in reloaded.trials] == [1.0, 2.0, 3.0]
    assert reloaded.user_attrs == {}  # the unfinished commit rolled back
