"""`negmargin train CONFIG.yaml [--out DIR] [--resume]`: one trial without Ray, into its own run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from sweep.errors import DivergenceError
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
    """Run the trial of args.config into its run directory; prints where TensorBoard finds it."""
    from sweep import trial
    from sweep.trial.checkpoints import DIVERGED_MARKER
    from sweep.trial.config import TrialConfig
    from sweep.trial.run_dir import RunDirReporter, prepare_out_dir

    config = TrialConfig.from_yaml(args.config)
    out, checkpoint = prepare_out_dir(args.out, config, args.resume)
    if checkpoint is None:
        (out / "config.yaml").write_text(yaml.safe_dump(config.model_dump(), sort_keys=False))
    selection = config.selection
    start_epoch = checkpoint.epoch if checkpoint else 0
    reporter = RunDirReporter(
        out, config.model_dump(), selection, start_epoch=start_epoch, progress=not args.no_progress
    )
    print(f"negmargin train: writing to {out}\n  tensorboard --logdir {out}", flush=True)
    try:
        final = trial.run(config, reporter, checkpoint=checkpoint)
    except DivergenceError as error:  # a result of the configuration, not a bug: one line, exit status 1
        reporter.abort()
        (out / DIVERGED_MARKER).write_text(f"{error}\n")
        print(f"negmargin train: {error}\n  checkpoints up to the last validation are in {out}", file=sys.stderr)
        return 1
    except BaseException:
        reporter.abort()
        raise
    summary = reporter.close(final)
    best = summary["best_metrics"] or {}
    final_score, best_score = (objective_value(metrics, selection) for metrics in (final, best))
    print(
        f"negmargin train: done at epoch {final.get('epoch')}: {selection} = {_number(final_score)} "
        f"(best {_number(best_score)} at epoch {best.get('epoch')})\n"
        f"  summary: {out / 'summary.json'}\n  tensorboard --logdir {out}",
        flush=True,
    )
    return 0


def _number(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "nan"
