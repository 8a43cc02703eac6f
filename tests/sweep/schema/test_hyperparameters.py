"""The table of searched hyperparameters (sweep.schema.hyperparameters) drives everything that names them: for every
entry, a spec accepts a range for it, Optuna samples it, the sampled value lands in the trial config as the entry's
kind, values outside its valid range are refused by spec and trial config alike, the published starting points name
it, and the report and TensorBoard label it as the table says."""

from __future__ import annotations

import re

import optuna.distributions as od
import pandas as pd
import pytest

from sweep.errors import SpecError, TrialConfigError
from sweep.report import tensorboard_files
from sweep.report.tables import Report
from sweep.report.text import format_number, parameter_cells
from sweep.schema import spec as spec_module
from sweep.schema.hyperparameters import HYPERPARAMETERS, SEARCHED_PARAMETERS, Hyperparameter
from sweep.schema.published import STARTING_POINTS, Setting
from sweep.schema.trial_config import TrialConfig, TrialSettings
from sweep.storage.experiment import Experiment
from sweep.tuning.space import optuna_space, trial_config

from helpers.specs import full_search_spec_data

BOUNDED = [parameter for parameter in HYPERPARAMETERS if parameter.valid_range()]
TRIAL = {"dataset": {"name": "glyphs"}, "backbone": "conv4", "loss": "neg-cosine"}


def _valid_range(parameter: Hyperparameter) -> tuple[float, float]:
    """Two values inside the parameter's valid range, the lower one on its lower bound where it has one."""
    if parameter.ge is not None:
        low = parameter.ge
    elif parameter.gt is not None:
        low = parameter.gt + 1
    else:
        low = -0.5
    high = (low + parameter.lt) / 2 if parameter.lt is not None else low + 2
    return (int(low), int(high)) if parameter.kind == "int" else (float(low), float(high))


def _outside(parameter: Hyperparameter) -> float:
    """A value just outside the parameter's valid range (it has one)."""
    if parameter.lt is not None:
        return parameter.lt
    if parameter.gt is not None:
        return parameter.gt
    assert parameter.ge is not None
    return parameter.ge - 1


def _spec_searching(parameter: Hyperparameter, low: float, high: float) -> spec_module.SweepSpec:
    """The CPU-sized full-search spec (neg-cosine), `parameter` searched from `low` to `high`."""
    data = full_search_spec_data()
    data["points_to_evaluate"] = []
    data["search"][parameter.name] = {"int" if parameter.kind == "int" else "uniform": [low, high]}
    return spec_module.parse(data)


@pytest.mark.parametrize("parameter", HYPERPARAMETERS, ids=lambda parameter: parameter.name)
def test_a_spec_searches_every_parameter_of_the_table_and_optuna_samples_it(parameter):
    low, high = _valid_range(parameter)
    spec = _spec_searching(parameter, low, high)
    assert spec.searched()[parameter.name].bounds() == (low, high)
    distribution = optuna_space(spec)[parameter.name]
    expected = od.IntDistribution if parameter.kind == "int" else od.FloatDistribution
    assert type(distribution) is expected and (distribution.low, distribution.high) == (low, high)


@pytest.mark.parametrize("parameter", HYPERPARAMETERS, ids=lambda parameter: parameter.name)
def test_a_sampled_value_lands_in_the_trial_config_as_the_tables_kind(parameter, tmp_path):
    low, high = _valid_range(parameter)
    spec = _spec_searching(parameter, low, high)
    params = {name: space.bounds()[0] for name, space in spec.searched().items()}
    params[parameter.name] = float(high)  # as a sampler may give it, even for an integer parameter
    config = TrialConfig.from_dict(trial_config(spec, params, Experiment(tmp_path).episodes_dir))
    value = getattr(config, parameter.name)
    assert value == high and type(value) is (int if parameter.kind == "int" else float)


@pytest.mark.parametrize("parameter", BOUNDED, ids=lambda parameter: parameter.name)
def test_a_value_outside_the_tables_range_is_refused_by_the_spec_and_the_trial_config(parameter):
    outside = _outside(parameter)
    data = full_search_spec_data()
    data["points_to_evaluate"] = []
    data["search"][parameter.name] = {"fixed": outside}
    with pytest.raises(
        SpecError, match=rf"search\.{parameter.name}: must (be|lie) {re.escape(parameter.valid_range())}$"
    ):
        spec_module.parse(data)
    with pytest.raises(TrialConfigError, match=rf"trial config: {parameter.name}: "):
        TrialConfig.from_dict({**TRIAL, parameter.name: outside})


def test_the_trial_config_adds_exactly_the_tables_parameters_with_the_tables_defaults():
    added = set(TrialConfig.model_fields) - set(TrialSettings.model_fields)
    assert added <= set(SEARCHED_PARAMETERS) <= set(TrialConfig.model_fields)
    assert {name: TrialConfig.model_fields[name].default for name in SEARCHED_PARAMETERS} == {
        parameter.name: parameter.trial_default for parameter in HYPERPARAMETERS
    }


def test_a_spec_fixes_a_parameter_it_leaves_out_at_the_tables_default_and_names_a_required_or_unknown_one():
    data = full_search_spec_data()
    data["points_to_evaluate"] = []
    required = [parameter.name for parameter in HYPERPARAMETERS if parameter.search_default is None]
    data["search"] = {name: {"fixed": 0.0} for name in required}
    defaults = {parameter.name: parameter.search_default for parameter in HYPERPARAMETERS}
    assert spec_module.parse(data).fixed() == {**defaults, **{name: 0.0 for name in required}}
    assert required == ["margin"]
    data["search"] = {"momentum": {"fixed": 0.9}, **data["search"]}
    with pytest.raises(SpecError, match=r"^spec: search\.momentum: unknown key$"):
        spec_module.parse(data)
    data["search"] = {}
    with pytest.raises(SpecError, match=r"^spec: search\.margin: required key is missing$"):
        spec_module.parse(data)


def test_the_report_and_tensorboard_label_every_parameter_as_the_table_does(tmp_path):
    data = {**full_search_spec_data(), "points_to_evaluate": []}
    data["search"] = {p.name: {"int" if p.kind == "int" else "uniform": _valid_range(p)} for p in HYPERPARAMETERS}
    spec = spec_module.parse(data)
    assert list(spec.searched()) == list(SEARCHED_PARAMETERS)
    empty = pd.DataFrame()
    report = Report(Experiment(tmp_path), spec, [], empty, empty, [], [])
    declared = {str(hparam.name): hparam.display_name for hparam in tensorboard_files.hparams(report)}
    assert {name: declared[name] for name in SEARCHED_PARAMETERS} == {p.name: p.display_name for p in HYPERPARAMETERS}
    assert (declared["margin"], declared["dropblock_size"]) == ("m (margin)", "DropBlock size")
    values = {parameter.name: _valid_range(parameter)[1] for parameter in HYPERPARAMETERS}
    cells = parameter_cells(values)
    assert list(cells) == list(dict.fromkeys(parameter.report_column for parameter in HYPERPARAMETERS))
    assert list(cells)[:2] == ["m", "β"] and "DropBlock" in cells
    for parameter in HYPERPARAMETERS:
        assert format_number(values[parameter.name]) in cells[parameter.report_column].split(" / ")
    assert parameter_cells({**values, "drop_rate": 0.0})["DropBlock"] == "off"


def test_every_starting_point_names_the_tables_parameters_with_the_authors_defaults_where_a_script_sets_none():
    for points in STARTING_POINTS.values():
        for point in points:
            assert list(point.params) == list(SEARCHED_PARAMETERS)
    # mini2CUB Neg-Cosine's script sets m and weight decay only: β 30 and no DropBlock are the code's defaults
    (point,) = STARTING_POINTS[Setting("mini2cub", "resnet18", "neg-cosine", 5)]
    assert point.params.items() >= {"margin": -0.05, "weight_decay": 5e-5, "scale": 30.0, "drop_rate": 0.0}.items()
    assert point.params["dropblock_size"] == 5
    assert len({parameter.published_key for parameter in HYPERPARAMETERS}) == len(HYPERPARAMETERS)
