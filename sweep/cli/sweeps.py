"""`negmargin sweep run | resume | promote | report | select | list`: the sweep's command-line face."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep import experiment as experiments
from sweep import spec as spec_module


def add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        help="Ray cluster to join (HOST:6379, ray://HOST:10001 or auto); default $RAY_ADDRESS, "
        "else a local Ray on 127.0.0.1",
    )


def register(sweep_subparsers: argparse._SubParsersAction) -> None:
    """Add the sweep subcommands."""
    run = sweep_subparsers.add_parser("run", help="run a sweep (default: the embedded glyph preset), promote, report")
    run.add_argument("spec", nargs="?", help="spec file or preset name (see `negmargin sweep list`); default: default")
    add_address(run)
    run.add_argument(
        "--storage", help="directory (or shared path) that holds experiments; default: the spec's storage_path"
    )
    run.add_argument("--name", help="experiment name prefix; default: the spec's name")
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
    resume.set_defaults(func=resume_command)

    promote = sweep_subparsers.add_parser("promote", help="score the top-k trials on the fixed 600-episode test set")
    promote.add_argument("experiment", type=Path)
    promote.add_argument("--top-k", type=int)
    promote.add_argument("--selections", type=Path)
    add_address(promote)
    promote.set_defaults(func=promote_command)

    report = sweep_subparsers.add_parser("report", help="print the trial and promotion tables of an experiment")
    report.add_argument("experiment", type=Path, nargs="?")
    report.add_argument("--latest", action="store_true", help="the newest experiment under --storage")
    report.add_argument("--storage", default="experiments")
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
    listing.add_argument("--storage", default="experiments")
    listing.set_defaults(func=list_command)


def _finish(experiment: experiments.Experiment, promote_it: bool, selections: Path | None, address: str | None) -> int:
    from sweep import promote, report

    if promote_it:
        promote.run(experiment, selections_path=selections, address=address)
    result = report.write_all(experiment)
    print(report.render(result, "table"))
    print("\n".join(report.pointer_lines(experiment)))
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Validate everything (spec, name, address, dataset) before creating anything, then make the experiment
    directory, run the trials, promote, report. A cluster that fails before the first trial leaves no directory."""
    if args.storage:
        spec_module.check_storage_path(args.storage, key="--storage")
    spec = spec_module.with_absolute_paths(spec_module.load(spec_module.resolve(args.spec)))
    if args.name:
        spec_module.check_name(args.name, key="--name")
    experiments.check_storage(spec, args.storage)
    from clusters.errors import ClusterError
    from clusters.session import check_session

    check_session(args.address)
    from sweep import tuner  # Ray and torch load once the spec, the storage and the address are known to be good

    tuner.check_dataset(spec, promote=not args.no_promote)
    experiment = experiments.create(spec, storage=args.storage, name=args.name)
    print(f"Experiment:  {experiment.root}")
    _print_first_points(spec)
    try:
        tuner.run(spec, experiment, address=args.address)
    except (ClusterError, KeyboardInterrupt):
        experiments.remove_if_unstarted(experiment)
        raise
    return _finish(experiment, not args.no_promote, args.selections, args.address)


def _print_first_points(spec: spec_module.SweepSpec) -> None:
    from sweep.first_points import plan_first_points

    points, skipped = plan_first_points(spec)
    print("First points (tried before Optuna samples):" if points else "First points: none (Optuna samples them all)")
    for index, point in enumerate(points, start=1):
        print(f"  {index}. {point.describe()}")
    for reason in skipped:
        print(f"  not tried: {reason}")


def resume_command(args: argparse.Namespace) -> int:
    """Resume the trials of an experiment, then promote and report."""
    from sweep import tuner

    experiment = experiments.open_existing(args.experiment)
    tuner.resume(experiment, address=args.address)
    return _finish(experiment, not args.no_promote, args.selections, args.address)


def promote_command(args: argparse.Namespace) -> int:
    """Promote the best trials of a finished sweep."""
    experiment = experiments.open_existing(args.experiment)
    from sweep import promote, report

    promote.run(experiment, top_k=args.top_k, selections_path=args.selections, address=args.address)
    print(report.render(report.write_all(experiment), "table"))
    print("\n".join(report.pointer_lines(experiment)))
    return 0


def report_command(args: argparse.Namespace) -> int:
    """Print the report of one experiment."""
    from sweep import report
    from sweep.errors import ExperimentError

    if args.experiment is None and not args.latest:
        raise ExperimentError("give an experiment directory or --latest")
    experiment = (
        experiments.latest(args.storage) if args.experiment is None else experiments.open_existing(args.experiment)
    )
    print(report.render(report.build(experiment), args.format), end="")
    if args.format == "table":
        print("\n" + "\n".join(report.pointer_lines(experiment)))
    return 0


def select_command(args: argparse.Namespace) -> int:
    """Print the current selections matching the filters."""
    from sweep import selections

    path = args.selections or selections.default_path()
    entries = selections.select(path, dataset=args.dataset, backbone=args.backbone, loss=args.loss, shot=args.shot)
    if not entries:
        print(f"no selection in {path} matches")
        return 1
    for entry in entries:
        params = ", ".join(
            f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in entry["params"].items()
        )
        print(
            f"{entry['dataset']} / {entry['backbone']} / {entry['loss']} / {entry['shot']}-shot: {params}  "
            f"test {entry['test_acc']:.2f} ± {entry['test_ci95']:.2f} ({entry['test_episodes']} episodes)  "
            f"from {entry['experiment']}"
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
