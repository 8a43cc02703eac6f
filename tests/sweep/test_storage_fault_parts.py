"""The parts of the storage-fault handling without a cluster: telling a storage fault from other errors through the
wrappers it arrives in, the one-line message, Ray Tune's state read back and its good copy, the free-space estimate
and its warning, the lease given back on a read-only filesystem."""

from __future__ import annotations

import errno
import json
import pickle
import sqlite3
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import yaml

from sweep.cli import main
from sweep.errors import StorageFaultError
from sweep.schema import spec as spec_module
from sweep.storage import faults, space_needed, tune_state
from sweep.storage.experiment import Experiment
from sweep.workflows import sweep_run

from helpers.storage_faults import SmallFilesystem


def _optuna_error(orig: BaseException) -> BaseException:
    """What Optuna raises when SQLite fails a commit: StorageInternalError from SQLAlchemy's OperationalError."""
    try:
        try:
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, orig)
        except sqlalchemy.exc.SQLAlchemyError as error:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from error
    except optuna.exceptions.StorageInternalError as raised:
        return raised


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), errno.EDQUOT),
        (PermissionError(errno.EROFS, "Read-only file system"), errno.EROFS),
        (OSError(errno.ESTALE, "Stale file handle"), errno.ESTALE),
        (OSError("[Errno 5] Error writing bytes to file. Detail: [errno 5] Input/output error"), errno.EIO),
        (OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"), errno.ENOSPC),
        (_optuna_error(sqlite3.OperationalError("database or disk is full")), errno.ENOSPC),
        (_optuna_error(sqlite3.OperationalError("attempt to write a readonly database")), errno.EROFS),
        (_optuna_error(sqlite3.OperationalError("disk I/O error")), errno.EIO),
        (RuntimeError("Trial failed"), None),
        (OSError(errno.ENOENT, "No such file or directory"), None),
        (_optuna_error(sqlite3.OperationalError("no such table: studies")), None),
    ],
)
def test_a_storage_fault_is_told_apart_through_its_wrappers(error, code):
    assert faults.fault_errno(error) == code


def test_the_fault_line_names_the_path_the_fault_and_the_command(tmp_path):
    command = f"negmargin sweep run spec.yaml --experiment {tmp_path}"
    full = faults.storage_fault(_optuna_error(sqlite3.OperationalError("database or disk is full")), tmp_path, command)
    assert isinstance(full, StorageFaultError) and full.errno == errno.ENOSPC and full.path == str(tmp_path)
    text = str(full)
    assert "\n" not in text
    assert text.startswith(f"no space left on {tmp_path}: ") and " free; " in text
    assert text.endswith(f"once fixed, run: {command}")
    read_only = faults.storage_fault(OSError(errno.EROFS, "Read-only file system"), tmp_path, command)
    assert str(read_only).startswith(f"{tmp_path} is on a read-only filesystem; ")
    assert faults.storage_fault(ValueError("bad value"), tmp_path, command) is None
    assert faults.human_bytes(0) == "0 B" and faults.human_bytes(1536) == "1.5 KB"


def test_a_storage_fault_in_the_cli_is_one_line_and_exit_4(tmp_path, capsys, monkeypatch):
    """The CLI's mapping: StorageFaultError -> 'negmargin: storage fault: …', exit 4 (beside 2 and 3)."""
    from sweep.workflows import pipelines

    def full(*args, **kwargs):
        raise StorageFaultError(
            f"no space left on {tmp_path}: 0 B free; once fixed, run: X", path=str(tmp_path), errno=28
        )

    monkeypatch.setattr(pipelines, "resume_sweep", full)
    assert main(["sweep", "resume", str(tmp_path)]) == faults.STORAGE_FAULT_EXIT == 4
    assert (
        capsys.readouterr().err
        == f"negmargin: storage fault: no space left on {tmp_path}: 0 B free; once fixed, run: X\n"
    )


# ------------------------------------------------------------------------------------------ Tune's saved state


def _tune_state(tune_dir: Path, stamp: str, trials: int) -> None:
    """Files shaped like Ray Tune's saved state (pickles and JSON, the same names)."""
    tune_dir.mkdir(parents=True, exist_ok=True)
    (tune_dir / "tuner.pkl").write_bytes(pickle.dumps({"tuner": 1}))
    (tune_dir / f"experiment_state-{stamp}.json").write_text(json.dumps({"trials": trials}))
    (tune_dir / f"searcher-state-{stamp}.pkl").write_bytes(pickle.dumps({"searcher": list(range(trials * 50))}))
    (tune_dir / f"search_gen_state-{stamp}.json").write_bytes(pickle.dumps({"counter": trials}))


def test_a_truncated_state_file_is_found_and_its_last_good_copy_restored(tmp_path):
    root, tune_dir = tmp_path, tmp_path / "tune"
    _tune_state(tune_dir, "2026-01-01_00-00-00", trials=1)
    assert tune_state.problems(tune_dir) == {}
    assert tune_state.keep_good_copy(root, tune_dir) is True
    assert tune_state.keep_good_copy(root, tune_dir) is False  # unchanged: no new copy
    _tune_state(tune_dir, "2026-01-01_00-00-00", trials=2)
    assert tune_state.keep_good_copy(root, tune_dir) is True  # into the other slot
    assert [copy.folder.name for copy in tune_state.good_copies(root)] == ["b", "a"]
    good = (tune_dir / "searcher-state-2026-01-01_00-00-00.pkl").read_bytes()

    # a newer session's state, its searcher cut in half by a full disk: never copied, found, replaced
    _tune_state(tune_dir, "2026-01-02_00-00-00", trials=3)
    searcher = tune_dir / "searcher-state-2026-01-02_00-00-00.pkl"
    searcher.write_bytes(searcher.read_bytes()[: searcher.stat().st_size // 2])
    assert tune_state.keep_good_copy(root, tune_dir) is False
    broken = tune_state.problems(tune_dir)
    assert list(broken) == [searcher] and broken[searcher].startswith("truncated pickle")
    copy, aside = tune_state.restore_good_copy(root, tune_dir, broken)
    assert copy.folder.name == "b"
    assert tune_state.problems(tune_dir) == {}
    assert tune_state.state_files(tune_dir)[1:] == [
        tune_dir / f"{kind}-2026-01-01_00-00-00.{suffix}"
        for kind, suffix in (("experiment_state", "json"), ("searcher-state", "pkl"), ("search_gen_state", "json"))
    ]  # the newer, partly broken session's files are moved aside whole, so a restore reads the good copy's set
    assert (tune_dir / "searcher-state-2026-01-01_00-00-00.pkl").read_bytes() == good
    assert json.loads((tune_dir / "experiment_state-2026-01-01_00-00-00.json").read_text()) == {"trials": 2}
    assert sorted(path.name for path in aside.iterdir()) == [
        "experiment_state-2026-01-02_00-00-00.json",
        "search_gen_state-2026-01-02_00-00-00.json",
        "searcher-state-2026-01-02_00-00-00.pkl",
    ]


def test_a_good_copy_cut_short_is_not_used(tmp_path):
    root, tune_dir = tmp_path, tmp_path / "tune"
    _tune_state(tune_dir, "2026-01-01_00-00-00", trials=1)
    tune_state.keep_good_copy(root, tune_dir)
    _tune_state(tune_dir, "2026-01-01_00-00-00", trials=2)
    tune_state.keep_good_copy(root, tune_dir)
    newest = tune_state.good_copies(root)[0]
    (newest.folder / "experiment_state-2026-01-01_00-00-00.json").write_text('{"tri')  # a fault mid-copy
    assert [copy.folder.name for copy in tune_state.good_copies(root)] == ["a"]


def test_an_unreadable_state_without_a_good_copy_is_one_line_not_a_restart(tmp_path):
    experiment = Experiment(tmp_path)
    _tune_state(experiment.tune_dir, "2026-01-01_00-00-00", trials=1)
    state = experiment.tune_dir / "experiment_state-2026-01-01_00-00-00.json"
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


# ------------------------------------------------------------------------------------------ free space


def _glyph_spec(glyph_cache: Path, tmp_path: Path, **changes) -> spec_module.SweepSpec:
    data = yaml.safe_load(spec_module.preset_path("default").read_text())
    data["dataset"].update(name="glyphs", root=str(glyph_cache), cache_dir=str(tmp_path / "cache"), image_size=16)
    data["backbone"] = "conv4"
    data.update(changes)
    return spec_module.with_absolute_paths(spec_module.parse(data))


def test_the_estimate_counts_kept_checkpoints_of_every_trial(glyph_cache, tmp_path):
    spec = _glyph_spec(glyph_cache, tmp_path, num_samples=3, max_concurrent=1)
    checkpoint = space_needed.checkpoint_bytes(spec, space_needed.base_classes(spec))
    assert 1.5e6 < checkpoint < 1.9e6  # conv4 at 16 px: a saved checkpoint weighs 1.65 MB
    assert space_needed.sweep_bytes(spec, checkpoint) == 3 * (2 * checkpoint + 128 * 1024) + checkpoint + 1024**2


def test_a_sweep_larger_than_the_free_space_is_warned_of_in_one_line(glyph_cache, tmp_path):
    spec = _glyph_spec(glyph_cache, tmp_path, num_samples=10_000_000)  # ~30 TB of checkpoints: more than any disk
    experiment = Experiment(tmp_path / "experiment")
    experiment.root.mkdir()
    logged: list[str] = []
    sweep_run.check_free_space(spec, experiment, logged.append)
    free = faults.free_bytes(experiment.root)
    needed = space_needed.sweep_bytes(spec, space_needed.checkpoint_bytes(spec, space_needed.base_classes(spec)))
    assert logged == [space_needed.warning_line(experiment.root, needed, free)]
    assert (
        f"may write {faults.human_bytes(needed)} to {experiment.root}, which has {faults.human_bytes(free)} free"
        in (logged[0])
    )
    logged.clear()
    sweep_run.check_free_space(_glyph_spec(glyph_cache, tmp_path, num_samples=2), experiment, logged.append)
    assert logged == []  # fits: nothing said


def test_a_filesystem_too_small_for_one_checkpoint_is_refused_before_the_trials(glyph_cache, tmp_path):
    filesystem = SmallFilesystem.mount(tmp_path / "fs", size_mb=1)
    if filesystem is None:
        pytest.skip("this process may not mount a tmpfs")
    try:
        experiment = Experiment(tmp_path / "fs" / "experiment")
        experiment.root.mkdir()
        with pytest.raises(StorageFaultError) as raised:
            sweep_run.check_free_space(_glyph_spec(glyph_cache, tmp_path, num_samples=3), experiment, print)
        assert str(raised.value).startswith(f"no space left on {experiment.root}: ")
        assert "a trial's first checkpoint needs 3.2 MB" in str(raised.value)
        assert list(experiment.root.iterdir()) == []
    finally:
        filesystem.unmount()


def test_the_lease_is_given_up_on_a_read_only_filesystem(tmp_path):
    from sweep.storage.lease import ExperimentLease, holder_of

    filesystem = SmallFilesystem.mount(tmp_path / "fs", size_mb=1)
    if filesystem is None:
        pytest.skip("this process may not mount a tmpfs")
    try:
        lease = ExperimentLease(tmp_path / "fs", heartbeat_s=0.05).acquire()
        filesystem.read_only()
        lease.release()  # cannot remove its file: no error, the heartbeat stopped
        holder = holder_of(tmp_path / "fs")
        assert holder is not None and holder.token == lease.token
        assert lease._thread is None
    finally:
        filesystem.clear()
        filesystem.unmount()
