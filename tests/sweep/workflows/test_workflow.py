"""sweep.workflows.sweep_run without a cluster: which directories `sweep run --experiment` may start or resume, spec
changes named by key, the stages recorded in progress.json; the CLI refuses before any work."""

import pytest
import yaml

from sweep.cli import main
from sweep.errors import ExperimentError
from sweep.storage import experiment as experiments
from sweep.storage.lease import ExperimentLease
from sweep.storage.progress_file import Progress
from sweep.workflows import sweep_run as workflow

from helpers.specs import full_search_spec, full_search_spec_data


def test_a_missing_or_empty_directory_is_free_and_an_experiment_with_the_same_spec_is_resumed(tmp_path):
    spec = full_search_spec()
    assert workflow.check_can_hold(tmp_path / "new", spec) is None
    (tmp_path / "empty").mkdir()
    assert workflow.check_can_hold(tmp_path / "empty", spec) is None
    with ExperimentLease(tmp_path / "leased"):  # made and leased by this call, nothing in it yet
        assert workflow.check_can_hold(tmp_path / "leased", spec) is None
    experiment = experiments.create_at(spec, tmp_path / "exp")
    assert workflow.check_can_hold(experiment.root, spec) == experiment
    moved = spec.model_copy(update={"storage_path": "/elsewhere"})  # where experiments go does not matter here
    assert workflow.check_can_hold(experiment.root, moved) == experiment


def test_a_directory_that_is_not_an_experiment_or_holds_another_spec_is_refused(tmp_path):
    spec = full_search_spec()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ExperimentError, match="not an experiment directory"):
        workflow.check_can_hold(tmp_path / "other", spec)
    experiment = experiments.create_at(spec, tmp_path / "exp")
    changed = spec.model_copy(update={"epochs": 7, "seed": 9})
    with pytest.raises(ExperimentError, match=r"spec differs .* \(epochs, seed\)"):
        workflow.check_can_hold(experiment.root, changed)


def test_stages_are_recorded_once_done(tmp_path):
    experiment = experiments.create_at(full_search_spec(), tmp_path / "exp")
    assert workflow.read_progress(experiment) == Progress()
    workflow.mark_done(experiment, workflow.TRIALS)
    workflow.mark_done(experiment, workflow.REPORT)
    said: list[str] = []
    assert not workflow.finished(experiment, promote=True, log=said.append) and said == []
    assert workflow.finished(experiment, promote=False, log=said.append)
    workflow.mark_done(experiment, workflow.PROMOTION)
    assert workflow.finished(experiment, promote=True, log=said.append)
    assert said == [f"Experiment:  {experiment.root} (finished: nothing to do)"] * 2


def test_the_cli_refuses_a_held_experiment_in_one_line_before_any_work(tmp_path, capsys):
    data = full_search_spec_data()
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    root = tmp_path / "exp"
    experiments.create_at(full_search_spec(), root)
    with ExperimentLease(root, heartbeat_s=0.2):
        assert main(["sweep", "run", str(spec_file), "--experiment", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another driver is running this experiment: pid " in err
    assert not (root / "tune").exists() and not workflow.progress_file(experiments.Experiment(root)).exists()
