"""The sweep's Optuna search on a real SQLite study (no Ray cluster: the searcher is called as Tune calls it)."""

import optuna

from sweep import experiment as experiments
from sweep import tuner
from sweep.optuna_study import EPOCHS_RUN, STOP_REASON

from helpers.specs import full_search_spec


def test_a_trial_finished_before_the_driver_died_can_be_completed_again_on_resume(tmp_path):
    spec = full_search_spec()
    experiment = experiments.create(spec, storage=tmp_path)
    searcher = tuner._searcher(spec, experiment)
    assert searcher.suggest("t0") is not None
    searcher.on_trial_result("t0", {"epoch": 2, "training_iteration": 1, spec.objective: 40.0})
    searcher.on_trial_complete("t0", {"epoch": 2, spec.objective: 40.0})
    # The resumed driver's searcher: restored from Tune's last save, from before t0 finished in the study.
    resumed = tuner._searcher(spec, experiment)
    resumed._ot_trials = dict(searcher._ot_trials)
    resumed.on_trial_complete("t0", {"epoch": 4, spec.objective: 45.0})  # raised UpdateFinishedTrialError before
    stored = optuna.load_study(study_name=experiment.study_name, storage=experiment.optuna_url).trials[0]
    assert stored.state == optuna.trial.TrialState.COMPLETE and stored.value == 40.0
    assert stored.user_attrs[EPOCHS_RUN] == 2 and STOP_REASON in stored.user_attrs
