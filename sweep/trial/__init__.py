"""One trial without Ray: its config, the training loop, `run` (with any reporter), `train` (into a run directory, as
`negmargin train`), checkpoint names and the run-directory reporter.

The names below are imported from their submodules on first use (PEP 562), so that the torch-free parts (the config,
sweep.schema.trial_config; the checkpoint paths, sweep.trial.checkpoints) load without torch.
"""

from data.lazy_exports import lazy_getattr

_EXPORTS = {
    "TrialConfig": "sweep.schema.trial_config",
    "TrialSettings": "sweep.schema.trial_config",
    "Reporter": "sweep.trial.runner",
    "metric_names": "sweep.trial.runner",
    "run": "sweep.trial.runner",
    "train": "sweep.trial.standalone",
    "TrainedRun": "sweep.trial.standalone",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
