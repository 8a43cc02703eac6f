"""The Jobs API wrapper without a cluster: addresses, the auth token, the staged working_dir, storage, the CLI."""

import argparse
import shlex
import socket

import pytest
import yaml

from clusters import jobs
from clusters.errors import ClusterError
from sweep.cli import cluster_commands as cluster_cli
from sweep.cli import job_commands as jobs_cli
from sweep.errors import SpecError
from sweep.workflows import submission


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_address_defaults_to_the_local_dashboard_then_ray_address(clean_env):
    assert jobs.resolve_address(None) == "http://127.0.0.1:8265"
    clean_env.setenv("RAY_ADDRESS", "10.0.0.5:8265")
    assert jobs.resolve_address(None) == "http://10.0.0.5:8265"
    assert jobs.resolve_address("https://ray.example:443") == "https://ray.example:443"


def test_token_is_read_in_rays_order(clean_env, tmp_path):
    assert jobs.auth_token() is None and jobs.auth_headers() == {}
    default = tmp_path / "home" / ".ray" / "auth_token"
    default.parent.mkdir(parents=True)
    default.write_text("from-home\n")
    assert jobs.auth_headers() == {"Authorization": "Bearer from-home"}
    custom = tmp_path / "token"
    custom.write_text("from-path")
    clean_env.setenv("RAY_AUTH_TOKEN_PATH", str(custom))
    assert jobs.auth_token() == "from-path"
    clean_env.setenv("RAY_AUTH_TOKEN", "from-env")
    assert jobs.auth_token() == "from-env"


def test_a_missing_token_path_is_a_clear_error(clean_env, tmp_path):
    clean_env.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "absent"))
    with pytest.raises(ClusterError, match="RAY_AUTH_TOKEN_PATH=.*absent: no such token file"):
        jobs.auth_token()


def test_staged_working_dir_holds_the_packages_and_spec_but_not_the_excluded_paths(tmp_path, monkeypatch):
    project = tmp_path / "project"
    for folder in (
        "sweep/presets",
        "models",
        "data/mini-imagenet/n01",
        "evaluation",
        "sweep/__pycache__",
        ".venv/bin",
        ".git",
        "runs",
        "experiments/old",
        "negmargin.egg-info",
        "docs",
    ):
        (project / folder).mkdir(parents=True)
    for package in ("sweep", "sweep/presets", "models", "data", "evaluation"):
        (project / package / "__init__.py").write_text("")
    (project / "sweep" / "presets" / "default.yaml").write_text("name: default\n")
    (project / "setup.cfg").write_text("[metadata]\n")
    (project / ".venv" / "bin" / "python").write_text("")
    (project / "experiments" / "old" / "big.pt").write_text("x")
    (project / "data" / "mini-imagenet" / "n01" / "1.jpg").write_text("a dataset image")
    monkeypatch.setattr(jobs, "project_root", lambda: project)
    spec = tmp_path / "elsewhere" / "my spec.yaml"
    spec.parent.mkdir()
    spec.write_text("name: x\n")
    staged = jobs.stage_working_dir(tmp_path / "staged", {submission.SPEC_NAME: spec})
    names = {path.relative_to(staged).as_posix() for path in staged.rglob("*")}
    assert {
        "sweep/__init__.py",
        "models/__init__.py",
        "data/__init__.py",
        "evaluation/__init__.py",
        "sweep/presets/default.yaml",
        "setup.cfg",
    } <= names
    assert (staged / submission.SPEC_NAME).read_text() == "name: x\n"
    assert (
        not {
            ".venv",
            ".git",
            "runs",
            "experiments",
            "sweep/__pycache__",
            "negmargin.egg-info",
            "docs",
            "data/mini-imagenet",
        }
        & names
    )
    env = jobs.runtime_env(staged)
    assert env["working_dir"] == str(staged) and {".venv", ".git", "runs", "experiments"} <= set(env["excludes"])


def test_the_real_project_root_holds_the_four_packages():
    root = jobs.project_root()
    assert all((root / package / "__init__.py").is_file() for package in ("sweep", "models", "data", "evaluation"))


def test_entrypoint_runs_sweep_run_on_the_shipped_spec():
    words = shlex.split(submission.sweep_entrypoint("/shared/my experiments", name="n1", promote=False))
    assert words == [
        "python",
        "-m",
        "sweep.cli",
        "sweep",
        "run",
        "submitted_spec.yaml",
        "--storage",
        "/shared/my experiments",
        "--name",
        "n1",
        "--no-promote",
    ]


def test_absolute_storage_can_be_submitted():
    submission.check_submitted_storage("/shared/experiments")


@pytest.mark.parametrize("storage", ["s3://bucket/experiments", "gs://b/x"])
def test_uri_storage_is_refused_before_submitting(storage):
    with pytest.raises(SpecError, match=r"^storage_path: .* URI, but an experiment is a directory"):
        submission.check_submitted_storage(storage)


def test_relative_storage_is_refused_before_contacting_any_cluster(tmp_path):
    spec = yaml.safe_load((jobs.project_root() / "sweep" / "presets" / "default.yaml").read_text())
    assert spec["storage_path"] == "experiments"
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match=r"^storage_path: 'experiments' is relative"):
        submission.submit_sweep(str(spec_file), address="http://127.0.0.1:9")


def test_no_dashboard_at_the_address_is_one_clear_line(clean_env):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ClusterError) as error:
        jobs.connect(f"127.0.0.1:{port}")
    assert str(error.value).startswith(f"http://127.0.0.1:{port}: no Ray dashboard answers there")
    assert "\n" not in str(error.value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="negmargin")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep_parser = commands.add_parser("sweep")
    cluster_cli.register(commands)
    jobs_cli.register(sweep_parser.add_subparsers(dest="sweep_command", required=True))
    return parser


def test_cli_parses_cluster_and_job_commands():
    parser = _parser()
    up = parser.parse_args(["cluster", "up", "--local", "--workers", "3", "--worker-cpus", "2"])
    assert (up.workers, up.worker_cpus, up.head_cpus, up.port, up.dashboard_port) == (3, 2.0, 1.0, 6379, 8265)
    assert up.func is cluster_cli.cluster_up_command
    submit = parser.parse_args(
        ["sweep", "submit", "spec.yaml", "--address", "http://h:8265", "--no-wait", "--storage", "/shared/e"]
    )
    assert (submit.spec, submit.address, submit.no_wait, submit.storage, submit.no_promote) == (
        "spec.yaml",
        "http://h:8265",
        True,
        "/shared/e",
        False,
    )
    for command in ("status", "logs", "stop"):
        args = parser.parse_args(["sweep", command, "job-1"])
        assert args.job == "job-1" and args.address is None
    assert parser.parse_args(["sweep", "logs", "job-1", "-f"]).follow is True
    assert parser.parse_args(["cluster", "down"]).func is cluster_cli.cluster_down_command


@pytest.mark.parametrize(
    "argv", [["cluster", "up"], ["cluster", "up", "--local", "--workers", "-1"], ["sweep", "submit"]]
)
def test_cli_rejects_incomplete_commands(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(argv)
    assert exit_info.value.code == 2
