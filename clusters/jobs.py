"""The Ray Jobs API client: submit a job with the project as its working_dir, and follow, query or stop it.

What a sweep job runs is sweep.workflows.submission's business; here a job is an entrypoint plus the staged project. Its
runtime_env `working_dir` is a staging copy of the project root, with extra files (a sweep's spec) copied in, so
`sweep`, `models`, `data`, `evaluation` import on every node as they are, and the spec travels with the code
wherever it lives on the submitting machine. The copy holds the top-level files and the Python packages (directories
with an __init__.py), without .venv, .git, runs, experiments, caches: a dataset kept under data/ (no __init__.py) stays
home. Every request carries Ray's authentication token (token auth stays on): RAY_AUTH_TOKEN, else the file
RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from clusters import tokens
from clusters.errors import ClusterError

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
EXCLUDES = [".venv", ".git", "runs", "experiments", "__pycache__", "*.egg-info", ".pytest_cache", "build"]
TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "STOPPED")

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobSubmissionClient


def resolve_address(address: str | None) -> str:
    """The Jobs API address: the one given, else $RAY_ADDRESS, else http://127.0.0.1:8265 (http:// if no scheme)."""
    address = address or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS
    return address if "://" in address else f"http://{address}"


def auth_token() -> str | None:
    """Ray's authentication token, in Ray's order: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    configured = os.environ.get(tokens.TOKEN_PATH_ENV)
    path = tokens.token_file()
    if configured and path is not None and not path.is_file():
        raise ClusterError(f"{tokens.TOKEN_PATH_ENV}={configured}: no such token file")
    return tokens.read_token()


def auth_headers() -> dict[str, str]:
    """The Authorization header Ray's dashboard and Jobs API expect ({} when there is no token)."""
    token = auth_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def connect(address: str | None = None) -> JobSubmissionClient:
    """A JobSubmissionClient for the cluster at `address` that sends the token; ClusterError if it is not reachable."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    address = resolve_address(address)
    try:
        return JobSubmissionClient(address, headers=auth_headers())
    except AuthenticationError as error:
        if auth_token() is None:
            raise ClusterError(
                f"{address}: the cluster wants a Ray token and none was found on this machine "
                f"(looked in {tokens.where_looked()}); copy the cluster's token to ~/.ray/auth_token (mode 0600)"
            ) from None
        reason = str(error).strip().splitlines()[0]
        raise ClusterError(f"{address}: the cluster refused this machine's Ray token ({reason})") from None
    except ConnectionError:
        raise ClusterError(
            f"{address}: no Ray dashboard answers there (start one with `negmargin cluster up --local`, "
            "or open a tunnel to a remote cluster: docs/clusters.md, Security)"
        ) from None


def project_root() -> Path:
    """The directory that holds the top-level packages sweep, models, data, evaluation."""
    return Path(__file__).resolve().parent.parent


def stage_working_dir(destination: Path, extra_files: dict[str, Path] | None = None) -> Path:
    """Copy the project root's packages and top-level files to `destination`, and each extra file under its name
    there; return `destination`."""
    shutil.copytree(project_root(), destination, ignore=_not_shipped)
    for name, source in (extra_files or {}).items():
        shutil.copyfile(source, destination / name)
    return destination


def _not_shipped(directory: str, names: list[str]) -> set[str]:
    """copytree's filter: EXCLUDES, and every directory that is not a Python package (datasets under data/, docs/)."""
    skipped = set(shutil.ignore_patterns(*EXCLUDES)(directory, names))
    return skipped | {
        name for name in names if Path(directory, name).is_dir() and not Path(directory, name, "__init__.py").is_file()
    }


def runtime_env(working_dir: Path) -> dict:
    """The runtime_env of a submitted job: the staged project as working_dir, unbuffered output."""
    return {"working_dir": str(working_dir), "excludes": EXCLUDES, "env_vars": {"PYTHONUNBUFFERED": "1"}}


def submit(
    entrypoint: str,
    address: str | None = None,
    *,
    extra_files: dict[str, Path] | None = None,
    submission_id: str | None = None,
) -> str:
    """Submit `entrypoint` with the staged project (and `extra_files`) as working_dir; return the job id."""
    client = connect(address)
    with tempfile.TemporaryDirectory(prefix="negmargin-submit-") as staging:
        working_dir = stage_working_dir(Path(staging) / "project", extra_files)
        try:
            return client.submit_job(
                entrypoint=entrypoint, runtime_env=runtime_env(working_dir), submission_id=submission_id
            )
        except RuntimeError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ClusterError(f"{client.get_address()}: the cluster refused the job ({reason})") from None


def status(job_id: str, address: str | None = None) -> str:
    """The job's status: PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED."""
    return str(_info(connect(address), job_id).status.value)


def message(job_id: str, address: str | None = None) -> str:
    """The job's status message ('' if none)."""
    return _info(connect(address), job_id).message or ""


def logs(job_id: str, address: str | None = None) -> str:
    """Everything the job has printed so far."""
    client = connect(address)
    _info(client, job_id)
    return client.get_job_logs(job_id)


def follow(job_id: str, address: str | None = None, out: TextIO | None = None) -> str:
    """Print the job's output as it comes (to `out`, default stdout) until the job ends; return its final status."""
    out = out or sys.stdout
    client = connect(address)
    _info(client, job_id)

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            out.write(lines)
            out.flush()

    asyncio.run(tail())
    return wait(job_id, address, timeout=60.0)


def wait(job_id: str, address: str | None = None, timeout: float = 600.0, poll: float = 1.0) -> str:
    """Poll until the job reaches a terminal status (or `timeout` seconds pass); return the last status seen."""
    client = connect(address)
    deadline = time.monotonic() + timeout
    while True:
        current = str(_info(client, job_id).status.value)
        if current in TERMINAL_STATUSES or time.monotonic() > deadline:
            return current
        time.sleep(poll)


def stop(job_id: str, address: str | None = None) -> bool:
    """Ask the cluster to stop the job; False if it had already ended."""
    client = connect(address)
    _info(client, job_id)
    return client.stop_job(job_id)


def _info(client: JobSubmissionClient, job_id: str) -> JobDetails:
    """The JobDetails of `job_id`; ClusterError naming it if the cluster has no such job."""
    try:
        return client.get_job_info(job_id)
    except RuntimeError as error:
        if "does not exist" in str(error) or "404" in str(error):
            raise ClusterError(f"{client.get_address()}: no job {job_id!r} on this cluster") from None
        raise
