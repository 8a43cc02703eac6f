"""Ray cluster definitions: a local multi-node cluster (`clusters.local`), cluster-launcher YAML, KubeRay manifests."""
