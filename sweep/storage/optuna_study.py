"""An experiment's Optuna study as a reader sees it: its name and each Optuna trial's link to its Ray trial.

The study is named after the experiment directory (`Experiment.study_name`). Every Optuna trial carries the user
attributes `ray_trial_id`, `stop_reason` (as `sweep.storage.results` and the report say it: completed, stopped early
(ASHA),
diverged, error) and `epochs_run`, written by `sweep.tuning.searcher.LinkedOptunaSearch` while the sweep runs. A trial a
dead driver asked for but Ray Tune never saved is closed as FAIL with stop_reason ORPHANED when the sweep resumes.
"""

from __future__ import annotations

from typing import Any

from sweep.errors import ExperimentError
from sweep.storage.experiment import Experiment

RAY_TRIAL_ID = "ray_trial_id"
STOP_REASON = "stop_reason"
EPOCHS_RUN = "epochs_run"
ORPHANED = "lost (its driver died before Ray Tune saved the trial)"


def study_name(experiment: Experiment) -> str:
    """The name of the study stored in the experiment's optuna.db (its only one), else the name a sweep gives it."""
    if not experiment.optuna_db.exists():
        return experiment.study_name
    import optuna

    names = optuna.get_all_study_names(storage=experiment.optuna_url)
    return names[0] if len(names) == 1 else experiment.study_name


def load_study(experiment: Experiment) -> Any:
    """The experiment's Optuna study (optuna.Study); ExperimentError if the sweep never started one."""
    if not experiment.optuna_db.exists():
        raise ExperimentError(f"{experiment.root}: no Optuna study yet (no optuna.db)")
    import optuna

    return optuna.load_study(study_name=study_name(experiment), storage=experiment.optuna_url)


def trials_by_ray_id(experiment: Experiment) -> dict[str, Any]:
    """The study's trials (optuna.trial.FrozenTrial) by the Ray trial id they ran as; unlinked ones are left out."""
    study = load_study(experiment)
    return {trial.user_attrs[RAY_TRIAL_ID]: trial for trial in study.trials if RAY_TRIAL_ID in trial.user_attrs}


def close_orphaned_trials(experiment: Experiment, saved_ray_ids: set[str]) -> int:
    """Mark failed the study's running trials that Ray Tune's saved state does not hold (`saved_ray_ids`): trials a
    driver asked for after Tune last saved its state, before it died. A resumed sweep never continues them (Tune asks
    for new points instead), so they would stay RUNNING forever. Returns how many were closed."""
    if not experiment.optuna_db.exists():
        return 0
    import optuna

    storage = optuna.storages.RDBStorage(experiment.optuna_url)
    names = optuna.get_all_study_names(storage=storage)
    if not names:
        return 0
    study_id = storage.get_study_id_from_name(study_name(experiment))
    closed = 0
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get(RAY_TRIAL_ID) in saved_ray_ids:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, STOP_REASON, ORPHANED)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
        closed += 1
    return closed


def dashboard_command(experiment: Experiment) -> str:
    """The optuna-dashboard command line that opens the experiment's study (the storage holds that one study)."""
    return f"optuna-dashboard {experiment.optuna_url}"
