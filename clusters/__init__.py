"""Ray cluster definitions: a local multi-node cluster (`clusters.local`), cluster-launcher YAML, KubeRay manifests."""

from pathlib import Path

DEFINITIONS_DIR = Path(__file__).resolve().parent
