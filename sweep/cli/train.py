"""`negmargin train CONFIG.yaml [--out DIR] [--resume]`: one trial without Ray, into its own run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweep.schema.objectives import objective_value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="pretrain one configuration (a TrialConfig YAML) without Ray",
        description="Pretrain one configuration; writes TensorBoard events, checkpoints and summary.json to --out.",
    )
    parser.add_argument("config", help="TrialConfig YAML file")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run directory (default: runs/<timestamp>-<backbone>-<loss>-<suffix>); must be new or empty",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=train_command)


def train_command(args: argparse.Namespace) -> int:
    """Run the trial of args.config into its run directory (sweep.trial.train); prints where TensorBoard finds it."""
    from sweep import trial

    run = trial.train(args.config, args.out, resume=args.resume, progress=not args.no_progress, log=_flushed)
    if run.diverged is not None:  # a result of the configuration, not a bug: one line, exit status 1
        print(
            f"negmargin train: {run.diverged}\n  checkpoints up to the last validation are in {run.out}",
            file=sys.stderr,
        )
        return 1
    final, best = run.final_metrics, run.best_metrics or {}
    final_score, best_score = (objective_value(metrics, run.selection_metric) for metrics in (final, best))
    _flushed(
        f"negmargin train: done at epoch {final.get('epoch')}: {run.selection_metric} = {_number(final_score)} "
        f"(best {_number(best_score)} at epoch {best.get('epoch')})\n"
        f"  summary: {run.out / 'summary.json'}\n  tensorboard --logdir {run.out}"
    )
    return 0


def _flushed(line: str) -> None:
    print(line, flush=True)


def _number(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "nan"
