"""The sweep's Optuna search: Ray Tune's OptunaSearch, with every Optuna trial linked to the Ray trial it ran as.

While a sweep runs, `LinkedOptunaSearch` sets the user attributes of `sweep.storage.optuna_study` on each Optuna trial:
`ray_trial_id` when Tune asks for its point, then `epochs_run` and `stop_reason` (the one `sweep.storage.results` gives
the report, from the same function) when the trial ends, before Optuna records its value. So optuna-dashboard shows,
for every trial, which Ray trial (tune/trial_<id>/, the report's `trial` column) it is and how it ended.
What the study records of a finished trial follows the spec's `searcher` section: its value is the objective of its
last report (Ray's OptunaSearch) or of its best eligible report (`trial_value: best`, the report promotion ranks it
by), and a trial ASHA stopped before the budget is COMPLETE like a finished one or PRUNED (`stopped_trials: pruned`,
its intermediate values kept), so TPE does not learn from a rung's value as from a full run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from sweep.schema.objectives import objective_value, selection_score
from sweep.storage.experiment import Experiment
from sweep.storage.optuna_study import EPOCHS_RUN, RAY_TRIAL_ID, STOP_REASON
from sweep.storage.results import stop_reason_of


class LinkedOptunaSearch(OptunaSearch):
    """OptunaSearch that stores the Ray trial id, epochs run and stop reason on each Optuna trial."""

    def __init__(
        self,
        *args: Any,
        experiment_root: str,
        max_epochs: int,
        trial_value: str = "last",
        stopped_trials: str = "complete",
        selection: tuple[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._experiment_root = experiment_root
        self._max_epochs = max_epochs
        self._trial_value = trial_value
        self._stopped_trials = stopped_trials
        self._selection = selection  # (selection metric, selection_from_epoch): which report is a trial's best
        self._epochs_run: dict[str, int] = {}
        self._best: dict[str, tuple[float, float]] = {}  # trial id -> (selection score, objective) of its best report

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
        self._keep_best(trial_id, result)
        try:
            super().on_trial_result(trial_id, result)
        except UpdateFinishedTrialError:
            # Finished in the study before the driver died, after Tune last saved it: the resumed sweep trains it
            # again from its last saved checkpoint. The study keeps the value it was told; nothing to add.
            pass

    def _keep_best(self, trial_id: str, result: dict[str, Any]) -> None:
        """Remember the objective of the trial's best report by the selection metric (the earliest of equal ones)."""
        if self._selection is None:
            return
        score = selection_score(result, *self._selection)
        value = objective_value(result, str(self.metric))
        if score is not None and value is not None and score > self._best.get(trial_id, (-float("inf"), 0.0))[0]:
            self._best[trial_id] = (score, value)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        """Store how the trial ended on its Optuna trial, then record its value as spec.searcher says."""
        trial = self._ot_trials.get(trial_id)
        if result is not None:
            self._keep_best(trial_id, result)  # a stopping report reaches the searcher only here
        epochs = max(self._epochs_run.get(trial_id, 0), int((result or {}).get("epoch", 0)))
        if trial is not None and trial_id not in self._completed_trials:
            trial_dir = Experiment(Path(self._experiment_root)).trial_dir(trial_id)
            reason = stop_reason_of("ERROR" if error else "TERMINATED", epochs, self._max_epochs, trial_dir)
            try:
                trial.set_user_attr(EPOCHS_RUN, epochs)
                trial.set_user_attr(STOP_REASON, reason)
            except UpdateFinishedTrialError:
                # Finished in the study before the driver died, but after Tune last saved this searcher: a resumed
                # sweep completes the Ray trial again. Its attributes were stored when it finished; keep them.
                pass
            if not error and result is not None and 0 < epochs < self._max_epochs and self._stopped_trials == "pruned":
                self._tell_pruned(trial_id)
                return
            if not error and result is not None and self._trial_value == "best" and trial_id in self._best:
                result = {**result, str(self.metric): self._best[trial_id][1]}
        super().on_trial_complete(trial_id, result=result, error=error)

    def _tell_pruned(self, trial_id: str) -> None:
        """Record a trial stopped before the budget as PRUNED (its intermediate values stay in the study)."""
        study = self._ot_study
        assert study is not None, "the study is set up with the space"
        try:
            study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
        except (UpdateFinishedTrialError, ValueError):
            pass  # finished in the study before the driver died (see above): keep what it was told then
        self._completed_trials.add(trial_id)
