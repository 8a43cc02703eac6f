"""`negmargin sweep study EXP | --config FILE`: the margin study's command-line face (sweep.study does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep.cli.sweeps import add_address
from sweep.schema.spec import DEFAULT_STORAGE


def register(sweep_subparsers: argparse._SubParsersAction) -> None:
    """Add `sweep study`."""
    study = sweep_subparsers.add_parser(
        "study",
        help="train the selected configuration at a grid of margins; compare each with m = 0 (paper Figs 1-2)",
        description="Train an experiment's selected configuration (or a trial config) at a grid of margins, all else "
        "fixed; score every margin on the experiment's novel test episodes and on held-out base images, measure "
        "discriminability, compare with m = 0 on the same episodes. Writes EXP/study/; rerun to resume.",
    )
    study.add_argument("experiment", type=Path, nargs="?", help="experiment directory (of `negmargin sweep run`)")
    study.add_argument(
        "--config", type=Path, help="study this trial config (YAML) instead; makes a new experiment under --storage"
    )
    study.add_argument(
        "--latest", action="store_true", help="the newest experiment under --storage (after `make demo`)"
    )
    study.add_argument(
        "--storage", default=DEFAULT_STORAGE, help="where --config's experiment goes and where --latest looks"
    )
    study.add_argument("--name", help="name prefix of --config's experiment (default: study-<config name>)")
    study.add_argument(
        "--margins",
        nargs="+",
        metavar="M",
        help="margins, e.g. --margins -0.3 -0.1 0 0.1 or --margins=-0.3,-0.1,0 (0 is added); "
        "default: 7 spanning the sweep's margin range (or the loss's)",
    )
    study.add_argument("--seeds", type=int, help="training seeds per margin (default 1)")
    study.add_argument(
        "--holdout-fraction", type=float, help="share of each base class held out of pretraining (default 0.1)"
    )
    study.add_argument("--test-episodes", type=int, help="with --config: novel test episodes per shot (default 600)")
    study.add_argument("--queries", type=int, help="with --config: queries per class of an episode (default 16)")
    study.add_argument("--restart", action="store_true", help="discard the experiment's study and start a new one")
    study.add_argument(
        "--show", action="store_true", help="print the study saved in EXP/study/study.json; train nothing"
    )
    study.add_argument("--format", choices=("table", "md", "csv", "json"), default="table", help="how to print")
    add_address(study)
    study.set_defaults(func=study_command)


def study_command(args: argparse.Namespace) -> int:
    """Check the request, train the grid (resuming a study begun before), score, write study/, print the answer."""
    from sweep import study
    from sweep.study.layout import FIGURES, StudyDir

    if args.show:
        return show_command(args)
    experiment, request = study.prepare_study(
        args.experiment,
        args.config,
        latest=args.latest,
        storage=args.storage,
        name=args.name,
        margins=study.parse_margins(",".join(args.margins)) if args.margins is not None else None,
        seeds=args.seeds,
        holdout_fraction=args.holdout_fraction,
        test_episodes=args.test_episodes,
        queries=args.queries,
        restart=args.restart,
        address=args.address,
    )
    margins_text = ", ".join(f"{m:g}" for m in request.margins)
    print(f"Study:       {experiment.root}/study  (m = {margins_text}; {request.seeds} seed(s); {request.source})")
    result = study.run_study(experiment, request, address=args.address)
    paths = StudyDir.of(experiment)
    print(study.render(result, args.format), end="")
    print(f"Study:       {paths.study_file}")
    print(f"Table:       {paths.table_file('md')}")
    for name in FIGURES:
        print(f"Figure:      {paths.figure_file(name)}")
    print(f"TensorBoard: tensorboard --logdir {paths.tensorboard_dir}")
    print(result.answer)
    return 0


def show_command(args: argparse.Namespace) -> int:
    """`sweep study EXP --show`: print a finished study from its study.json (one line, exit 2, if damaged)."""
    from sweep import study
    from sweep.errors import SpecError
    from sweep.storage import experiment as experiments

    if args.config is not None or (args.experiment is None) == (not args.latest):
        raise SpecError("--show prints an experiment's study: give the experiment directory or --latest")
    root = args.experiment if args.experiment is not None else experiments.latest(args.storage).root
    found = study.read_study(root)
    print(study.render(found, args.format), end="")
    print(found.answer)
    return 0
