"""Helpers of the multi-node tests: a local cluster started through the CLI, its nodes as the dashboard sees them,
polling, and a tiny image-folder dataset so that a sweep's epochs take seconds on one logical CPU."""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clusters import jobs
from clusters.local import cluster as local
from sweep.cli import cluster_commands as cluster_cli
from sweep.cli import job_commands as jobs_cli


def cli(argv: list[str]) -> tuple[int, argparse.Namespace]:
    """Run one `cluster …` / `sweep submit|status|logs|stop …` command line through our parsers; (exit code, args)."""
    parser = argparse.ArgumentParser(prog="negmargin")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep_parser = commands.add_parser("sweep")
    cluster_cli.register(commands)
    jobs_cli.register(sweep_parser.add_subparsers(dest="sweep_command", required=True))
    args = parser.parse_args(argv)
    return args.func(args), args


def start_cluster(
    state_dir: Path, workers: int = 2, head_cpus: float = 0, worker_cpus: float = 1
) -> local.LocalCluster:
    """`negmargin cluster up --local` on free ports with its state in `state_dir`."""
    code, _ = cli(
        [
            "cluster",
            "up",
            "--local",
            "--workers",
            str(workers),
            "--head-cpus",
            str(head_cpus),
            "--worker-cpus",
            str(worker_cpus),
            "--port",
            "0",
            "--dashboard-port",
            "0",
            "--state-dir",
            str(state_dir),
        ]
    )
    assert code == 0
    return local.load(state_dir)


def dashboard_get(cluster: local.LocalCluster, path: str, token: bool = True) -> Any:
    """GET a dashboard path as JSON (with this machine's Ray token unless token=False)."""
    request = urllib.request.Request(cluster.dashboard_url + path, headers=jobs.auth_headers() if token else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def nodes(cluster: local.LocalCluster) -> dict[str, dict]:
    """The cluster's nodes by name, as the state API reports them (state, labels, resources_total, node_ip)."""
    listing = dashboard_get(cluster, "/api/v0/nodes?detail=1&limit=100")["data"]["result"]["result"]
    return {node["node_name"]: node for node in listing}


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    """Poll `condition` until it returns something truthy; fail the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def write_colour_imagefolder(
    root: Path, base_images: int, val_images: int = 12, classes: int = 5, size: int = 20, novel_images: int = 0
) -> Path:
    """root/{base,val[,novel]}/<class>/<i>.png: `classes` classes told apart by colour, seeded noise on top (a
    novel split when novel_images > 0)."""
    generator = np.random.default_rng(0)
    splits = [("base", base_images), ("val", val_images)] + ([("novel", novel_images)] if novel_images else [])
    for split, count in splits:
        for label in range(classes):
            folder = root / split / f"{split}{label}"
            folder.mkdir(parents=True)
            colour = np.array([(label * 53) % 256, (label * 97 + 40) % 256, (label * 31 + 90) % 256], dtype=np.float64)
            for index in range(count):
                pixels = np.clip(colour + generator.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


def trial_rows(experiment_root: Path, tune_name: str = "tune") -> dict[str, list[dict]]:
    """Every trial's reported rows (result.json), by trial directory name."""
    rows = {}
    for result in sorted((experiment_root / tune_name).glob("*/result.json")):
        rows[result.parent.name] = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    return rows


def saved_trial_states(experiment_root: Path, tune_name: str = "tune") -> dict[str, str]:
    """Trial directory name (trial_<id>) → status, as Tune's newest saved experiment state lists them ({} while it
    is being written or before the first save)."""
    states = sorted((experiment_root / tune_name).glob("experiment_state-*.json"))
    try:
        trials = [json.loads(entry[0]) for entry in json.loads(states[-1].read_text())["trial_data"]] if states else []
    except (json.JSONDecodeError, KeyError, IndexError, OSError):
        return {}  # being written: ask again
    return {f"trial_{trial['trial_id']}": trial.get("status", "") for trial in trials}


def last_epochs(experiment_root: Path) -> dict[str, int]:
    """Each trial's last reported epoch in its result.json (as synced to the experiment directory)."""
    return {trial: rows[-1]["epoch"] for trial, rows in trial_rows(experiment_root).items() if rows}


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its (size, modification time in ns)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def checkpointed_epochs(experiment_root: Path, tune_name: str = "tune") -> dict[str, int]:
    """Reports each trial has checkpointed so far (its newest checkpoint_<index> + 1; one per epoch when val_every
    is 1). Trials write checkpoints straight into the experiment as they report, so, unlike result.json (synced
    when Tune saves its state), they tell where a trial is now."""
    found = {}
    for trial_dir in (experiment_root / tune_name).glob("trial_*"):
        indices = [int(path.name.rpartition("_")[2]) for path in trial_dir.glob("checkpoint_*") if path.is_dir()]
        if indices:
            found[trial_dir.name] = max(indices) + 1
    return found
