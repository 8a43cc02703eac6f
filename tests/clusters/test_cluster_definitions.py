"""Every cluster definition under clusters/ parses and holds the keys its tool (ray up, KubeRay) requires."""

import re
from pathlib import Path

import pytest
import yaml

from sweep import spec as spec_module

CLUSTERS = Path(__file__).resolve().parents[2] / "clusters"
LAUNCHER_CONFIGS = ["aws.yaml", "gcp.yaml"]
LAUNCHER_KEYS = {
    "cluster_name",
    "max_workers",
    "provider",
    "auth",
    "available_node_types",
    "head_node_type",
    "file_mounts",
    "setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
}


def _documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((CLUSTERS / name).read_text()) if doc is not None]


def _by_kind(name: str, kind: str) -> dict:
    found = [doc for doc in _documents(name) if doc.get("kind") == kind]
    assert len(found) == 1, f"{name}: expected one {kind}"
    return found[0]


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_has_the_keys_ray_up_requires(name):
    (config,) = _documents(name)
    assert LAUNCHER_KEYS <= set(config)
    provider = config["provider"]
    assert provider["type"] in ("aws", "gcp") and provider["region"]
    if provider["type"] == "gcp":
        assert provider["project_id"] and provider["availability_zone"]
    assert config["auth"]["ssh_user"]
    node_types = config["available_node_types"]
    assert config["head_node_type"] in node_types
    for node_type in node_types.values():
        assert {"resources", "node_config", "min_workers", "max_workers"} <= set(node_type)
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"]
    workers = [node for name_, node in node_types.items() if name_ != config["head_node_type"]]
    assert all(node["resources"]["GPU"] >= 1 and node["max_workers"] > node["min_workers"] for node in workers)
    assert node_types[config["head_node_type"]]["resources"].get("GPU", 0) == 0


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_installs_the_project_mounts_shared_storage_and_keeps_ray_private(name):
    (config,) = _documents(name)
    setup = "\n".join(config["setup_commands"])
    assert "pip install" in setup and "negmargin" in setup
    assert "mount -t nfs" in setup and "/shared" in setup
    assert config["file_mounts"]["~/negmargin"] == "."
    assert "~/.ray/auth_token" in config["file_mounts"]
    head = " ".join(config["head_start_ray_commands"])
    assert "--head" in head and "--dashboard-host=127.0.0.1" in head
    for command in config["head_start_ray_commands"][-1:] + config["worker_start_ray_commands"][-1:]:
        assert "RAY_AUTH_MODE=token" in command and "ray start" in command
    assert "$RAY_HEAD_IP:6379" in config["worker_start_ray_commands"][-1]


def test_a_launcher_gpu_node_fits_a_published_preset_trial():
    preset = spec_module.load(spec_module.preset_path("resnet12-mini-neg-cosine-1shot"))
    for name in LAUNCHER_CONFIGS:
        (config,) = _documents(name)
        gpu_types = [
            node["resources"] for node in config["available_node_types"].values() if node["resources"].get("GPU")
        ]
        assert all(r["CPU"] >= preset.resources.cpu and r["GPU"] >= preset.resources.gpu for r in gpu_types), name


def _pod_spec_checks(cluster_spec: dict, dashboard_host: str) -> None:
    assert cluster_spec["enableInTreeAutoscaling"] is True
    assert cluster_spec["authOptions"] == {"mode": "token", "secretName": "negmargin-ray-token"}
    head = cluster_spec["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == dashboard_host
    head_mounts = {mount["mountPath"] for mount in head["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert "/shared" in head_mounts
    (group,) = cluster_spec["workerGroupSpecs"]
    assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"] and group["maxReplicas"] > 0
    container = group["template"]["spec"]["containers"][0]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert "/shared" in {mount["mountPath"] for mount in container["volumeMounts"]}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in group["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"negmargin-shared"}


def _network_policy_checks(name: str, cluster_spec: dict) -> None:
    """The NetworkPolicy selects every pod of the cluster and admits this cluster's pods on every port and the
    KubeRay operator on 8265 only."""
    policy = _by_kind(name, "NetworkPolicy")
    templates = [cluster_spec["headGroupSpec"]["template"]] + [g["template"] for g in cluster_spec["workerGroupSpecs"]]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(selector.items() <= t["metadata"]["labels"].items() for t in templates)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    own, operator = policy["spec"]["ingress"]
    assert own == {"from": [{"podSelector": {"matchLabels": selector}}]}
    (peer,) = operator["from"]
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kuberay-operator"}
    assert "kubernetes.io/metadata.name" in peer["namespaceSelector"]["matchLabels"]
    assert operator["ports"] == [{"protocol": "TCP", "port": 8265}]


@pytest.mark.parametrize("name", ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"])
def test_kuberay_manifests_require_the_operator_version_that_knows_authoptions_secretname(name):
    text = (CLUSTERS / name).read_text()
    assert "KubeRay >= 1.6.0" in text and not re.search(r"KubeRay >= 1\.[0-5]\b", text)


def test_kuberay_raycluster_manifest():
    cluster = _by_kind("kuberay/raycluster.yaml", "RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    _pod_spec_checks(cluster["spec"], dashboard_host="127.0.0.1")  # reached through kubectl port-forward only
    _network_policy_checks("kuberay/raycluster.yaml", cluster["spec"])
    claim = _by_kind("kuberay/raycluster.yaml", "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "negmargin-shared" and claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_kuberay_rayjob_runs_the_configmap_spec_on_shared_storage():
    job = _by_kind("kuberay/rayjob.yaml", "RayJob")
    assert job["apiVersion"] == "ray.io/v1"
    assert job["spec"]["entrypoint"] == "negmargin sweep run /specs/spec.yaml --storage /shared/experiments"
    assert job["spec"]["submissionMode"] == "SidecarMode"
    cluster_spec = job["spec"]["rayClusterSpec"]
    # The operator polls the job's status through the head service (pod IP, 8265): the NetworkPolicy guards it.
    _pod_spec_checks(cluster_spec, dashboard_host="0.0.0.0")
    _network_policy_checks("kuberay/rayjob.yaml", cluster_spec)
    head_pod = cluster_spec["headGroupSpec"]["template"]["spec"]
    spec_volume = next(v for v in head_pod["volumes"] if "configMap" in v)
    mount = next(m for m in head_pod["containers"][0]["volumeMounts"] if m["name"] == spec_volume["name"])
    assert mount["mountPath"] == "/specs"
    config_map = _by_kind("kuberay/rayjob.yaml", "ConfigMap")
    assert config_map["metadata"]["name"] == spec_volume["configMap"]["name"]
    spec = spec_module.parse(yaml.safe_load(config_map["data"]["spec.yaml"]), source="rayjob.yaml ConfigMap")
    assert spec.storage_path == "/shared/experiments" and spec.resources.gpu == 1
    preset = spec_module.load(spec_module.preset_path(spec.name))  # the ConfigMap runs that preset's choices
    assert (spec.search, spec.selection, spec.dropblock_mask) == (
        preset.search,
        preset.selection,
        preset.dropblock_mask,
    )


def test_local_scripts_call_the_cluster_command():
    up = (CLUSTERS / "local" / "up.sh").read_text()
    down = (CLUSTERS / "local" / "down.sh").read_text()
    assert re.search(r"-m sweep cluster up --local", up) and re.search(r"-m sweep cluster down", down)
    commands = [line for line in (up + down).splitlines() if not line.lstrip().startswith("#")]
    assert not any("ray stop" in line for line in commands)  # it would stop every Ray on the machine


def _docker_ignored(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parent directories decides
    (`*` stays within one path element, `**` crosses them, `!` re-includes)."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = re.escape(body).replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, "/".join(parts[: i + 1])) for i in range(len(parts))):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_datasets_environments_and_results_out_of_the_image():
    lines = (CLUSTERS.parent / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    kept = ["setup.cfg", "pyproject.toml", "README.md", "sweep/cli/__init__.py", "sweep/presets/default.yaml"]
    kept += ["models/catalog.py", "data/cache.py", "data/readers/__init__.py", "evaluation/stats.py"]
    kept += ["clusters/local/cluster.py", "clusters/kuberay/Dockerfile"]
    left_out = ["data/mini-imagenet/n01/1.jpg", "data/cub/images.pkl", ".venv/bin/python", "experiments/x/optuna.db"]
    left_out += ["runs/a/events.out", "sweep/__pycache__/spec.cpython-311.pyc", "negmargin.egg-info/PKG-INFO"]
    left_out += [".git/HEAD", "tests/conftest.py", "benchmarks/RESULTS.md", "datasets/cub/1.jpg", "models/x.pyc"]
    assert [path for path in kept if _docker_ignored(patterns, path)] == []
    assert [path for path in left_out if not _docker_ignored(patterns, path)] == []
    dockerfile = (CLUSTERS / "kuberay" / "Dockerfile").read_text()
    copied = {line.split()[-2] for line in dockerfile.splitlines() if line.startswith("COPY") and "./" not in line}
    assert copied == {"sweep", "models", "data", "evaluation", "clusters"}
