"""Every cluster definition under clusters/ parses and holds the keys its tool (ray up, KubeRay) requires."""

import copy
import lzma
import re
import shlex
from pathlib import Path

import pytest
import yaml

from sweep.cli import build_parser, sweeps
from sweep.schema import spec as spec_module
from sweep.storage.lease import HEARTBEAT_S, STALE_AFTER_S

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


def test_kuberay_rayjob_repeats_one_start_or_resume_command_on_shared_storage():
    job = _by_kind("kuberay/rayjob.yaml", "RayJob")
    assert job["apiVersion"] == "ray.io/v1"
    assert job["spec"]["submissionMode"] == "SidecarMode"
    assert job["spec"]["backoffLimit"] >= 1  # each retry: a new Ray cluster running the same command
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:3] == ["negmargin", "sweep", "run"]
    args = build_parser().parse_args(words[1:])
    assert args.func is sweeps.run_command and args.spec == "/specs/spec.yaml" and not args.no_promote
    # A fixed experiment directory on the shared volume (Tune's state, checkpoints and the Optuna study in it), and
    # a retry waits for the dead driver's lease to go stale rather than refusing.
    assert Path(args.experiment).parent == Path("/shared/experiments") and args.storage is None
    assert args.lease_wait > STALE_AFTER_S + HEARTBEAT_S
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
    assert Path(args.experiment).name == spec.name
    preset = spec_module.load(spec_module.preset_path(spec.name))  # the ConfigMap runs that preset's choices
    assert (spec.search, spec.selection, spec.dropblock_mask) == (
        preset.search,
        preset.selection,
        preset.dropblock_mask,
    )


CRDS = Path(__file__).with_name("kuberay_crds")  # KubeRay v1.7.0's CRDs, xz-compressed (README there)


def _crd_schema(plural: str) -> dict:
    """The ray.io/v1 openAPIV3Schema of a KubeRay 1.7.0 CRD."""
    with lzma.open(CRDS / f"ray.io_{plural}.yaml.xz", "rt") as stream:
        crd = yaml.safe_load(stream)
    (version,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def schema_problems(value, schema: dict, path: str = "") -> list[str]:
    """Where `value` breaks a CRD's structural schema: a field the API server would prune (unknown), a wrong type,
    a value outside an enum or below a minimum, a required field missing."""
    if "anyOf" in schema:
        if all(schema_problems(value, branch, path) for branch in schema["anyOf"]):
            return [f"{path}: {value!r} matches none of {schema['anyOf']}"]
        return []
    if schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, (int, str)) and not isinstance(value, bool) else [f"{path}: not int or string"]
    kind = schema.get("type")
    expected = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    wrong_bool = isinstance(value, bool) and kind in ("integer", "number")
    if kind in expected and (not isinstance(value, expected[kind]) or wrong_bool):
        return [f"{path}: {value!r} is not of type {kind}"]
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{path}: {value!r} below the minimum {schema['minimum']}")
    if kind == "array":
        for index, item in enumerate(value):
            problems += schema_problems(item, schema.get("items", {}), f"{path}[{index}]")
    if kind == "object":
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                problems += schema_problems(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                problems += schema_problems(item, extra, f"{path}.{key}")
            elif properties is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                problems.append(f"{path}.{key}: unknown field (the API server drops it)")
        problems += [f"{path}.{key}: required" for key in schema.get("required", []) if key not in value]
    return problems


def test_the_schema_check_finds_unknown_fields_wrong_types_and_bad_enums():
    job = copy.deepcopy(_by_kind("kuberay/rayjob.yaml", "RayJob"))
    assert schema_problems(job, _crd_schema("rayjobs")) == []
    job["spec"]["backofLimit"] = 2
    job["spec"]["backoffLimit"] = "3"
    job["spec"]["rayClusterSpec"]["autoscalerOptions"]["upscalingMode"] = "Fast"
    job["spec"]["rayClusterSpec"]["authOptions"]["secretname"] = "x"
    assert sorted(schema_problems(job, _crd_schema("rayjobs"))) == [
        ".spec.backofLimit: unknown field (the API server drops it)",
        ".spec.backoffLimit: '3' is not of type integer",
        ".spec.rayClusterSpec.authOptions.secretname: unknown field (the API server drops it)",
        ".spec.rayClusterSpec.autoscalerOptions.upscalingMode: 'Fast' not one of "
        "['Default', 'Aggressive', 'Conservative']",
    ]


@pytest.mark.parametrize(
    ("name", "kind", "plural"), [("rayjob.yaml", "RayJob", "rayjobs"), ("raycluster.yaml", "RayCluster", "rayclusters")]
)
def test_kuberay_manifests_fit_the_kuberay_1_7_crds_field_by_field(name, kind, plural):
    assert schema_problems(_by_kind(f"kuberay/{name}", kind), _crd_schema(plural)) == []


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
