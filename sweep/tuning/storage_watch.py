"""A Ray Tune callback on the driver that stops the sweep at the first storage fault and keeps Tune's state safe.

- A trial that fails because the experiment's filesystem failed (its checkpoint or report could not be written:
  Ray passes pyarrow's "[Errno 28] … No space left on device" on as the trial's error) is not the trial's own failure:
  the callback takes the failure off the trial's count (FailureConfig(max_failures)) and stops the sweep at once by
  raising an OSError of that errno, before Tune saves the failure or retries the trial on the same full disk. The
  last saved state holds the trial as running, so the same command continues it from its last checkpoint.
- Ray Tune saves its own state in the background and only logs a failed save; a log record of a storage fault from
  its state-saving loggers stops the sweep the same way at the next step.
- After every save of Tune's state, the state just saved (in the driver's staging folder, whole) is copied into the
  experiment (sweep.storage.tune_state), so a resume never depends on a state file a fault left truncated, and never
  falls back to a state older than Tune's last save.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ray.tune import Callback

from sweep.storage import faults, tune_state

# Tune's loggers of a failed save: the background copy's, the syncer's, and the final save's (ray.tune.tune)
STATE_LOGGERS = ("ray.tune.execution.experiment_state", "ray.train._internal.syncer", "ray.tune.tune")
TRIAL_LOGGER = "ray.tune.execution.tune_controller"  # logs each trial failure with its traceback

_ACTIVE: list[StorageWatch] = []


class _FaultLog(logging.Filter):
    """Notes the first storage fault Tune's loggers report, and drops their records of storage faults (with their
    tracebacks): the sweep reports the fault itself, in one line."""

    def __init__(self) -> None:
        super().__init__()
        self.fault: OSError | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        code = faults.fault_errno(error) if error is not None else None
        if code is None:
            code = faults.fault_errno_in_text(record.getMessage())
        if code is None:
            return True
        if self.fault is None and record.name in STATE_LOGGERS:
            self.fault = OSError(code, f"{os.strerror(code)} (saving Ray Tune's experiment state)")
        return False


class StorageWatch(Callback):
    """Stop the sweep at the first storage fault (a trial's or Tune's own), and keep a good copy of Tune's state."""

    def __init__(self, experiment_root: str, tune_dir: str) -> None:
        self.experiment_root = experiment_root
        self.tune_dir = tune_dir
        self._log: _FaultLog | None = None
        self._copied: tuple[str, int, int] | None = None  # the last save copied: (file, mtime_ns, size)
        self._raised = False

    def __getstate__(self) -> dict[str, Any]:
        return {"experiment_root": self.experiment_root, "tune_dir": self.tune_dir}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.experiment_root = state["experiment_root"]
        self.tune_dir = state["tune_dir"]
        self._log = None
        self._copied = None
        self._raised = False

    def setup(self, stop: Any = None, num_samples: Any = None, total_num_samples: Any = None, **info: Any) -> None:
        """Listen to Tune's state-saving and trial loggers for the length of the fit (undone by `detach_all`)."""
        self._log = _FaultLog()
        for name in (*STATE_LOGGERS, TRIAL_LOGGER):
            logging.getLogger(name).addFilter(self._log)
        _ACTIVE.append(self)

    def detach(self) -> None:
        """Stop listening to Tune's loggers."""
        if self._log is not None:
            for name in (*STATE_LOGGERS, TRIAL_LOGGER):
                logging.getLogger(name).removeFilter(self._log)
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        """Copy the state Tune saved in this step, if it saved one; then raise a storage fault Tune logged."""
        self._copy_last_save(trials)
        self._raise_logged_fault()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """After Tune's final save: copy it, and raise a storage fault Tune logged while making it."""
        self._copy_last_save(trials)
        self._raise_logged_fault()

    def _raise_logged_fault(self) -> None:
        if self._log is not None and self._log.fault is not None and not self._raised:
            self._raised = True
            raise self._log.fault

    def _copy_last_save(self, trials: list[Any]) -> None:
        saved_dir = staging_dir(trials)
        saved = last_save(saved_dir) if saved_dir is not None else None
        if saved_dir is None or saved is None or saved == self._copied:
            return
        try:
            tune_state.keep_good_copy(Path(self.experiment_root), saved_dir, Path(self.tune_dir))
        except OSError as error:
            if faults.fault_errno(error) is not None:
                raise  # the experiment's filesystem failed: end the sweep
            return  # (a file Tune was replacing): the next step copies it
        self._copied = saved

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial failed and Tune is about to retry it: when storage failed it, stop instead."""
        self._stop_on_storage_fault(trial)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial failed for the last time: when storage failed it, stop the sweep."""
        self._stop_on_storage_fault(trial)

    def _stop_on_storage_fault(self, trial: Any) -> None:
        code = faults.fault_errno_in_text(last_failure(trial))
        if code is None:
            return
        trial.run_metadata.num_failures = max(0, trial.run_metadata.num_failures - 1)  # not the trial's own failure
        raise OSError(code, f"{os.strerror(code)} (trial {trial.trial_id} could not write its results)")


def last_failure(trial: Any) -> str:
    """The text of the trial's latest failure in its error file on the driver ('' when there is none)."""
    path = trial.error_file
    if not path:
        return ""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return text.rpartition("Failure # ")[2]


def staging_dir(trials: list[Any]) -> Path | None:
    """The folder on the driver's disk that Tune saves its experiment state into before copying it into the
    experiment (StorageContext.experiment_driver_staging_path, the same for every trial); None before the first
    trial."""
    storage = getattr(trials[0], "storage", None) if trials else None
    path = getattr(storage, "experiment_driver_staging_path", None)
    return Path(path) if path else None


def last_save(saved_dir: Path) -> tuple[str, int, int] | None:
    """(name, mtime_ns, size) of the newest experiment state in `saved_dir`: it changes at every save."""
    states = sorted(saved_dir.glob(tune_state.EXPERIMENT_STATE))
    try:
        found = states[-1].stat() if states else None
    except OSError:
        return None
    return (states[-1].name, found.st_mtime_ns, found.st_size) if found is not None else None


def detach_all() -> None:
    """Detach every watch of this process (after a fit, however it ended)."""
    for watch in list(_ACTIVE):
        watch.detach()
