"""`negmargin sweep run | resume | promote | report | select | list`: the sweep's command-line face."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.schema import spec as spec_module
from sweep.storage import experiment as experiments
from sweep.storage.lease import STALE_AFTER_S

if TYPE_CHECKING:
    from sweep.workflows.pipelines import SweepOutcome


def add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        help="Ray cluster to join (HOST:6379, ray://HOST:10001 or auto); default $RAY_ADDRESS, "
        "else a local Ray on 127.0.0.1",
    )


def add_lease_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lease-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when another driver holds the experiment's lease, wait up to SECONDS for it to end or go stale "
        f"(no heartbeat for {STALE_AFTER_S:.0f} s) instead of refusing at once",
    )


def register(sweep_subparsers: argparse._SubParsersAction) -> None:
    """Add the sweep subcommands."""
    run = sweep_subparsers.add_parser("run", help="run a sweep (default: the embedded glyph preset), promote, report")
    run.add_argument("spec", nargs="?", help="spec file or preset name (see `negmargin sweep list`); default: default")
    add_address(run)
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--experiment",
        help="the experiment directory: created by the first call, resumed by every later call of the same command "
        "(for schedulers that retry it); same spec required",
    )
    where.add_argument(
        "--storage", help="directory (or shared path) that holds experiments; default: the spec's storage_path"
    )
    run.add_argument("--name", help="experiment name prefix; default: the spec's name")
    add_lease_wait(run)
    run.add_argument(
        "--no-promote", action="store_true", help="stop after the trials (promote later with `sweep promote`)"
    )
    run.add_argument(
        "--selections", type=Path, help="selections file to merge into (default: <storage>/selections.yaml)"
    )
    run.set_defaults(func=run_command)

    resume = sweep_subparsers.add_parser("resume", help="finish an interrupted sweep, then promote and report")
    resume.add_argument("experiment", type=Path)
    add_address(resume)
    resume.add_argument("--no-promote", action="store_true")
    resume.add_argument("--selections", type=Path)
    add_lease_wait(resume)
    resume.set_defaults(func=resume_command)

    promote = sweep_subparsers.add_parser("promote", help="score the top-k trials on the fixed 600-episode test set")
    promote.add_argument("experiment", type=Path)
    promote.add_argument("--top-k", type=int)
    promote.add_argument("--selections", type=Path)
    promote.add_argument(
        "--holm", action="store_true", help="Holm-correct the differences to the baseline over the promoted trials"
    )
    add_address(promote)
    add_lease_wait(promote)
    promote.set_defaults(func=promote_command)

    report = sweep_subparsers.add_parser("report", help="print the trial and promotion tables of an experiment")
    report.add_argument("experiment", type=Path, nargs="?")
    report.add_argument("--latest", action="store_true", help="the newest experiment under --storage")
    report.add_argument("--storage", default=spec_module.DEFAULT_STORAGE)
    report.add_argument("--format", choices=("table", "md", "csv", "json"), default="table")
    report.set_defaults(func=report_command)

    select = sweep_subparsers.add_parser(
        "select", help="print the selected hyperparameters per dataset/backbone/loss/shot"
    )
    select.add_argument("--dataset")
    select.add_argument("--backbone")
    select.add_argument("--loss")
    select.add_argument("--shot", type=int)
    select.add_argument("--selections", type=Path, help="default: $NEGMARGIN_SELECTIONS or experiments/selections.yaml")
    select.set_defaults(func=select_command)

    listing = sweep_subparsers.add_parser("list", help="list the shipped presets and the experiments under --storage")
    listing.add_argument("--storage", default=spec_module.DEFAULT_STORAGE)
    listing.set_defaults(func=list_command)


def _print_report(outcome: SweepOutcome) -> None:
    from sweep import report

    print(report.render(outcome.report, "table"))
    print("\n".join(report.pointer_lines(outcome.experiment)))


def run_command(args: argparse.Namespace) -> int:
    """`sweep run`: the command-line options checked here (named as options), the rest by the library
    (sweep.workflows.pipelines.run_sweep), which validates everything before creating anything."""
    from sweep.workflows.pipelines import run_sweep

    if args.storage:
        spec_module.check_storage_path(args.storage, key="--storage")
    if args.experiment is not None:
        spec_module.check_storage_path(args.experiment, key="--experiment")
    if args.name:
        spec_module.check_name(args.name, key="--name")
    spec = spec_module.read(args.spec)
    outcome = run_sweep(
        args.spec,  # as given: a storage fault's line repeats it in the command to run once fixed
        experiment=args.experiment,
        storage=args.storage,
        name=args.name,
        address=args.address,
        promote=not args.no_promote,
        selections=args.selections,
        lease_wait=args.lease_wait,
        before_trials=lambda _: _print_first_points(spec),
    )
    _print_report(outcome)
    return 0


def _print_first_points(spec: spec_module.SweepSpec) -> None:
    from sweep.schema.first_points import plan_first_points

    points, skipped = plan_first_points(spec)
    print("First points (tried before Optuna samples):" if points else "First points: none (Optuna samples them all)")
    for index, point in enumerate(points, start=1):
        print(f"  {index}. {point.describe()}")
    for reason in skipped:
        print(f"  not tried: {reason}")


def resume_command(args: argparse.Namespace) -> int:
    """`sweep resume`: finish the trials of an experiment, then promote and report."""
    from sweep.workflows.pipelines import resume_sweep

    _print_report(
        resume_sweep(
            args.experiment,
            address=args.address,
            promote=not args.no_promote,
            selections=args.selections,
            lease_wait=args.lease_wait,
        )
    )
    return 0


def promote_command(args: argparse.Namespace) -> int:
    """`sweep promote`: score the best trials of a finished sweep on the test episodes."""
    from sweep.workflows.pipelines import promote

    _print_report(
        promote(
            args.experiment,
            top_k=args.top_k,
            selections=args.selections,
            address=args.address,
            lease_wait=args.lease_wait,
            holm=args.holm,
        )
    )
    return 0


def report_command(args: argparse.Namespace) -> int:
    """`sweep report`: print the report of one experiment."""
    from sweep import report
    from sweep.errors import ExperimentError
    from sweep.workflows.pipelines import read_report

    if args.experiment is None and not args.latest:
        raise ExperimentError("give an experiment directory or --latest")
    outcome = read_report(args.experiment) if args.experiment is not None else read_report(storage=args.storage)
    print(report.render(outcome.report, args.format), end="")
    if args.format == "table":
        print("\n" + "\n".join(report.pointer_lines(outcome.experiment)))
    return 0


def select_command(args: argparse.Namespace) -> int:
    """Print the current selections matching the filters."""
    from sweep.storage import selections

    path = args.selections or selections.default_path()
    entries = selections.select(path, dataset=args.dataset, backbone=args.backbone, loss=args.loss, shot=args.shot)
    if not entries:
        print(f"no selection in {path} matches")
        return 1
    for entry in entries:
        params = ", ".join(
            f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}" for key, value in entry.params.items()
        )
        print(
            f"{entry.dataset} / {entry.backbone} / {entry.loss} / {entry.shot}-shot: {params}  "
            f"test {entry.test_acc:.2f} ± {entry.test_ci95:.2f} ({entry.test_episodes} episodes)  "
            f"from {entry.experiment}"
        )
    return 0


def list_command(args: argparse.Namespace) -> int:
    """Print the shipped presets and the experiments found under --storage."""
    print("Presets:")
    for name in spec_module.list_presets():
        print(f"  {name}")
    found = experiments.find_all(args.storage)
    print(
        f"Experiments in {Path(args.storage).expanduser().resolve()}:" if found else f"No experiments in {args.storage}"
    )
    for experiment in found:
        state = (
            "promoted"
            if experiment.promotion_file.exists()
            else "trials only"
            if experiment.tune_dir.exists()
            else "not started"
        )
        print(f"  {experiment.root.name}  ({state})")
    return 0
