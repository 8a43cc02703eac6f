"""The `negmargin` command (also `python -m sweep.cli`): argparse and printing only.

One parser; each module of this package adds its commands (`register`) and handles them (`<command>_command`):
sweeps (run, resume, promote, report, select, list), study, jobs (submit, status, logs, stop), cluster (up, down),
train, evaluate, calibrate, data (prepare). The work is done by the library modules they call; no module outside
sweep/cli imports this package. Building the parser loads neither torch nor Ray.
"""

from __future__ import annotations

import argparse
import sys

from data.errors import UserError
from sweep.errors import StorageFaultError
from sweep.storage.faults import STORAGE_FAULT_EXIT

USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    from sweep.cli import calibrate, cluster_commands, data, evaluate, job_commands, study, sweeps, train

    parser = argparse.ArgumentParser(
        prog="negmargin",
        description="Hyperparameter sweeps for few-shot classification with negative-margin softmax losses.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sweep_parser = commands.add_parser("sweep", help="run, resume, promote, report and submit sweeps")
    sweep_commands_parsers = sweep_parser.add_subparsers(dest="sweep_command", required=True, metavar="SWEEP_COMMAND")
    sweeps.register(sweep_commands_parsers)
    job_commands.register(sweep_commands_parsers)
    study.register(sweep_commands_parsers)
    cluster_commands.register(commands)
    train.register(commands)
    evaluate.register(commands)
    calibrate.register(commands)
    data.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, dispatch, and turn user errors into one line and exit code 2 (a storage fault: exit code 4)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StorageFaultError as error:
        print(f"negmargin: storage fault: {error}", file=sys.stderr)
        return STORAGE_FAULT_EXIT
    except UserError as error:  # every package's user errors derive from it (data/errors.py)
        print(f"negmargin: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("negmargin: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
