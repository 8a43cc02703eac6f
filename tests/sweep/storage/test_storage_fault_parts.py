"""The parts of the storage-fault handling without a cluster: telling a storage fault from other errors through the
wrappers it arrives in, the one-line message, the free-space estimate and its warning (on a real filesystem too small
for the sweep), the lease given back on a read-only filesystem. Saved state: test_saved_state.py."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import yaml

from sweep.cli import main
from sweep.errors import StorageFaultError
from sweep.schema import spec as spec_module
from sweep.storage import faults, space_needed
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


def test_a_filesystem_too_small_for_the_sweep_is_warned_of_with_both_figures(glyph_cache, tmp_path):
    """An 8 MB filesystem: one trial's checkpoints fit, the sweep's (12.6 MB) do not."""
    filesystem = SmallFilesystem.mount(tmp_path / "fs", size_mb=8)
    if filesystem is None:
        pytest.skip("this process may not mount a tmpfs")
    try:
        experiment = Experiment(tmp_path / "fs" / "experiment")
        experiment.root.mkdir()
        spec = _glyph_spec(glyph_cache, tmp_path, num_samples=3, max_concurrent=1)
        logged: list[str] = []
        sweep_run.check_free_space(spec, experiment, logged.append)
        needed = space_needed.sweep_bytes(spec, space_needed.checkpoint_bytes(spec, space_needed.base_classes(spec)))
        free = faults.free_bytes(experiment.root)
        assert free is not None and free < needed
        assert logged == [
            f"Warning:     the sweep may write {faults.human_bytes(needed)} to {experiment.root}, which has "
            f"{faults.human_bytes(free)} free; if it fills up the sweep stops in one line (exit 4) and the same "
            "command resumes it once space is freed"
        ]
        assert faults.human_bytes(needed).endswith(" MB") and 12 < float(faults.human_bytes(needed).split()[0]) < 14
        assert list(experiment.root.iterdir()) == []  # nothing written
    finally:
        filesystem.unmount()


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
