"""`negmargin cluster up/down` (a local multi-node cluster) and `negmargin sweep submit/status/logs/stop` (Jobs API)."""

from __future__ import annotations

import argparse
import sys

from sweep import jobs


def register(subparsers: argparse._SubParsersAction, sweep_subparsers: argparse._SubParsersAction) -> None:
    """Add `cluster up/down` to the top-level commands and `submit/status/logs/stop` to the `sweep` commands."""
    _register_cluster(subparsers)
    _register_jobs(sweep_subparsers)


def _register_cluster(subparsers: argparse._SubParsersAction) -> None:
    cluster = subparsers.add_parser("cluster", help="start or stop a local multi-node Ray cluster on 127.0.0.1")
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="CLUSTER_COMMAND")
    up = actions.add_parser(
        "up", help="start a head and N worker nodes on this machine (cloud clusters: `ray up clusters/aws.yaml`)"
    )
    up.add_argument("--local", action="store_true", required=True, help="a cluster of `ray start` nodes on 127.0.0.1")
    up.add_argument("--workers", type=_non_negative, default=2, help="worker nodes besides the head (default 2)")
    up.add_argument("--head-cpus", type=float, default=1, help="logical CPUs of the head (default 1)")
    up.add_argument("--worker-cpus", type=float, default=1, help="logical CPUs of each worker (default 1)")
    up.add_argument("--port", type=int, default=6379, help="GCS port of the head (default 6379; 0: any free port)")
    up.add_argument("--dashboard-port", type=int, default=8265, help="dashboard / Jobs API port (default 8265)")
    up.add_argument(
        "--state-dir", help="where the state file and node logs go (default ~/.cache/negmargin/local-cluster)"
    )
    up.set_defaults(func=cluster_up_command)
    down = actions.add_parser("down", help="stop the local cluster started by `cluster up --local`")
    down.add_argument("--state-dir", help="the --state-dir given to `cluster up`")
    down.set_defaults(func=cluster_down_command)


def _register_jobs(sweep_subparsers: argparse._SubParsersAction) -> None:
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
        "(a remote cluster: through a tunnel, see README.md, Clusters)",
    )


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return value


def cluster_up_command(args: argparse.Namespace) -> int:
    """Start the local cluster and print how to reach it."""
    from clusters.local import cluster as local

    started = local.up(
        args.workers,
        head_cpus=args.head_cpus,
        worker_cpus=args.worker_cpus,
        port=args.port,
        dashboard_port=args.dashboard_port,
        state_dir=args.state_dir,
    )
    for node in started.nodes:
        print(
            f"{node.role:<7} {node.name:<10} {node.num_cpus:g} CPU  resource {next(iter(node.resources))}  log {node.log}"
        )
    print(f"GCS:       {started.gcs_address}      (negmargin sweep run --address {started.gcs_address})")
    print(f"Jobs API:  {started.dashboard_url}  (negmargin sweep submit SPEC --address {started.dashboard_url})")
    print(f"State:     {started.state_path}")
    print(f"Stop with: negmargin cluster down{f' --state-dir {args.state_dir}' if args.state_dir else ''}")
    return 0


def cluster_down_command(args: argparse.Namespace) -> int:
    """Stop the local cluster."""
    from clusters.local import cluster as local

    stopped = local.down(args.state_dir)
    print(
        f"stopped {', '.join(stopped)}"
        if stopped
        else f"no local cluster recorded in {args.state_dir or local.default_state_dir()}"
    )
    return 0


def submit_command(args: argparse.Namespace) -> int:
    """Submit the sweep; unless --no-wait, follow its output and exit non-zero if it did not succeed."""
    address = jobs.resolve_address(args.address)
    job_id = jobs.submit_sweep(args.spec, address, storage=args.storage, name=args.name, promote=not args.no_promote)
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
