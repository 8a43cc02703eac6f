"""Start and stop a Ray cluster of a head and N worker nodes on this machine, all on 127.0.0.1.

Each node is one `ray start --block` process started in its own session, so its process group holds exactly that
node's Ray processes (GCS and dashboard on the head, raylet, agents, workers). That gives:
- `stop_node` / `down` end one node's processes or this cluster's, never `ray stop` (which stops every Ray process on
  the machine, other users' clusters included);
- `kill_raylet` (SIGKILL of one worker's raylet) is a real node failure: that node's `ray start --block` tears the node
  down, the other nodes carry on.
Several raylets share one host because every node gets its own ports (node manager, object manager, agents, metrics,
random worker ports) and its own temp dir `<cluster temp dir>/<node name>`: nodes that shared one session dir would
share `runtime_resources/`, and one node's runtime-env garbage collection would delete a job's working_dir under
another node's running driver. The cluster's temp dir is a short one of its own (Unix socket paths are limited to
107 bytes), not /tmp/ray, so a plain `ray.init()` elsewhere on the machine never attaches to this cluster. Token
authentication stays on: every node runs with RAY_AUTH_MODE=token and the token Ray reads (RAY_AUTH_TOKEN,
RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, created 0600 by clusters.tokens if missing).
Every listener is on 127.0.0.1 (checked with psutil in tests/clusters/test_listeners.py). Ray binds all interfaces
unless a node's IP is loopback, and it turns `--node-ip-address=127.0.0.1` into the machine's outward address; so
the head runs in Ray's single-machine mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which keeps its node IP 127.0.0.1,
see clusters.session; its job drivers inherit it), and a worker, which that mode refuses, runs Ray's `ray start`
through clusters/local/ray_start.py, which keeps the loopback --address and --node-ip-address as given.
What was started is recorded in `<state_dir>/cluster.json`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clusters import tokens
from clusters.errors import ClusterError
from clusters.session import SINGLE_MACHINE_ENV, check_auth_mode
from data.atomic import write_text_atomically

HOST = "127.0.0.1"
NODE_LABEL = "negmargin.io/node"
STATE_FILE = "cluster.json"
STARTED_MARK = "Ray runtime started"
DEFAULT_PORT = 6379
DEFAULT_DASHBOARD_PORT = 8265
START_ATTEMPTS = 2


def default_state_dir() -> Path:
    """Where `up` records what it started: $NEGMARGIN_CLUSTER_DIR or ~/.cache/negmargin/local-cluster."""
    configured = os.environ.get("NEGMARGIN_CLUSTER_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "negmargin" / "local-cluster"


@dataclass
class Node:
    """One started node: its name (also its label value and custom resource), role and `ray start` process id."""

    name: str
    role: str
    pid: int
    num_cpus: float
    resources: dict[str, float]
    log: str


@dataclass
class LocalCluster:
    """A started local cluster as recorded in its state file."""

    state_dir: str
    temp_dir: str
    gcs_address: str
    dashboard_url: str
    nodes: list[Node] = field(default_factory=list)

    def node(self, name: str) -> Node:
        """The node called `name`."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise ClusterError(
            f"{self.state_path}: no node named {name!r} (nodes: {', '.join(n.name for n in self.nodes)})"
        )

    @property
    def state_path(self) -> Path:
        """The state file of this cluster."""
        return Path(self.state_dir) / STATE_FILE

    def save(self) -> None:
        """Write the state file atomically."""
        write_text_atomically(self.state_path, json.dumps(asdict(self), indent=2))


def load(state_dir: str | Path | None = None) -> LocalCluster:
    """Read the state file of the cluster started with the same state dir."""
    path = Path(state_dir or default_state_dir()) / STATE_FILE
    if not path.is_file():
        raise ClusterError(f"{path}: no local cluster recorded here (start one with `negmargin cluster up --local`)")
    data = json.loads(path.read_text())
    data["nodes"] = [Node(**node) for node in data["nodes"]]
    return LocalCluster(**data)


def up(
    workers: int = 2,
    *,
    head_cpus: float = 1,
    worker_cpus: float = 1,
    port: int = DEFAULT_PORT,
    dashboard_port: int = DEFAULT_DASHBOARD_PORT,
    object_store_mb: int = 128,
    state_dir: str | Path | None = None,
    timeout: float = 120.0,
) -> LocalCluster:
    """Start a head and `workers` worker nodes on 127.0.0.1 (port 0: any free port) and record them."""
    state_dir = Path(state_dir or default_state_dir()).resolve()
    if (state_dir / STATE_FILE).is_file():
        previous = load(state_dir)
        if any(_alive(node.pid) for node in previous.nodes):
            raise ClusterError(
                f"{previous.state_path}: a local cluster is already running; stop it with `negmargin cluster down`"
            )
        down(state_dir)  # a stale record: its nodes are gone; clear what is left of them
    port = _claim_port(port, "--port")
    dashboard_port = _claim_port(dashboard_port, "--dashboard-port")
    node_environment()  # refuses RAY_AUTH_MODE other than token before anything starts
    state_dir.mkdir(parents=True, exist_ok=True)
    tokens.ensure_private_token(create=True)
    cluster = LocalCluster(
        state_dir=str(state_dir),
        temp_dir=tempfile.mkdtemp(prefix="nm-ray-", dir="/tmp"),
        gcs_address=f"{HOST}:{port}",
        dashboard_url=f"http://{HOST}:{dashboard_port}",
    )
    cluster.save()
    head_options = [
        "--head",
        f"--port={port}",
        f"--dashboard-host={HOST}",
        f"--dashboard-port={dashboard_port}",
        "--include-dashboard=true",
        f"--ray-client-server-port={_free_port()}",
    ]
    try:
        _start_node(cluster, "head", "head", head_cpus, head_options, object_store_mb, timeout)
        for index in range(1, workers + 1):
            start_worker(
                cluster, f"worker-{index}", num_cpus=worker_cpus, object_store_mb=object_store_mb, timeout=timeout
            )
    except BaseException:
        down(state_dir)
        raise
    return cluster


def start_worker(
    cluster: LocalCluster, name: str, *, num_cpus: float = 1, object_store_mb: int = 128, timeout: float = 120.0
) -> Node:
    """Start one more worker node that joins `cluster` and record it."""
    if any(node.name == name for node in cluster.nodes):
        raise ClusterError(f"{cluster.state_path}: a node named {name!r} exists already")
    return _start_node(
        cluster, name, "worker", num_cpus, [f"--address={cluster.gcs_address}"], object_store_mb, timeout
    )


def stop_node(cluster: LocalCluster, name: str, timeout: float = 30.0) -> None:
    """Stop one node gracefully (drain, then end its processes; SIGKILL after `timeout`); the others keep running."""
    _end_group(cluster.node(name).pid, timeout)


def kill_raylet(cluster: LocalCluster, name: str) -> int:
    """SIGKILL the raylet of node `name` (a node failure); return the raylet's process id."""
    node = cluster.node(name)
    raylets = [pid for pid in _group_members(node.pid) if _command_name(pid) == "raylet"]
    if not raylets:
        raise ClusterError(f"{cluster.state_path}: node {name!r} has no running raylet")
    os.kill(raylets[0], signal.SIGKILL)
    return raylets[0]


def down(state_dir: str | Path | None = None, timeout: float = 30.0) -> list[str]:
    """Stop every node of the recorded cluster (workers first), remove its temp dir and state; return the node names."""
    path = Path(state_dir or default_state_dir()) / STATE_FILE
    if not path.is_file():
        return []
    cluster = load(path.parent)
    for node in reversed(cluster.nodes):
        _end_group(node.pid, timeout)
    for pid in _processes_mentioning(cluster.temp_dir):
        _kill(pid, signal.SIGKILL)
    _remove(cluster)
    return [node.name for node in cluster.nodes]


def node_environment(role: str = "worker") -> dict[str, str]:
    """The environment a node runs with: token auth on, this interpreter's bin dir first on PATH, and on the head
    Ray's single-machine mode (node IP 127.0.0.1; a worker in that mode would refuse to start)."""
    check_auth_mode()
    env = dict(os.environ)
    env["RAY_AUTH_MODE"] = "token"
    env[SINGLE_MACHINE_ENV] = "0" if role == "head" else "1"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.pop("RAY_ADDRESS", None)
    return env


def ray_command() -> str:
    """The `ray` executable of this interpreter's environment."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        raise ClusterError("no `ray` command found beside this Python or on PATH (install ray[default])")
    return found


def _start_node(
    cluster: LocalCluster,
    name: str,
    role: str,
    num_cpus: float,
    options: list[str],
    object_store_mb: int,
    timeout: float,
) -> Node:
    """Start one node and wait until it has started; one more try if the first does not start in time."""
    for attempt in range(1, START_ATTEMPTS + 1):
        node, process = _launch_node(cluster, name, role, num_cpus, options, object_store_mb)
        try:
            _wait_started(node, process, timeout)
            return node
        except ClusterError:
            # Ray gives a raylet 30 s to register with the GCS; on a loaded machine a node may miss that once.
            _end_group(node.pid, timeout=10)
            cluster.nodes.remove(node)
            cluster.save()
            if attempt == START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def start_command(role: str) -> list[str]:
    """`ray start` for the head (Ray's single-machine mode keeps its node IP 127.0.0.1: node_environment), and for a
    worker, which that mode refuses, Ray's `ray start` through clusters/local/ray_start.py (loopback kept)."""
    if role == "head":
        return [ray_command(), "start"]
    return [sys.executable, str(Path(__file__).with_name("ray_start.py"))]


def _launch_node(
    cluster: LocalCluster, name: str, role: str, num_cpus: float, options: list[str], object_store_mb: int
) -> tuple[Node, subprocess.Popen]:
    """Run `ray start --block` for one node in its own session and record it (not waiting for it)."""
    log = Path(cluster.state_dir) / f"{name}.log"
    resources = {f"node-{name}": 1.0}
    command = [
        *start_command(role),
        "--block",
        *options,
        f"--node-ip-address={HOST}",
        f"--node-name={name}",
        f"--num-cpus={num_cpus:g}",
        "--num-gpus=0",
        f"--resources={json.dumps(resources)}",
        f"--labels={NODE_LABEL}={name}",
        f"--temp-dir={cluster.temp_dir}/{name}",
        f"--object-store-memory={object_store_mb * 2**20}",
        f"--node-manager-port={_free_port()}",
        f"--object-manager-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        "--min-worker-port=0",
        "--max-worker-port=0",
        "--disable-usage-stats",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=node_environment(role), start_new_session=True
        )
    node = Node(name=name, role=role, pid=process.pid, num_cpus=num_cpus, resources=resources, log=str(log))
    cluster.nodes.append(node)
    cluster.save()
    return node, process


def _wait_started(node: Node, process: subprocess.Popen, timeout: float) -> None:
    """Wait until the node's log says it started; ClusterError with the log's tail if it exits or stalls."""
    deadline = time.monotonic() + timeout
    log = Path(node.log)
    while STARTED_MARK not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise ClusterError(f"{log}: node {node.name!r} did not start ({tail})")
        time.sleep(0.5)


def _claim_port(port: int, option: str) -> int:
    """`port` if it is free on 127.0.0.1 (0: any free port); a ClusterError naming the option otherwise."""
    if port == 0:
        return _free_port()
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise ClusterError(
                f"{option} {port}: port in use on {HOST} (another Ray cluster?); choose another"
            ) from None
    return port


def _free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _end_group(pgid: int, timeout: float) -> None:
    """SIGTERM a node's `ray start` (it drains the node and ends its processes), SIGKILL its group after `timeout`."""
    if not _group_members(pgid):
        return
    _kill(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.3)
    _killpg(pgid, signal.SIGKILL)
    while _group_members(pgid) and time.monotonic() < deadline + 10:
        time.sleep(0.2)


def _remove(cluster: LocalCluster) -> None:
    """Delete a stopped cluster's temp dir and state file (node logs stay in the state dir)."""
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)
    cluster.state_path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether any process of the group led by `pid` is still running."""
    return bool(_group_members(pid))


def _group_members(pgid: int) -> list[int]:
    """Process ids of the live (not zombie) processes in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat_fields(entry / "stat")
            if stat and stat[2] != "Z" and int(stat[4]) == pgid:
                members.append(int(entry.name))
    return members


def _stat_fields(path: Path) -> list[str] | None:
    """/proc/PID/stat split into fields (the command name, which may hold spaces, as one field)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    return [pid, comm, *rest.split()]


def _command_name(pid: int) -> str:
    """The kernel's short command name of a process ('' if it is gone)."""
    stat = _stat_fields(Path(f"/proc/{pid}/stat"))
    return stat[1] if stat else ""


def _processes_mentioning(text: str) -> list[int]:
    """Process ids whose command line contains `text` (stragglers of this cluster outside its process groups)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
