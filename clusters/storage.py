"""Fail a sweep at once when its storage is a disk that only one node of the cluster sees.

(A storage path that is a URI is refused earlier, by the spec: sweep.schema.spec.check_storage_path.) Ray Tune writes
every trial's results and checkpoints to storage_path from the node the trial runs on, and a trial retried after a node
failure reads its last checkpoint from there on another node. So on a cluster of several nodes the path must be
reachable from every node:
- a path is when it lies on a network filesystem (per /proc/mounts: NFS, SMB/CIFS, Lustre, GPFS, BeeGFS,
  CephFS, GlusterFS, or a FUSE mount such as s3fs / gcsfuse / EFS utils);
- a path also is when every alive node runs on this very machine: the multi-node test clusters started by
  clusters/local (several raylets on one host) share this machine's disk, so a node-local path is shared there.
  "This machine" means each alive node's NodeManagerHostname is this host's name and its NodeManagerAddress is an
  address this machine owns (a socket binds to it; an address of another machine or container cannot be bound here).
The check runs in the driver (on the head node for a submitted job), after ray.init, with ray.nodes().
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from clusters.errors import ClusterError

MOUNTS_FILE = "/proc/mounts"
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs")


def check_storage_reachable(storage_path: str, nodes: list[dict]) -> None:
    """Raise ClusterError if the directory `storage_path` is node-local while several alive nodes (`ray.nodes()`)
    must reach it."""
    alive = [node for node in nodes if node.get("Alive", node.get("alive", False))]
    if len(alive) <= 1:
        return
    fs_type = filesystem_type(storage_path)
    if is_network_filesystem(fs_type) or all(_is_this_machine(node) for node in alive):
        return
    hosts = sorted({str(node.get("NodeManagerHostname") or node.get("NodeManagerAddress")) for node in alive})
    raise ClusterError(
        f"storage_path: {storage_path!r} is on a node-local {fs_type} disk, but the cluster has {len(alive)} alive "
        "nodes "
        f"on {len(hosts)} machines ({', '.join(hosts)}); trials on other nodes could not write or resume from it: use "
        "a shared filesystem path (NFS/EFS/Filestore mounted on every node)"
    )


def is_network_filesystem(fs_type: str) -> bool:
    """Whether a /proc/mounts filesystem type is shared over the network (fuse.* mounts count: s3fs, gcsfuse, …)."""
    return fs_type in NETWORK_FILESYSTEMS or fs_type.startswith(("fuse.", "nfs"))


def filesystem_type(path: str | Path) -> str:
    """The filesystem type of the mount that holds `path` (or its nearest existing parent), from /proc/mounts."""
    target = Path(path).expanduser().absolute()
    while not target.exists() and target != target.parent:
        target = target.parent
    target = target.resolve()
    best, best_type = "", "unknown"
    for mount_point, fs_type in _mounts():
        inside = target == Path(mount_point) or Path(mount_point) in target.parents
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type


def _mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) pairs of /proc/mounts, with its octal escapes (\\040 for a space) decoded."""
    try:
        lines = Path(MOUNTS_FILE).read_text().splitlines()
    except OSError:
        return []
    pairs = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3:
            mount_point = re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), fields[1])
            pairs.append((mount_point, fields[2]))
    return pairs


def _is_this_machine(node: dict) -> bool:
    """Whether a `ray.nodes()` entry runs on this machine: same hostname, and its address is one this host owns."""
    if node.get("NodeManagerHostname") != socket.gethostname():
        return False
    address = node.get("NodeManagerAddress", "")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError:
        return False
    return True
