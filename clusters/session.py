"""Joining a Ray cluster from the driver: validate an address, connect to it, or start a local Ray on 127.0.0.1.

`ray_session()` is how every command that runs trials (sweep run/resume/promote with extra seeds) gets its cluster:
the address given, else $RAY_ADDRESS, else a fresh local Ray of this process only (address="local", never a cluster
that happens to run on the machine). It shuts down what it started.

The local Ray listens on 127.0.0.1 only. `_node_ip_address="127.0.0.1"` alone does not do it: Ray (2.60) replaces a
loopback node IP by the machine's outward address (`services.resolve_ip_for_localhost`), and every listener binds
all interfaces unless the node IP is loopback (the GCS, raylet, core workers: `0.0.0.0`/`::`; the dashboard agent,
runtime-env agent, Ray Client server and the Prometheus metrics servers: that address or `0.0.0.0`). Ray keeps a
loopback node IP only in its single-machine mode, `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` (the default on macOS and
Windows): then `get_node_ip_address()` is 127.0.0.1 and every one of those listeners binds 127.0.0.1. That mode is
set for the local Ray (its environment variable for the processes it starts, Ray's module constant for this one).
Token auth stays on (RAY_AUTH_MODE=token) and the token file is made private first (clusters.tokens).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from clusters import tokens
from clusters.errors import ClusterError

LOCALHOST = "127.0.0.1"
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_MODE_ENV = "RAY_AUTH_MODE"


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


def check_auth_mode() -> None:
    """Refuse a RAY_AUTH_MODE other than token: this project keeps Ray's token authentication on."""
    mode = os.environ.get(AUTH_MODE_ENV, "token")
    if mode.lower() != "token":
        raise ClusterError(f"{AUTH_MODE_ENV}={mode}: this project keeps Ray token authentication on; unset it")


def check_session(address: str | None = None) -> None:
    """Everything `ray_session(address)` would refuse, checked before any experiment or cluster work: the auth
    mode, the address's form and that something listens there."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    check_auth_mode()
    if address:
        validate_address(address)
        check_reachable(address)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """ClusterError unless a TCP connection to HOST:PORT (or ray://HOST:PORT) opens; auto and local pass."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ClusterError(f"--address {address}: no Ray cluster answers there ({reason})") from None


@contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Connect to `address` (or $RAY_ADDRESS); without one, start a local Ray on 127.0.0.1 only. Shut down after."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():  # a caller (a test, a notebook) already chose the cluster
        yield
        return
    check_session(address)
    if address:
        tokens.ensure_private_token(create=False)
        # A cluster on this machine (`cluster up --local`) listens on 127.0.0.1 only: keep Ray from resolving a
        # loopback address to the machine's outward one.
        with single_machine_mode() if is_loopback_address(address) else nullcontext():
            try:
                ray.init(address=address, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError) as error:
                first_line = str(error).splitlines()[0]
                raise ClusterError(
                    f"--address {address}: cannot connect to a Ray cluster there ({first_line})"
                ) from None
            try:
                yield
            finally:
                ray.shutdown()
        return
    tokens.ensure_private_token(create=True)
    with single_machine_mode():
        ray.init(address="local", _node_ip_address=LOCALHOST, dashboard_host=LOCALHOST, include_dashboard=False)
        try:
            yield
        finally:
            ray.shutdown()


def is_loopback_address(address: str) -> bool:
    """Whether a HOST:PORT (or ray://HOST:PORT) address names this machine's loopback interface."""
    host = address.removeprefix("ray://").rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def single_machine_mode() -> Iterator[None]:
    """Ray's single-machine mode while a local Ray runs (node IP 127.0.0.1, so every listener binds loopback): the
    environment variable for the processes it starts, Ray's constant (read at import) for this one."""
    from ray._private import ray_constants

    saved_env = os.environ.get(SINGLE_MACHINE_ENV)
    saved_constant = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_constant
        if saved_env is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = saved_env


def alive_nodes() -> list[dict]:
    """The alive nodes of the connected cluster (`ray.nodes()` entries)."""
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]
