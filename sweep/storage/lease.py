"""One driver per experiment: a lease on the experiment directory that works on NFS (no `flock`).

    <experiment>/lease/
        driver.json              who holds the lease: token, owner, host, pid (+ its start time), command, acquired
        heartbeat-<token>.json   the holder's heartbeat, rewritten every HEARTBEAT_S seconds (temporary file + rename)
        takeover-<token>         made by the driver that took over the (stale) lease <token>: one claim per lease

Taking the lease is one atomic create of driver.json: the record is written to a temporary file, then hard-linked
to its name (`link` is atomic on NFS, and fails if the name exists; when a lost NFS reply makes it fail although it
did the work, the temporary file's link count says so). A filesystem without hard links (some FUSE mounts) gets
`O_CREAT | O_EXCL` instead (atomic from NFSv3 on).

Releasing removes driver.json. A lease is stale, and may be taken over, when its heartbeat is older than
STALE_AFTER_S seconds by the reader's clock (machines that share the experiment keep their clocks in step, NTP), when
a waiting reader has seen the heartbeat not change for STALE_AFTER_S seconds of its own clock (whatever the clocks),
or at once when the holder ran on this host and its process is gone. Two drivers that find the same stale lease
race for its claim file `takeover-<token>` (again one atomic link): the winner replaces driver.json by its own
record (rename), the loser reads the new holder and refuses. A claim is never removed, so a lease is taken over once.

The holder's heartbeat thread checks, every beat, that driver.json still names it; when another driver has taken
the lease over (this one was frozen or cut off from the storage for longer than STALE_AFTER_S), it stops this
process at once (exit code LEASE_LOST_EXIT) before it writes anything more.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from data.atomic import write_text_atomically
from sweep.errors import ExperimentError

LEASE_DIR = "lease"
DRIVER_FILE = "driver.json"
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0
LEASE_LOST_EXIT = 3
NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS)


class LeaseHeldError(ExperimentError):
    """Another live driver holds the experiment's lease."""


@dataclass(frozen=True)
class Holder:
    """The record of a lease holder (driver.json), with its last heartbeat."""

    token: str
    owner: str
    host: str
    pid: int
    pid_start: str
    command: str
    acquired: float
    heartbeat: float | None = None
    beats: int = 0

    def describe(self, now: float | None = None) -> str:
        """'pid 12 on host h (user u), started 16:50:01 UTC, last heartbeat 3 s ago'."""
        now = time.time() if now is None else now
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.acquired))
        beat = self.heartbeat if self.heartbeat is not None else self.acquired
        return (
            f"pid {self.pid} on host {self.host} (user {self.owner}), started {started}, "
            f"last heartbeat {max(0.0, now - beat):.0f} s ago"
        )


def process_start(pid: int) -> str:
    """The start time of process `pid` in clock ticks since boot (/proc/PID/stat field 22), '' if unknown: with the
    pid it names one process, even after the pid is reused."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return text.rpartition(")")[2].split()[19]


def _process_alive(pid: int, start: str) -> bool:
    """Whether process `pid` runs on this host and is the one that started at `start`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    current = process_start(pid)
    return not (start and current and current != start)


class ExperimentLease:
    """The lease of one experiment directory: `acquire()` it (or use it as a context manager), `release()` it."""

    def __init__(
        self,
        root: str | Path,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
        on_lost: Callable[[Holder | None], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.directory = self.root / LEASE_DIR
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.on_lost = on_lost or _stop_this_process
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beats = 0

    @property
    def driver_file(self) -> Path:
        return self.directory / DRIVER_FILE

    def heartbeat_file(self, token: str) -> Path:
        return self.directory / f"heartbeat-{token}.json"

    # ------------------------------------------------------------------ reading

    def holder(self) -> Holder | None:
        """The current holder with its heartbeat, or None when nobody holds the lease."""
        try:
            record = json.loads(self.driver_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # half written (a filesystem without hard links): stale once it is old
            modified = self.driver_file.stat().st_mtime
            return Holder(f"unreadable-{modified:.0f}", "?", "?", 0, "", "?", acquired=modified)
        heartbeat: dict = {}
        try:
            heartbeat = json.loads(self.heartbeat_file(record["token"]).read_text())
        except (OSError, ValueError):
            pass
        return Holder(
            **record,
            heartbeat=heartbeat.get("time"),
            beats=int(heartbeat.get("beats", 0)),
        )

    def is_stale(self, holder: Holder, now: float | None = None) -> bool:
        """Heartbeat older than stale_after_s, or a holder process of this host that is gone."""
        now = time.time() if now is None else now
        if holder.host == socket.gethostname() and holder.pid and not _process_alive(holder.pid, holder.pid_start):
            return True
        beat = holder.heartbeat if holder.heartbeat is not None else holder.acquired
        return now - beat > self.stale_after_s

    def refuse_if_held(self) -> None:
        """LeaseHeldError naming the holder when a live driver holds the lease (a read-only check, for refusing
        before any work; `acquire` decides)."""
        holder = self.holder()
        if holder is not None and not self.is_stale(holder):
            raise self._held_error(holder)

    def _held_error(self, holder: Holder) -> LeaseHeldError:
        return LeaseHeldError(
            f"{self.root}: another driver is running this experiment: {holder.describe()}; its lease is "
            f"taken over once its heartbeat is {self.stale_after_s:.0f} s old (--lease-wait SECONDS waits)"
        )

    # ------------------------------------------------------------------ taking and giving back

    def acquire(self, wait_s: float = 0.0) -> ExperimentLease:
        """Take the lease (waiting up to `wait_s` seconds for a live holder to release it or go stale); start the
        heartbeat. LeaseHeldError naming the holder if it is still live then."""
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        unchanged_since: dict[tuple[str, int], float] = {}
        while True:
            holder = self.holder()
            if holder is None:
                if self._create(self.driver_file):
                    return self._started()
                continue  # another driver created it first: read it
            seen = unchanged_since.setdefault((holder.token, holder.beats), time.monotonic())
            frozen = time.monotonic() - seen > self.stale_after_s
            if frozen or self.is_stale(holder):
                claim = self.directory / f"takeover-{holder.token}"
                if self._create(claim):
                    os.replace(self._record_file(), self.driver_file)
                    self.heartbeat_file(holder.token).unlink(missing_ok=True)
                    return self._started()
                if time.monotonic() > deadline + self.stale_after_s:  # the claimant died before it took over
                    raise LeaseHeldError(f"{self.root}: a driver claimed this experiment's stale lease ({claim})")
                time.sleep(0.05)
                continue  # another driver is taking it over: read the new holder
            if time.monotonic() >= deadline:
                self._discard()
                raise self._held_error(holder)
            time.sleep(min(self.heartbeat_s, max(0.05, deadline - time.monotonic())))

    def release(self) -> None:
        """Stop the heartbeat and give the lease back (if this driver still holds it)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        try:
            holder = self.holder()
            if holder is not None and holder.token == self.token:
                self.driver_file.unlink(missing_ok=True)
            self._discard()
            self.directory.rmdir()  # when empty: a released experiment keeps no trace of its lease
        except OSError:  # not empty, or the storage failed (read-only): a lease left behind goes stale
            pass

    def __enter__(self) -> ExperimentLease:
        return self if self._thread is not None else self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # ------------------------------------------------------------------ internals

    def _record(self) -> dict:
        pid = os.getpid()
        return {
            "token": self.token,
            "owner": getpass.getuser(),
            "host": socket.gethostname(),
            "pid": pid,
            "pid_start": process_start(pid),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "acquired": time.time(),
        }

    def _record_file(self) -> Path:
        return self.directory / f".driver-{self.token}.tmp"

    def _create(self, path: Path) -> bool:
        """Atomically create `path` holding this driver's record; False if it exists already."""
        self._beat()  # a reader that finds the new holder finds its heartbeat too
        record = self._record_file()
        record.write_text(json.dumps(self._record(), indent=2))
        try:
            os.link(record, path)
        except FileExistsError:
            if record.stat().st_nlink == 2:  # NFS: the link was made but its reply was lost
                return True
            self._discard()
            return False
        except OSError as error:
            if error.errno not in NO_HARD_LINKS:
                raise
            created = self._create_exclusive(path, record.read_text())
            if not created:
                self._discard()
            return created
        return True

    def _discard(self) -> None:
        """Remove this driver's heartbeat and record files (it does not hold the lease)."""
        self.heartbeat_file(self.token).unlink(missing_ok=True)
        self._record_file().unlink(missing_ok=True)

    @staticmethod
    def _create_exclusive(path: Path, text: str) -> bool:
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        return True

    def _beat(self) -> None:
        self._beats += 1
        write_text_atomically(self.heartbeat_file(self.token), json.dumps({"time": time.time(), "beats": self._beats}))

    def _started(self) -> ExperimentLease:
        self._record_file().unlink(missing_ok=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat_loop, name="experiment-lease", daemon=True)
        self._thread.start()
        return self

    def _heartbeat_loop(self) -> None:
        """Every heartbeat_s: check that this driver still holds the lease, then rewrite its heartbeat."""
        while not self._stop.wait(self.heartbeat_s):
            try:
                holder = self.holder()
            except OSError:  # storage briefly unreachable: try again next beat
                continue
            if holder is None or holder.token != self.token:
                self.on_lost(holder)
                return
            try:
                self._beat()
            except OSError:
                continue


def _stop_this_process(holder: Holder | None) -> None:
    """Another driver took the lease over: stop here, before this driver writes anything more."""
    who = holder.describe() if holder is not None else "nobody (the lease file is gone)"
    print(f"negmargin: this driver lost its experiment lease; it is now held by {who}: stopping", file=sys.stderr)
    sys.stderr.flush()
    os._exit(LEASE_LOST_EXIT)


def holder_of(root: str | Path) -> Holder | None:
    """The driver holding the lease of the experiment at `root` (None if none)."""
    return ExperimentLease(root).holder()
