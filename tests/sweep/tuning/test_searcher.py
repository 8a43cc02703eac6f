"""The sweep's Optuna search on a real SQLite study (no Ray cluster: the searcher is called as Tune calls it)."""

import pickle

import optuna
import pytest

from sweep.schema import spec as spec_module
from sweep.storage import experiment as experiments
from sweep.storage import optuna_study
from sweep.storage.optuna_study import EPOCHS_RUN, STOP_REASON
from sweep.tuning import tuner

from helpers.specs import full_search_spec, full_search_spec_data


@pytest.mark.parametrize("stopped_trials, state, value", [("complete", "COMPLETE", 40.0), ("pruned", "PRUNED", 40.0)])
def test_a_trial_finished_before_the_driver_died_can_be_completed_again_on_resume(
    tmp_path, stopped_trials, state, value
):
    spec = _spec_telling_stopped_trials(stopped_trials)
    experiment = experiments.create(spec, storage=tmp_path)
    searcher = tuner.searcher(spec, experiment)
    assert searcher.suggest("t0") is not None
    searcher.on_trial_result("t0", {"epoch": 2, "training_iteration": 1, spec.objective: 40.0})
    searcher.on_trial_complete("t0", {"epoch": 2, spec.objective: 40.0})  # stopped at epoch 2 of 6
    # The resumed driver's searcher: restored from Tune's last save, from before t0 finished in the study.
    resumed = tuner.searcher(spec, experiment)
    resumed._ot_trials = dict(searcher._ot_trials)
    resumed.on_trial_complete("t0", {"epoch": 4, spec.objective: 45.0})  # raised UpdateFinishedTrialError before
    stored = optuna.load_study(study_name=experiment.study_name, storage=experiment.optuna_url).trials[0]
    assert stored.state.name == state and stored.value == value  # what it was told first is kept (a pruned
    # trial's value is its last intermediate one)
    assert stored.user_attrs[EPOCHS_RUN] == 2 and STOP_REASON in stored.user_attrs


def _spec_telling_stopped_trials(stopped_trials: str) -> spec_module.SweepSpec:
    """full_search_spec with a trial stopped before the budget recorded as `stopped_trials`, its last value."""
    data = full_search_spec_data()
    data["searcher"] = {"stopped_trials": stopped_trials, "trial_value": "last"}
    return spec_module.parse(data)


def test_a_resumed_trial_retrained_after_it_finished_in_the_study_reports_without_crashing(tmp_path):
    spec = _spec_telling_stopped_trials("complete")  # t0 ends at epoch 2 of 6
    experiment = experiments.create(spec, storage=tmp_path)
    searcher = tuner.searcher(spec, experiment)
    searcher.suggest("t0")
    searcher.on_trial_result("t0", {"epoch": 1, "training_iteration": 1, spec.objective: 30.0})
    saved = pickle.dumps(searcher._ot_trials)  # Tune's last save of the searcher: t0 running at epoch 1
    searcher.on_trial_result("t0", {"epoch": 2, "training_iteration": 2, spec.objective: 40.0})
    searcher.on_trial_complete("t0", {"epoch": 2, spec.objective: 40.0})
    resumed = tuner.searcher(spec, experiment)
    resumed._ot_trials = pickle.loads(saved)
    # The resumed sweep trains epoch 2 again from the epoch-1 checkpoint: reporting it raised before.
    resumed.on_trial_result("t0", {"epoch": 2, "training_iteration": 2, spec.objective: 40.0})
    resumed.on_trial_complete("t0", {"epoch": 2, spec.objective: 40.0})
    stored = optuna_study.trials_by_ray_id(experiment)["t0"]
    assert stored.state == optuna.trial.TrialState.COMPLETE and stored.value == 40.0
    assert stored.intermediate_values == {1: 30.0, 2: 40.0}


def test_trials_asked_for_after_tunes_last_save_are_closed_as_failed_on_resume(tmp_path):
    spec = full_search_spec()
    experiment = experiments.create(spec, storage=tmp_path)
    searcher = tuner.searcher(spec, experiment)
    for trial_id in ("saved", "unsaved"):
        searcher.suggest(trial_id)
    searcher.suggest("finished")
    searcher.on_trial_complete("finished", {"epoch": 6, spec.objective: 50.0})
    assert optuna_study.close_orphaned_trials(experiment, {"saved", "finished"}) == 1
    trials = optuna_study.trials_by_ray_id(experiment)
    assert trials["saved"].state == optuna.trial.TrialState.RUNNING
    assert trials["finished"].state == optuna.trial.TrialState.COMPLETE and trials["finished"].value == 50.0
    assert trials["unsaved"].state == optuna.trial.TrialState.FAIL
    assert trials["unsaved"].user_attrs[STOP_REASON] == optuna_study.ORPHANED
    assert optuna_study.close_orphaned_trials(experiment, {"saved", "finished"}) == 0  # once
