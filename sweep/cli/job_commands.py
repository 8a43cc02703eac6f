"""`negmargin sweep submit | status | logs | stop`: a sweep as a job on a Ray cluster, through the Jobs API."""

from __future__ import annotations

import argparse
import sys

from clusters import jobs


def register(sweep_subparsers: argparse._SubParsersAction) -> None:
    """Add `submit/status/logs/stop` to the `sweep` commands."""
    submit = sweep_subparsers.add_parser("submit", help="run a sweep on a Ray cluster through its Jobs API")
    submit.add_argument("spec", help="spec file or preset name")
    _add_jobs_address(submit)
    submit.add_argument(
        "--storage",
        help="absolute path every node reaches (shared filesystem); default: the spec's "
        "storage_path, which must then be absolute",
    )
    submit.add_argument("--name", help="experiment name prefix; default: the spec's name")
    submit.add_argument("--no-promote", action="store_true", help="stop after the trials")
    submit.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    submit.set_defaults(func=submit_command)

    status = sweep_subparsers.add_parser("status", help="status of a submitted sweep")
    status.add_argument("job", help="job id printed by `sweep submit`")
    _add_jobs_address(status)
    status.set_defaults(func=status_command)

    logs = sweep_subparsers.add_parser("logs", help="output of a submitted sweep")
    logs.add_argument("job")
    _add_jobs_address(logs)
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    logs.set_defaults(func=logs_command)

    stop = sweep_subparsers.add_parser(
        "stop", help="stop a submitted sweep (its trials end; resume it with `sweep resume`)"
    )
    stop.add_argument("job")
    _add_jobs_address(stop)
    stop.set_defaults(func=stop_command)


def _add_jobs_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        help=f"the cluster's dashboard / Jobs API; default $RAY_ADDRESS, else {jobs.DEFAULT_ADDRESS} "
        "(a remote cluster: through a tunnel, see docs/clusters.md, Security)",
    )


def submit_command(args: argparse.Namespace) -> int:
    """Submit the sweep; unless --no-wait, follow its output and exit non-zero if it did not succeed."""
    address = jobs.resolve_address(args.address)
    from sweep.workflows.submission import submit_sweep

    job_id = submit_sweep(args.spec, address, storage=args.storage, name=args.name, promote=not args.no_promote)
    print(job_id, flush=True)
    if args.no_wait:
        print(f"follow with: negmargin sweep logs {job_id} --follow --address {address}", file=sys.stderr)
        return 0
    return _follow(job_id, address)


def status_command(args: argparse.Namespace) -> int:
    """Print the job's status (and its message)."""
    current = jobs.status(args.job, args.address)
    detail = jobs.message(args.job, args.address)
    print(f"{current}{f': {detail}' if detail else ''}")
    return 0


def logs_command(args: argparse.Namespace) -> int:
    """Print the job's output; with --follow, until it ends (exit non-zero if it did not succeed)."""
    if not args.follow:
        print(jobs.logs(args.job, args.address), end="")
        return 0
    return _follow(args.job, jobs.resolve_address(args.address))


def stop_command(args: argparse.Namespace) -> int:
    """Ask the cluster to stop the job."""
    stopped = jobs.stop(args.job, args.address)
    print(
        f"stop requested for {args.job}"
        if stopped
        else f"{args.job} had already ended ({jobs.status(args.job, args.address)})"
    )
    return 0


def _follow(job_id: str, address: str) -> int:
    """Print the job's output until it ends; 0 if it succeeded, 1 otherwise."""
    try:
        final = jobs.follow(job_id, address)
    except KeyboardInterrupt:
        print(
            f"\nthe job keeps running on the cluster; stop it with `negmargin sweep stop {job_id} --address {address}`",
            file=sys.stderr,
        )
        raise
    return _report_end(job_id, final, address)


def _report_end(job_id: str, final: str, address: str) -> int:
    print(f"job {job_id}: {final}", file=sys.stderr)
    if final == "SUCCEEDED":
        return 0
    if final not in jobs.TERMINAL_STATUSES:
        print(f"still {final}; see `negmargin sweep status {job_id} --address {address}`", file=sys.stderr)
    return 1
