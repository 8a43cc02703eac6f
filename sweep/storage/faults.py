"""Faults of the experiment's filesystem (full, over quota, read-only, stale NFS handle, I/O error) told apart from
everything else, wherever they surface: an OSError of our own writes, pyarrow's text through a Ray trial's error,
SQLite's through SQLAlchemy and Optuna (StorageInternalError), Ray Tune's logged state-sync failures.

A fault ends the sweep with one line (`StorageFaultError`): the path, what is wrong with it, and the command to run
once it is fixed; the CLI exits with STORAGE_FAULT_EXIT (beside 2, a user error, and 3, a lost lease).
"""

from __future__ import annotations

import contextlib
import errno
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from sweep.errors import StorageFaultError

STORAGE_FAULT_EXIT = 4
FAULT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ESTALE, errno.EIO)

# SQLite reports these faults in words (sqlite3.OperationalError), not errno numbers
_SQLITE_MESSAGES = {
    "database or disk is full": errno.ENOSPC,
    "attempt to write a readonly database": errno.EROFS,
    "disk i/o error": errno.EIO,
}
# Python's "[Errno 28] …", pyarrow's "[errno 28] …" and the strerror texts of the faults
_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)
_STRERRORS = {
    "no space left on device": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "stale file handle": errno.ESTALE,
    "input/output error": errno.EIO,
}


def fault_errno(error: BaseException) -> int | None:
    """The storage fault (an errno of FAULT_ERRNOS) behind `error`, following its causes (`__cause__`,
    `__context__`, SQLAlchemy's `.orig`, Ray's `.cause`); None when it is no storage fault."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        code = _own_errno(current)
        if code is not None:
            return code
        for attribute in ("__cause__", "__context__", "orig", "cause"):
            linked = getattr(current, attribute, None)
            if isinstance(linked, BaseException):
                pending.append(linked)
    return None


def _own_errno(error: BaseException) -> int | None:
    if isinstance(error, OSError) and error.errno in FAULT_ERRNOS:
        return error.errno
    return fault_errno_in_text(str(error))


def fault_errno_in_text(text: str) -> int | None:
    """The storage fault named in an error's text ("[Errno 28] …", "database or disk is full", …), or None."""
    lowered = text.lower()
    for number in _ERRNO_IN_TEXT.findall(lowered):
        if int(number) in FAULT_ERRNOS:
            return int(number)
    for table in (_SQLITE_MESSAGES, _STRERRORS):
        for words, code in table.items():
            if words in lowered:
                return code
    return None


def free_bytes(path: str | Path) -> int | None:
    """Free bytes (for an unprivileged user) on the filesystem of `path` or its nearest existing parent."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        return shutil.disk_usage(existing).free
    except OSError:
        return None


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KB', 0 -> '0 B' (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def describe(code: int, path: str | Path) -> str:
    """What is wrong with the filesystem of `path`, in words: 'no space left on /shared/exp: 0 B free'."""
    if code == errno.ENOSPC:
        free = free_bytes(path)
        return f"no space left on {path}" + (f": {human_bytes(free)} free" if free is not None else "")
    if code == errno.EDQUOT:
        return f"disk quota exceeded on {path}"
    if code == errno.EROFS:
        return f"{path} is on a read-only filesystem"
    if code == errno.ESTALE:
        return f"stale file handle on {path} (the shared filesystem was remounted or its export changed)"
    return f"I/O error on {path} (the storage failed a read or write)"


def storage_fault(error: BaseException, path: str | Path, command: str) -> StorageFaultError | None:
    """The one-line StorageFaultError for `error` met while working in the experiment at `path`, or None when
    `error` is no storage fault."""
    code = fault_errno(error)
    if code is None:
        return None
    message = (
        f"{describe(code, path)}; the sweep stopped, its finished trials and saved checkpoints kept; "
        f"once fixed, run: {command}"
    )
    return StorageFaultError(message, path=str(path), errno=code)


@contextlib.contextmanager
def stopping_on_faults(path: str | Path, command: str) -> Iterator[None]:
    """Turn a storage fault met inside the block into its one-line StorageFaultError (other errors pass as they
    are)."""
    try:
        yield
    except StorageFaultError:
        raise
    except Exception as error:
        fault = storage_fault(error, path, command)
        if fault is None:
            raise
        raise fault from error
