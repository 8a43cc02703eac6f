"""One base for every error a user can cause: each package's user errors derive from data.errors.UserError, and the
`negmargin` command turns any of them into one line and exit code 2 (no table of classes to keep in step)."""

import argparse

import pytest

from clusters.errors import ClusterError
from data.errors import DataError, UserError
from evaluation.errors import EvaluationError
from models.errors import ModelConfigError
from sweep import cli
from sweep.cli import sweeps
from sweep.errors import DivergenceError, ExperimentError, SpecError, TrialConfigError
from sweep.storage.lease import LeaseHeldError

USER_CAUSED = [ClusterError, DataError, EvaluationError, ModelConfigError, SpecError, TrialConfigError, ExperimentError]


@pytest.mark.parametrize("error", [*USER_CAUSED, LeaseHeldError])
def test_every_user_error_derives_from_the_one_base(error):
    assert issubclass(error, UserError)


def test_a_divergence_is_a_result_not_a_user_error():
    assert not issubclass(DivergenceError, UserError)


@pytest.mark.parametrize("error", USER_CAUSED)
def test_the_command_prints_any_user_error_as_one_line_with_exit_code_2(error, monkeypatch, capsys):
    def failing_list_command(args: argparse.Namespace) -> int:
        raise error("spec.yaml: epochs: must be positive")

    monkeypatch.setattr(sweeps, "list_command", failing_list_command)  # the parser is built inside main()
    assert cli.main(["sweep", "list"]) == 2
    assert capsys.readouterr().err == "negmargin: error: spec.yaml: epochs: must be positive\n"
