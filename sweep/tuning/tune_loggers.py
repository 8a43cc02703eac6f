"""What Ray Tune itself writes into an experiment: its JSON and CSV results, never its own TensorBoard files.

`sweep.storage.results` reads Tune's `result.json` / `progress.csv` back; the experiment's TensorBoard view is the
report's
alone (`<exp>/tensorboard`, written by `sweep.report`). Tune adds its TensorBoardX logger to every run unless one is
among the callbacks, so the run config carries `NoTensorBoardLogger` in its place. A callback, not the environment
variable TUNE_DISABLE_AUTO_CALLBACK_LOGGERS: callbacks travel with the run config, so they also hold where `fit()`
runs on the cluster (a ray:// client) and when `Tuner.restore` resumes a sweep from its tuner.pkl.
"""

from __future__ import annotations

from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback


class NoTensorBoardLogger(TBXLoggerCallback):
    """Takes the place of Tune's TensorBoardX logger and writes nothing."""

    def __init__(self) -> None:  # the parent imports tensorboardX and opens writers; this one has none
        pass

    def log_trial_start(self, trial: Any) -> None:
        """Nothing to open."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        """Nothing to write."""

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        """Nothing to close."""


def result_loggers() -> list[Any]:
    """The logger callbacks of every Tune run of a sweep: Tune's JSON and CSV results, no TensorBoard files."""
    return [JsonLoggerCallback(), CSVLoggerCallback(), NoTensorBoardLogger()]
