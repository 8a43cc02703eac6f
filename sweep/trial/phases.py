"""Where a trial's wall time goes before its first training step and after its last: named phase marks.

`sweep.trial.run` and `train_epoch` call `mark(name)` at the end of each phase (cache open, episode sets, model
build, first step, final validation, report, ...). Nothing is recorded unless a caller opened `recording()`
(benchmarks/trial_startup.py does), so a trial pays one function call per mark. A phase's time is from the previous
mark (or the recording's start) to its own; a phase marked again sums up, but "first step" is marked once.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path


class PhaseClock:
    """Marks [(phase, seconds since the previous mark)] from `start` (time.perf_counter)."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.perf_counter() if start is None else start
        self._last = self.start
        self.phases: list[tuple[str, float]] = []

    def mark(self, name: str, *, once: bool = False) -> None:
        """End phase `name` now: its time since the previous mark is added to the phase's total (a phase that
        recurs, such as the training between validations, sums up); with `once`, a phase already marked is ignored
        (its time then counts toward the next mark)."""
        known = [index for index, (phase, _) in enumerate(self.phases) if phase == name]
        if known and once:
            return
        now = time.perf_counter()
        if known:
            self.phases[known[0]] = (name, self.phases[known[0]][1] + now - self._last)
        else:
            self.phases.append((name, now - self._last))
        self._last = now

    def since_start(self, name: str) -> float:
        """Seconds from the start to the end of the first phase `name` (phases recorded once before it)."""
        total = 0.0
        for phase, seconds in self.phases:
            total += seconds
            if phase == name:
                return total
        raise KeyError(name)


_active: PhaseClock | None = None


def mark(name: str, *, once: bool = False) -> None:
    """End phase `name` on the recording clock (PhaseClock.mark), if one is open."""
    if _active is not None:
        _active.mark(name, once=once)


@contextlib.contextmanager
def recording(clock: PhaseClock | None = None) -> Iterator[PhaseClock]:
    """Record the marks made inside the block (in any thread of this process) on `clock` (a new one by default)."""
    global _active
    previous, _active = _active, clock or PhaseClock()
    try:
        yield _active
    finally:
        _active = previous


PHASES_DIR_ENV = "NEGMARGIN_PHASES_DIR"  # set (benchmarks/trial_startup.py): Tune trials record their phases there


@contextlib.contextmanager
def recording_to_env_dir(name: str) -> Iterator[None]:
    """When $NEGMARGIN_PHASES_DIR is set, record the block's phases and write them, with the process id and
    wall-clock entry and exit times, to <dir>/<name>-<pid>.json; else do nothing."""
    folder = os.environ.get(PHASES_DIR_ENV)
    if not folder:
        yield
        return
    entered = time.time()
    with recording() as clock:
        try:
            yield
        finally:
            record = {"name": name, "pid": os.getpid(), "entered": entered, "exited": time.time()}
            record["phases"] = clock.phases
            Path(folder, f"{name}-{os.getpid()}.json").write_text(json.dumps(record))
