"""`negmargin calibrate [SPEC]`: margins × training seeds of one configuration, scored on the novel test episodes.

The work is sweep/workflows/calibration_pipeline.py's `run_calibration` (runs: calibration.py, the table:
calibration_table.py); this module parses and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep.workflows.calibration_seeds import DEFAULT_SEEDS, TUNED_SEEDS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `calibrate` command."""
    parser = subparsers.add_parser(
        "calibrate",
        help="does a negative margin beat m = 0 here? margins x seeds, all else fixed, paired on the novel episodes",
        description="Train the spec's configuration (its fixed values, with --set overriding any searched one) at "
        "every margin and seed to its full budget, score each run's final and best-by-validation checkpoints as "
        "promotion does on the same novel test episodes, and print the paired differences to m = 0 per seed and "
        "pooled with their seed-to-seed spread, the regime check on the held-out seeds (those not in --tuned-seeds) "
        "and on all seeds, and the validation curves. Runs --workers processes at once; finished runs are kept in "
        "--out and skipped when the command is run again. No Ray needed.",
    )
    parser.add_argument("spec", nargs="?", default=None, help="spec file or preset name (default: the embedded one)")
    parser.add_argument(
        "--margins",
        nargs="+",
        metavar="M",
        default=["-0.1", "-0.2", "-0.3"],
        help="margins, e.g. --margins -0.2 -0.3 or --margins=-0.2,-0.3 (0 is added; default -0.1 -0.2 -0.3)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(DEFAULT_SEEDS),
        help=f"training seeds (default {' '.join(map(str, DEFAULT_SEEDS))})",
    )
    parser.add_argument(
        "--tuned-seeds",
        type=int,
        nargs="*",
        default=list(TUNED_SEEDS),
        metavar="SEED",
        help="the seeds the configuration was chosen on; every other seed is held out, and the regime check is made "
        f"on the held-out seeds and on all (default {' '.join(map(str, TUNED_SEEDS))}: the default preset's; "
        "--tuned-seeds alone: none)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec key (YAML value), e.g. epochs=40 or dataset.image_size=24 or scale=10 (repeatable)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="folder of runs and table (default experiments/calibration-<name>)"
    )
    parser.add_argument("--workers", type=int, default=None, help="runs at once (default: one per core; 4 on a GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run (default: cores / workers)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda (default: the spec's)")
    parser.add_argument(
        "--results", type=Path, default=None, help="also write the table into this Markdown file (a marked section)"
    )
    parser.add_argument(
        "--curves",
        type=Path,
        default=None,
        help="also write every run's learning curve (validation per epoch, test accuracy of every checkpoint "
        "promotion could pick, epoch times) into this CSV, replacing the rows of the same runs "
        "(benchmarks/learning_curves/)",
    )
    parser.set_defaults(func=calibrate_command)


def calibrate_command(args: argparse.Namespace) -> int:
    """Run the calibration and print its table; exit status 0."""
    from sweep.study.margins import parse_margins
    from sweep.workflows.calibration_pipeline import run_calibration

    outcome = run_calibration(
        args.spec,
        margins=parse_margins(",".join(args.margins)),
        seeds=args.seeds,
        tuned_seeds=args.tuned_seeds,
        overrides=args.overrides,
        out=args.out,
        workers=args.workers,
        threads=args.threads,
        device=args.device,
        results=args.results,
        curves=args.curves,
        log=lambda line: print(line, flush=True),
    )
    print("\n" + outcome.table)
    if args.results is not None:
        print(f"wrote the table into {args.results}")
    if args.curves is not None:
        runs = len(outcome.results)
        print(f"wrote {runs} runs' learning curves into {args.curves} ({outcome.curve_rows} rows in all)")
    return 0
