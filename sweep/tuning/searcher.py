"""The sweep's Optuna search: Ray Tune's OptunaSearch, with every Optuna trial linked to the Ray trial it ran as.

While a sweep runs, `LinkedOptunaSearch` sets the user attributes of `sweep.tuning.optuna_study` on each Optuna trial:
`ray_trial_id` when Tune asks for its point, then `epochs_run` and `stop_reason` (the one `sweep.storage.results` gives
the report, from the same function) when the trial ends, before Optuna records its value. So optuna-dashboard shows,
for every trial, which Ray trial (tune/trial_<id>/, the report's `trial` column) it is and how it ended.
Optuna's value of a trial stays what OptunaSearch tells it: the objective of the trial's last report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from ray.tune.search.optuna import OptunaSearch

from sweep.storage.experiment import Experiment
from sweep.storage.results import stop_reason_of
from sweep.tuning.optuna_study import EPOCHS_RUN, RAY_TRIAL_ID, STOP_REASON


class LinkedOptunaSearch(OptunaSearch):
    """OptunaSearch that stores the Ray trial id, epochs run and stop reason on each Optuna trial."""

    def __init__(self, *args: Any, experiment_root: str, max_epochs: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._experiment_root = experiment_root
        self._max_epochs = max_epochs
        self._epochs_run: dict[str, int] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The point of a new Ray trial, its Optuna trial tagged with the Ray trial id."""
        point = super().suggest(trial_id)
        trial = self._ot_trials.get(trial_id)
        if trial is not None:
            trial.set_user_attr(RAY_TRIAL_ID, trial_id)
        return point

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Count the trial's epochs, then let Optuna record the intermediate value."""
        self._epochs_run[trial_id] = max(self._epochs_run.get(trial_id, 0), int(result.get("epoch", 0)))
        try:
            super().on_trial_result(trial_id, result)
        except UpdateFinishedTrialError:
            # Finished in the study before the driver died, after Tune last saved it: the resumed sweep trains it
            # again from its last saved checkpoint. The study keeps the value it was told; nothing to add.
            pass

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        """Store how the trial ended on its Optuna trial, then let Optuna record its value."""
        trial = self._ot_trials.get(trial_id)
        if trial is not None and trial_id not in self._completed_trials:
            epochs = max(self._epochs_run.get(trial_id, 0), int((result or {}).get("epoch", 0)))
            trial_dir = Experiment(Path(self._experiment_root)).trial_dir(trial_id)
            reason = stop_reason_of("ERROR" if error else "TERMINATED", epochs, self._max_epochs, trial_dir)
            try:
                trial.set_user_attr(EPOCHS_RUN, epochs)
                trial.set_user_attr(STOP_REASON, reason)
            except UpdateFinishedTrialError:
                # Finished in the study before the driver died, but after Tune last saved this searcher: a resumed
                # sweep completes the Ray trial again. Its attributes were stored when it finished; keep them.
                pass
        super().on_trial_complete(trial_id, result=result, error=error)
