"""Every listening socket of the two local clusters is on loopback, and the token file they use is private.

Each cluster runs as it does for a user, in its own processes with its own HOME (no token there yet): the local Ray
of `negmargin sweep run` (`ray_session()` with no address) in a child process, and `negmargin cluster up --local`
through the CLI. The listening sockets of their processes are then read from the kernel with psutil, not taken from
the options we pass, and every one must be on 127.0.0.1 (or its IPv4-mapped form on a dual-stack socket).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import ray  # noqa: F401  (Ray ships psutil: importing ray puts its copy on sys.path)

# isort: split
import psutil

from clusters.local import cluster as local

PROJECT = Path(__file__).resolve().parents[2]
# The processes a node must have listening before its listing is complete.
HEAD_LISTENERS = ("gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent")
SESSION_SCRIPT = """
import sys
import ray
from ray._raylet import AuthenticationTokenLoader
from clusters.session import ray_session

with ray_session():
    @ray.remote
    def node_ip():
        return ray.util.get_node_ip_address()

    ips = ray.get([node_ip.remote() for _ in range(2)])
    nodes = ",".join(sorted({node["NodeManagerAddress"] for node in ray.nodes()}))
    print("READY", nodes, ",".join(ips), AuthenticationTokenLoader.instance().get_raw_token(), flush=True)
    sys.stdin.read()  # until the test closes stdin
"""


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _listeners(pids: set[int]) -> list[tuple[str, int, str, int]]:
    """(ip, port, process name, pid) of every listening TCP socket and unconnected bound UDP socket of `pids`."""
    found = []
    for connection in psutil.net_connections(kind="inet"):
        if connection.pid not in pids or not connection.laddr:
            continue
        listening = connection.status == psutil.CONN_LISTEN or (
            connection.type == socket.SOCK_DGRAM and not connection.raddr
        )
        if not listening:
            continue
        try:
            name = psutil.Process(connection.pid).name()
        except psutil.NoSuchProcess:
            continue
        found.append((connection.laddr.ip, connection.laddr.port, name, connection.pid))
    return sorted(found)


def _tree(pid: int) -> set[int]:
    root = psutil.Process(pid)
    return {pid} | {child.pid for child in root.children(recursive=True)}


def _groups(pgids: set[int]) -> set[int]:
    members = set()
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) in pgids:
                members.add(process.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _settled_listeners(pids_now, needed: dict[str, int], timeout: float = 90.0) -> list[tuple[str, int, str, int]]:
    """The listeners once `needed[name]` processes called `name` listen, for every name, and the list has not changed
    for 3 s."""
    deadline = time.monotonic() + timeout
    previous, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        current = _listeners(pids_now())
        pids_by_name = {name: {pid for _, _, name_, pid in current if name_ == name} for name in needed}
        complete = all(len(pids_by_name[name]) >= count for name, count in needed.items())
        if current != previous:
            previous, stable_since = current, time.monotonic()
        elif complete and time.monotonic() - stable_since >= 3:
            return current
        time.sleep(0.5)
    raise AssertionError(f"listeners did not settle within {timeout:.0f}s: {previous}")


def _environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=str(PROJECT), RAY_USAGE_STATS_ENABLED="0")
    return env


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.timeout(300)
def test_the_local_ray_of_sweep_run_listens_on_loopback_only_with_a_private_token(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", SESSION_SCRIPT],
        cwd=PROJECT,
        env=_environment(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready = child.stdout.readline().split()
        assert ready and ready[0] == "READY", f"the local Ray did not start (exit {child.poll()})"
        node_ips, task_ips = ready[1].split(","), ready[2].split(",")
        listening = _settled_listeners(lambda: _tree(child.pid), {name: 1 for name in HEAD_LISTENERS})
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    assert child.returncode == 0
    outside = [entry for entry in listening if not _is_loopback(entry[0])]
    assert outside == [], f"listening beyond loopback: {outside}"
    assert len(listening) >= 8, listening  # GCS, raylet (2), agents, workers, driver: all of them were seen
    assert node_ips == ["127.0.0.1"] and set(task_ips) == {"127.0.0.1"}
    token = home / ".ray" / "auth_token"
    assert _mode(token) == 0o600 and _mode(token.parent) == 0o700
    # the token clusters.tokens wrote (secrets.token_hex(32): 64 lowercase hex digits, no newline) is the one the
    # driver's Ray authenticated with
    assert re.fullmatch(r"[0-9a-f]{64}", token.read_text()) and ready[3:] == [token.read_text()]


@pytest.mark.multinode
@pytest.mark.timeout(400)
def test_cluster_up_local_listens_on_loopback_only_and_demands_its_private_token(tmp_path):
    home, state_dir = tmp_path / "home", tmp_path / "state"
    (home / ".ray").mkdir(parents=True)
    token = home / ".ray" / "auth_token"
    token.write_text("f" * 64)
    token.chmod(0o644)  # as Ray leaves it
    env = _environment(home)
    command = [sys.executable, "-m", "sweep.cli", "cluster"]
    up = subprocess.run(
        [*command, "up", "--local", "--workers", "2", "--head-cpus", "0", "--port", "0", "--dashboard-port", "0"]
        + ["--state-dir", str(state_dir)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        assert up.returncode == 0, up.stderr[-2000:]
        cluster = local.load(state_dir)
        groups = {node.pid for node in cluster.nodes}
        needed = {"gcs_server": 1, "raylet": 3, "ray::DashboardAgent": 3, "ray::RuntimeEnvAgent": 3}
        listening = _settled_listeners(lambda: _groups(groups), needed)
        outside = [entry for entry in listening if not _is_loopback(entry[0])]
        assert outside == [], f"listening beyond loopback: {outside}"
        assert _mode(token) == 0o600 and token.read_text() == "f" * 64  # tightened, not rewritten
        request = urllib.request.Request(
            cluster.dashboard_url + "/api/v0/nodes?detail=1&limit=10", headers={"Authorization": f"Bearer {'f' * 64}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            found = json.load(response)["data"]["result"]["result"]
        assert sorted(node["node_ip"] for node in found) == ["127.0.0.1"] * 3
        # A client on this machine without any token is told so, and where it looked.
        no_token_home = tmp_path / "elsewhere"
        no_token_home.mkdir()
        status = subprocess.run(
            [sys.executable, "-m", "sweep.cli", "sweep", "status", "raysubmit_x", "--address", cluster.dashboard_url],
            cwd=PROJECT,
            env=_environment(no_token_home),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 2
        assert status.stderr.splitlines() == [
            f"negmargin: error: {cluster.dashboard_url}: the cluster wants a Ray token and none was found on this "
            f"machine (looked in $RAY_AUTH_TOKEN (unset), $RAY_AUTH_TOKEN_PATH (unset), "
            f"{no_token_home / '.ray' / 'auth_token'} (no such file)); copy the cluster's token to "
            "~/.ray/auth_token (mode 0600)"
        ]
    finally:
        subprocess.run([*command, "down", "--state-dir", str(state_dir)], cwd=PROJECT, env=env, timeout=120)
