"""Joining a Ray cluster from the driver: validate an address, connect to it, or start a local Ray on 127.0.0.1.

`ray_session()` is how every command that runs trials (sweep run/resume/promote with extra seeds) gets its cluster:
the address given, else $RAY_ADDRESS, else a fresh local Ray of this process only (address="local", never a cluster
that happens to run on the machine). It shuts down what it started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from clusters.errors import ClusterError

LOCALHOST = "127.0.0.1"


def validate_address(address: str) -> None:
    """Reject an address that cannot name a Ray cluster, before anything starts."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    if address.startswith(("http://", "https://")):
        raise ClusterError(
            f"--address {address}: that is a dashboard/Jobs address; use `negmargin sweep submit` for it, "
            "or give the GCS address HOST:6379 here"
        )
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address!r}: expected HOST:PORT (e.g. 127.0.0.1:6379), ray://HOST:10001 or auto")


@contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Connect to `address` (or $RAY_ADDRESS); without one, start a local Ray bound to 127.0.0.1. Shut down after."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():  # a caller (a test, a notebook) already chose the cluster
        yield
        return
    if address:
        validate_address(address)
        try:
            ray.init(address=address, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first_line = str(error).splitlines()[0]
            raise ClusterError(f"--address {address}: cannot connect to a Ray cluster there ({first_line})") from None
    else:
        ray.init(address="local", _node_ip_address=LOCALHOST, dashboard_host=LOCALHOST, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


def alive_nodes() -> list[dict]:
    """The alive nodes of the connected cluster (`ray.nodes()` entries)."""
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]
