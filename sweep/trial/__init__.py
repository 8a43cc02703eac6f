"""One trial without Ray: its config, the training loop, `run`, checkpoints and the run-directory reporter.

`run` and `TrialConfig` are imported from their submodules on first use (PEP 562), so that the torch-free parts
(`sweep.trial.config`, `sweep.trial.checkpoints`) load without torch: the spec and `sweep report` need only those.
"""

import importlib

_EXPORTS = {
    "TrialConfig": "sweep.trial.config",
    "TrialSettings": "sweep.trial.config",
    "Reporter": "sweep.trial.runner",
    "metric_names": "sweep.trial.runner",
    "run": "sweep.trial.runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """The exported `name`, imported from its submodule on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
