"""`negmargin train CONFIG.yaml [--out DIR] [--resume]`: one trial without Ray, into its own run directory."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from sweep.errors import DivergenceError, TrialConfigError

if TYPE_CHECKING:  # torch-heavy: imported where a run needs them, so the CLI's parser stays light
    from sweep.trial_config import TrialConfig

DEFAULT_RUNS_DIR = Path("runs")


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
    parser.set_defaults(func=handle_train)


def default_out_dir(config: TrialConfig, runs_dir: Path = DEFAULT_RUNS_DIR) -> Path:
    """runs/<YYYYmmdd-HHMMSS>-<backbone>-<loss>-<6 hex>: never shared by two runs."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return runs_dir / f"{stamp}-{config.backbone}-{config.loss}-{secrets.token_hex(3)}"


def prepare_out_dir(out: Path | None, config: TrialConfig, resume: bool) -> tuple[Path, dict | None]:
    """The run directory and, with --resume, its last checkpoint; refuses to reuse a non-empty directory otherwise."""
    from sweep.reporters import last_checkpoint_path, load_checkpoint

    if resume:
        if out is None:
            raise TrialConfigError("--resume needs --out DIR (the run directory to continue)")
        last = last_checkpoint_path(out)
        if last is None:
            raise TrialConfigError(f"--out {out}: no checkpoints/epoch_*/checkpoint.pt to resume from")
        return out, load_checkpoint(last)
    if out is None:
        out = default_out_dir(config)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TrialConfigError(
            f"--out {out}: exists and is not empty; choose a new directory or pass --resume to continue it"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out, None


def handle_train(args: argparse.Namespace) -> int:
    """Run the trial of args.config into its run directory; prints where TensorBoard finds it."""
    from sweep import trial
    from sweep.reporters import DIVERGED_MARKER, RunDirReporter
    from sweep.trial_config import TrialConfig

    config = TrialConfig.from_yaml(args.config)
    out, checkpoint = prepare_out_dir(args.out, config, args.resume)
    if checkpoint is None:
        (out / "config.yaml").write_text(yaml.safe_dump(config.model_dump(), sort_keys=False))
    selection = f"val_acc_{config.validation.shots[0]}shot"
    start_epoch = int(checkpoint["epoch"]) if checkpoint else 0
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
    print(
        f"negmargin train: done at epoch {final.get('epoch')}: {selection} = {final.get(selection, float('nan')):.2f} "
        f"(best {best.get(selection, float('nan')):.2f} at epoch {best.get('epoch')})\n"
        f"  summary: {out / 'summary.json'}\n  tensorboard --logdir {out}",
        flush=True,
    )
    return 0
