"""Atomic file writes and an advisory file lock: the one implementation every writer of a shared file uses.

A writer fills a temporary file in the destination's folder and renames it over the destination (os.replace), so
a reader never sees half a file and an interrupted write leaves the old file in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: str | Path, write: Callable[[BinaryIO], object], *, mode: int | None = None) -> Path:
    """Call `write(stream)` on a temporary file beside `path`, then rename it to `path`; `mode` sets its permissions
    (default: mkstemp's 0600 widened by nothing). Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def write_text_atomically(path: str | Path, text: str, *, mode: int = 0o644) -> Path:
    """Write `text` (UTF-8) to `path` atomically; readable by others by default, like an ordinary file."""
    return write_atomically(path, lambda stream: stream.write(text.encode()), mode=mode)


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on the file `path` (created if missing; POSIX flock, no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
