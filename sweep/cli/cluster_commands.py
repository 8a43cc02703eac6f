"""`negmargin cluster up --local | down`: a local multi-node Ray cluster on 127.0.0.1 (clusters.local)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cluster up/down` to the top-level commands."""
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
            f"{node.role:<7} {node.name:<10} {node.num_cpus:g} CPU  "
            f"resource {next(iter(node.resources))}  log {node.log}"
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
