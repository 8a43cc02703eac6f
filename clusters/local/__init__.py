"""A local multi-node Ray cluster on 127.0.0.1: a head plus N worker nodes, each its own `ray start`."""

from clusters.local.cluster import LocalCluster, Node, down, kill_raylet, load, start_worker, stop_node, up

__all__ = ["LocalCluster", "Node", "down", "kill_raylet", "load", "start_worker", "stop_node", "up"]
