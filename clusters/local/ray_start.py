"""`ray start` for a worker node of the local cluster, keeping loopback addresses loopback.

    python -m clusters.local.ray_start --address=127.0.0.1:PORT [other `ray start` options]

Ray (2.60) binds a node's listeners to all interfaces unless the node's IP is loopback, and its `ray start` turns
every loopback address it is given (--address, --node-ip-address) into the machine's outward address
(`services.resolve_ip_for_localhost`) unless it runs in single-machine mode, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
which refuses to start a worker node. The head of the local cluster uses that mode (clusters.local.cluster); a worker
runs Ray's own `ray start` through this module, which replaces only that resolution by the one single-machine mode
uses (a loopback host stays 127.0.0.1). The worker then reaches the GCS on 127.0.0.1 and takes 127.0.0.1 as its node
IP, so its raylet, agents and workers listen on 127.0.0.1 (tests/clusters/test_listeners.py checks it with psutil).
"""

from __future__ import annotations

import sys


def keep_loopback_addresses() -> None:
    """Make Ray's address resolution in this process keep a loopback host as 127.0.0.1 (what it does on one machine)."""
    from ray._common.network_utils import get_localhost_ip, is_localhost
    from ray._private import services

    outward = services.resolve_ip_for_localhost

    def resolve(host: str) -> str:
        return get_localhost_ip() if host and is_localhost(host) else outward(host)

    services.resolve_ip_for_localhost = resolve


def main(argv: list[str]) -> int:
    """Run `ray start ARGV` with loopback addresses kept."""
    keep_loopback_addresses()
    from ray.scripts.scripts import main as ray_main

    sys.argv = ["ray", "start", *argv]
    return ray_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
