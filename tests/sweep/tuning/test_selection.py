"""`selection_metric`: which validation accuracy picks a trial's best checkpoint, apart from the objective that ASHA
and Optuna maximise. Under Ray Tune (real Tune, the product's TuneReporter and run config, scripted validation
rows) and in a standalone run directory."""

import math

import pytest
import torch
import yaml

from evaluation.checkpoint import Checkpoint, ModelSpec
from sweep.schema import spec as spec_module
from sweep.storage import experiment as experiments
from sweep.storage.results import load_trials, ranked
from sweep.trial.checkpoints import best_checkpoint_path
from sweep.trial.run_dir import RunDirReporter
from sweep.tuning.trainable import TuneReporter
from sweep.tuning.tuner import _run_config

# (val_acc_1shot, val_acc_5shot) per validation epoch. Trial "a" peaks at epoch 1 on 1-shot but epoch 2 on 5-shot;
# trial "b" ties on 5-shot at epochs 1 and 2 (the earliest wins, as the published strict >).
ROWS = {"a": [(50.0, 60.0), (40.0, 70.0), (45.0, 65.0)], "b": [(42.0, 66.0), (44.0, 66.0), (43.0, 64.0)]}
MARGINS = {"a": -0.1, "b": -0.2}


def _checkpoint(epoch: int) -> Checkpoint:
    """A stand-in checkpoint of `epoch`: the format, with weights that say which epoch they are."""
    model = ModelSpec(backbone="conv4", backbone_kwargs={}, loss="softmax", image_size=8)
    return Checkpoint(model, {"weights": torch.full((2,), float(epoch))}, epoch=epoch)


@pytest.fixture(scope="module")
def local_ray():
    from clusters.session import ray_session

    with ray_session():
        yield


def run_scripted_sweep(tmp_path, selection_metric: str | None, selection_from_epoch: int = 1) -> experiments.Experiment:
    """A Tune run of the two scripted trials into a fresh experiment whose spec has this selection metric."""
    from ray import tune

    data = yaml.safe_load(spec_module.preset_path("default").read_text())
    data.update(objective="val_acc_1shot", selection_metric=selection_metric, storage_path=str(tmp_path))
    data.update(selection_from_epoch=selection_from_epoch)
    spec = spec_module.parse(data)
    experiment = experiments.create(spec)
    rows = ROWS

    def scripted_trial(config: dict) -> None:
        """Reports the scripted rows of config["name"] through the product's reporter (a closure: Ray's workers
        cannot import this test module, so it travels by value)."""
        reporter = TuneReporter(config["objective"], config["selection"], config["from_epoch"])
        for epoch, (one, five) in enumerate(rows[config["name"]], start=1):
            metrics = {"epoch": epoch, "val_acc_1shot": one, "val_acc_5shot": five}
            model = ModelSpec(backbone="conv4", backbone_kwargs={}, loss="softmax", image_size=8)  # as _checkpoint
            reporter.report(metrics, Checkpoint(model, {"weights": torch.full((2,), float(epoch))}, epoch=epoch))

    param_space = {
        "name": tune.grid_search(sorted(ROWS)),
        "margin": tune.sample_from(lambda config, margins=MARGINS: margins[config["name"]]),
        "objective": spec.objective,
        "selection": spec.selection,
        "from_epoch": spec.selection_from_epoch,
    }
    tuner = tune.Tuner(
        scripted_trial,
        param_space=param_space,
        tune_config=tune.TuneConfig(metric=spec.objective, mode="max"),
        run_config=_run_config(spec, experiment),  # the sweep's checkpoint config: kept by the selection metric
    )
    results = tuner.fit()
    assert not results.errors
    return experiment


@pytest.fixture(scope="module")
def on_five_shot(tmp_path_factory, local_ray):
    experiment = run_scripted_sweep(tmp_path_factory.mktemp("five"), "val_acc_5shot")
    return {record.params["margin"]: record for record in load_trials(experiment)}, experiment


def test_the_best_checkpoint_is_chosen_on_the_selection_metric(on_five_shot):
    records, _ = on_five_shot
    a, b = records[MARGINS["a"]], records[MARGINS["b"]]
    assert (a.best["epoch"], a.best["val_acc_5shot"]) == (2, 70.0)
    assert (b.best["epoch"], b.best["val_acc_5shot"]) == (1, 66.0)  # ties: the earliest
    for record, epoch in ((a, 2), (b, 1)):
        assert Checkpoint.load(record.best_checkpoint).epoch == epoch  # the checkpoint reported with that row


def test_trials_rank_by_the_objective_at_their_selected_checkpoint(on_five_shot):
    records, experiment = on_five_shot
    assert records[MARGINS["a"]].best_objective == 40.0 and records[MARGINS["b"]].best_objective == 42.0
    assert [record.params["margin"] for record in ranked(list(records.values()))] == [MARGINS["b"], MARGINS["a"]]
    assert experiment.spec().selection == "val_acc_5shot" and experiment.spec().objective == "val_acc_1shot"


def test_without_selection_metric_the_objective_selects(tmp_path, local_ray):
    records = {r.params["margin"]: r for r in load_trials(run_scripted_sweep(tmp_path, None))}
    a, b = records[MARGINS["a"]], records[MARGINS["b"]]
    assert (a.best["epoch"], a.best_objective, b.best["epoch"], b.best_objective) == (1, 50.0, 2, 44.0)
    assert Checkpoint.load(a.best_checkpoint).epoch == 1 and Checkpoint.load(b.best_checkpoint).epoch == 2


def test_only_checkpoints_from_selection_from_epoch_on_may_be_the_best(tmp_path, local_ray):
    """With selection_from_epoch 2, trial a's 1-shot peak at epoch 1 is not eligible: its best is epoch 3, and Tune
    kept that checkpoint; promotion records the eligible epochs."""
    from sweep.workflows.promotion import eligible_epochs

    experiment = run_scripted_sweep(tmp_path, None, selection_from_epoch=2)
    records = {r.params["margin"]: r for r in load_trials(experiment)}
    a, b = records[MARGINS["a"]], records[MARGINS["b"]]
    assert (a.best["epoch"], a.best_objective, b.best["epoch"], b.best_objective) == (3, 45.0, 2, 44.0)
    assert Checkpoint.load(a.best_checkpoint).epoch == 3 and Checkpoint.load(b.best_checkpoint).epoch == 2
    assert eligible_epochs(a, 2) == [2, 3] and eligible_epochs(a, 5) == [1, 2, 3]  # stopped before 5: all of them


def test_a_standalone_run_chooses_its_best_among_eligible_epochs(tmp_path):
    reporter = RunDirReporter(tmp_path, {"epochs": 3, "selection_from_epoch": 2}, "val_acc_1shot", progress=False)
    for epoch, (one, five) in enumerate(ROWS["a"], start=1):
        reporter.report({"epoch": epoch, "val_acc_1shot": one, "val_acc_5shot": five}, _checkpoint(epoch))
    reporter.abort()
    assert Checkpoint.load(best_checkpoint_path(tmp_path)).epoch == 3  # the 50 % of epoch 1 is not eligible


@pytest.mark.parametrize(("selection", "best_epoch"), [("val_acc_1shot", 2), ("val_acc_5shot", 1), ("val_acc_mean", 2)])
def test_a_standalone_run_keeps_the_best_checkpoint_by_its_selection_metric(tmp_path, selection, best_epoch):
    reporter = RunDirReporter(tmp_path, {"epochs": 3}, selection, progress=False)
    for epoch, (one, five) in enumerate(ROWS["b"], start=1):
        reporter.report({"epoch": epoch, "val_acc_1shot": one, "val_acc_5shot": five}, _checkpoint(epoch))
    reporter.abort()
    assert Checkpoint.load(best_checkpoint_path(tmp_path)).epoch == best_epoch
    assert math.isclose(
        reporter.best_metrics["val_acc_1shot"] + reporter.best_metrics["val_acc_5shot"],
        sum(ROWS["b"][best_epoch - 1]),
    )
