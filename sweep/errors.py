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
