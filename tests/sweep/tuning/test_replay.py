"""The search replay: the sweep's own searcher (Optuna on a real SQLite study) and ASHA, driven by a recorded table.

A hand-made table of three margins × two training seeds × 4 epochs (validated at 2 and 4, one second an epoch) whose
values make each decision computable by hand: m = -0.3 trails m = 0 at epoch 2 and overtakes it at epoch 4.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from sweep.schema import spec as spec_module
from sweep.storage import learning_curves
from sweep.storage.experiment import Experiment
from sweep.tuning import replay

VAL = {0.0: (60.0, 58.0), -0.3: (55.0, 65.0), -0.5: (50.0, 62.0)}  # validation % at epochs 2 and 4
TEST = {0.0: (50.0, 49.0), -0.3: (47.0, 56.0), -0.5: (44.0, 53.0)}  # test % at epochs 2 and 4 (seed 0; seed 1 +2)


def _table() -> pd.DataFrame:
    rows = []
    for margin in VAL:
        for seed in (0, 1):
            for epoch in range(1, 5):
                row = {"margin": margin, "scale": 10.0, "weight_decay": 5e-4, "drop_rate": 0.0, "dropblock_size": 1}
                row.update(seed=seed, epoch=epoch, epoch_seconds=1.0)
                if epoch % 2 == 0:
                    k = epoch // 2 - 1
                    row.update(val_acc_1shot=VAL[margin][k], val_acc_5shot=VAL[margin][k], train_acc=90.0)
                    row.update(test_acc_1shot=TEST[margin][k] + 2 * seed, test_acc_5shot=TEST[margin][k] + 2 * seed)
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture()
def recording(tmp_path: Path) -> replay.Recording:
    path = tmp_path / "curves.csv"
    learning_curves.merge(path, _table().to_dict("records"))  # written and read as the product writes it
    return replay.Recording.from_table(learning_curves.read(path), "val_acc_mean")


def _spec(**keys):
    document = yaml.safe_load(spec_module.preset_path("default").read_text())
    document.update(epochs=4, val_every=2, selection_from_epoch=2, num_samples=2, max_concurrent=2)
    document["scheduler"] = {"grace_period": 2, "reduction_factor": 2}
    for key, value in keys.items():
        document[key] = value
    return spec_module.parse(document, "test spec")


def test_the_table_reads_back_as_configurations_with_seed_averaged_test_accuracy(recording):
    assert [config["margin"] for config in recording.configs] == [-0.5, -0.3, 0.0]
    assert recording.score(1, 4) == pytest.approx(57.0)  # m = -0.3 at epoch 4: (56 + 58) / 2
    assert recording.runs[1][0].reports[1]["val_acc_1shot"] == 65.0
    assert recording.nearest(_spec(), {"margin": -0.36, "scale": 10.0}) == 1  # the nearest recorded margin


def test_the_grid_trains_every_configuration_to_the_budget_and_picks_the_best_validation(recording, tmp_path):
    swept = replay.replay(_spec(), recording, tmp_path, grid=True)
    assert swept.epochs == 12 and swept.seconds == pytest.approx(8.0)  # 3 × 4 epochs, 2 at a time
    assert swept.pick == (1, 4) and swept.score == pytest.approx(57.0)  # m = -0.3's epoch 4 (val 65)


def test_an_early_rung_stops_the_late_bloomer_and_the_study_records_how(recording, tmp_path):
    spec = _spec(searcher={"stopped_trials": "pruned", "trial_value": "best"})
    swept = replay.replay(spec, recording, tmp_path)
    by_margin = {recording.configs[config]["margin"]: epochs for config, _, epochs, _ in swept.trials}
    # both first points report epoch 2 at once: m = 0 (60) is recorded first, m = -0.3 (55) falls below the cutoff
    assert by_margin == {0.0: 4, -0.3: 2}
    assert swept.epochs == 6 and swept.pick == (2, 2)  # m = 0 at its best eligible epoch, 2 (val 60)
    assert swept.score == pytest.approx(51.0)
    experiment = Experiment(tmp_path / f"replay-{spec.name}-seed{spec.seed}")
    study = optuna.load_study(study_name=experiment.study_name, storage=experiment.optuna_url)
    states = {trial.params["margin"]: (trial.state.name, trial.value) for trial in study.trials}
    assert states == {0.0: ("COMPLETE", 60.0), -0.3: ("PRUNED", None)}  # the best eligible value, not the last 58


def test_by_default_a_stopped_trial_is_complete_with_its_last_value(recording, tmp_path):
    spec = _spec(searcher={"stopped_trials": "complete", "trial_value": "last"})
    replay.replay(spec, recording, tmp_path)
    experiment = Experiment(tmp_path / f"replay-{spec.name}-seed{spec.seed}")
    study = optuna.load_study(study_name=experiment.study_name, storage=experiment.optuna_url)
    states = {trial.params["margin"]: (trial.state.name, trial.value) for trial in study.trials}
    assert states == {0.0: ("COMPLETE", 58.0), -0.3: ("COMPLETE", 55.0)}


def test_without_a_rung_below_the_budget_the_late_bloomer_wins(recording, tmp_path):
    swept = replay.replay(_spec(scheduler={"grace_period": 4}), recording, tmp_path)
    assert swept.epochs == 8 and swept.pick == (1, 4) and swept.score == pytest.approx(57.0)


def test_the_same_sweep_seed_replays_the_same_sweep_and_the_study_storage_does_not_change_it(recording, tmp_path):
    spec = _spec(num_samples=6, searcher={"n_startup_trials": 1})
    first = replay.replay(spec, recording, tmp_path / "a")
    again = replay.replay(spec, recording, tmp_path / "b")
    in_memory = replay.replay(spec, recording, tmp_path / "c", in_memory=True)
    assert first.trials == again.trials == in_memory.trials and len(first.trials) == 6
    assert first.trace == again.trace == in_memory.trace


def test_ranking_the_top_trials_on_every_seed_corrects_a_one_seed_pick(tmp_path):
    table = _table()
    at_four = (table["margin"] == 0.0) & (table["epoch"] == 4)
    table.loc[at_four & (table["seed"] == 0), ["val_acc_1shot", "val_acc_5shot"]] = 66.0  # seed 0 flatters m = 0
    table.loc[at_four & (table["seed"] == 1), ["val_acc_1shot", "val_acc_5shot"]] = 50.0
    recording = replay.Recording.from_table(table, "val_acc_mean")
    zero, late = 2, 1  # configurations: m = 0 and m = -0.3
    one_seed = replay.ReplayedSweep([(zero, 0, 4, 4), (late, 0, 4, 4)], [(8, 4.0, 51.0)], (zero, 4), 51.0, 8, 4.0)
    again = replay.reranked(_spec(), recording, one_seed)
    # m = 0's seeds average (66 + 60) / 2 at their best eligible epochs (seed 1: epoch 2, 60) = 63 < m = -0.3's 65
    assert again.pick == (late, 4) and again.score == pytest.approx(57.0)
    assert again.epochs == 8 + 2 * 4  # both top trials retrained on the other recorded seed, 4 epochs each
    assert again.trace[-1] == (16, 4.0, pytest.approx(57.0))
