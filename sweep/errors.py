"""Errors of the sweep package: user-caused ones (one clear line, exit 2) and a training divergence."""

from data.errors import UserError


class SpecError(UserError):
    """A sweep spec that cannot be run: names the key and the reason."""


class TrialConfigError(UserError):
    """A trial configuration that cannot be run: names the key and the reason."""


class ExperimentError(UserError):
    """An experiment directory that is missing, incomplete or not ours."""


class DivergenceError(RuntimeError):
    """Training produced a NaN or infinite loss (or weights); names the epoch and iteration. `epoch`: where."""

    def __init__(self, message: str, *, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch


class StorageFaultError(ExperimentError):
    """The experiment's filesystem failed (full, over quota, read-only, stale, I/O error): names the path, the fault
    and the command to run once it is fixed (the CLI exits with sweep.storage.faults.STORAGE_FAULT_EXIT)."""

    def __init__(self, message: str, *, path: str, errno: int) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno
