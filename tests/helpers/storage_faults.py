"""Faults of an experiment's filesystem, made for tests: a real small tmpfs (when this process may mount one) that
is filled up or remounted read-only, and an OSError injected into Ray Tune's copy of its state into the experiment
(the driver's real write point: ray.train._internal.storage._pyarrow_fs_copy_files).

A filesystem that a running sweep writes to cannot be remounted read-only (the kernel refuses while any file on it is
open for writing, as the Optuna study is: EBUSY), so a read-only filesystem under a running sweep is injected."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class SmallFilesystem:
    """A tmpfs of `size_mb` mounted at `root`: `fill()` leaves it 0 B free, `read_only()` remounts it read-only,
    `clear()` undoes both."""

    def __init__(self, root: Path, size_mb: int) -> None:
        self.root = root
        self.size_mb = size_mb
        self.ballast = root / ".ballast"

    @staticmethod
    def mount(root: Path, size_mb: int) -> SmallFilesystem | None:
        """Mount it; None when this process may not mount (not root, no CAP_SYS_ADMIN)."""
        root.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None:
            return None
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(root)], capture_output=True
        )
        return SmallFilesystem(root, size_mb) if done.returncode == 0 else None

    def fill(self) -> None:
        """Allocate every free byte to a ballast file."""
        with open(self.ballast, "ab") as stream:
            free = shutil.disk_usage(self.root).free
            if free:
                os.posix_fallocate(stream.fileno(), stream.tell(), free)

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.root)], check=True, capture_output=True)

    def clear(self) -> None:
        subprocess.run(["mount", "-o", "remount,rw", str(self.root)], check=True, capture_output=True)
        self.ballast.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.root)], capture_output=True)


@contextmanager
def failing_state_copy(
    monkeypatch: Any, tune_dir: Path, code: int, armed: Callable[[], bool], truncate: tuple[str, ...] = ()
) -> Iterator[list[str]]:
    """Ray Tune's copies into `tune_dir` fail with OSError(`code`) once `armed()`: the copy runs, then the newest
    file matching each glob of `truncate` is cut to half its size, as a full or failing disk leaves it. Yields the
    failed copies' destinations."""
    from ray.train._internal import storage

    real = storage._pyarrow_fs_copy_files
    failed: list[str] = []

    def copy(source: Any, destination: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(source, destination, *args, **kwargs)
        if str(destination).rstrip("/") == str(tune_dir) and armed():
            for pattern in truncate:
                path = sorted(tune_dir.glob(pattern))[-1]
                path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            failed.append(str(destination))
            raise OSError(code, os.strerror(code), str(destination))
        return result

    monkeypatch.setattr(storage, "_pyarrow_fs_copy_files", copy)
    yield failed


@contextmanager
def when(
    condition: Callable[[], bool], action: Callable[[], None], timeout_s: float = 600
) -> Iterator[threading.Event]:
    """Run `action` once, in a background thread, as soon as `condition()` holds (polled every 0.2 s); the event is
    set once it ran."""
    ran = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not stop.is_set() and time.monotonic() < deadline:
            if condition():
                action()
                ran.set()
                return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield ran
    finally:
        stop.set()
        thread.join()


def checkpoints(tune_dir: Path) -> int:
    """How many trial checkpoints the experiment holds now."""
    return sum(1 for _ in tune_dir.glob("trial_*/checkpoint_*/checkpoint.pt"))


FAULTS = {"ENOSPC": errno.ENOSPC, "EROFS": errno.EROFS, "EIO": errno.EIO}
