"""A sweep as a Ray job: validate its spec here, then submit `sweep run` of it through the Jobs API (clusters.jobs).

The job runs `python -m sweep.cli sweep run submitted_spec.yaml --storage S` on the head node, in a working_dir
that holds the project and the spec (copied in as SPEC_NAME). Its storage must be an absolute path every node
reaches: the job runs in a temporary directory on the head.
"""

from __future__ import annotations

import datetime
import secrets
import shlex
from pathlib import Path

from clusters import jobs
from sweep.errors import SpecError
from sweep.schema import spec as spec_module

SPEC_NAME = "submitted_spec.yaml"


def check_submitted_storage(storage: str) -> None:
    """A submitted sweep's storage must be an absolute filesystem path: it runs in a temporary directory on the head."""
    spec_module.check_storage_path(storage)
    if not Path(storage).is_absolute():
        raise SpecError(
            f"storage_path: {storage!r} is relative, but a submitted sweep runs in a temporary directory on the head "
            "node; give --storage an absolute path every node reaches (a shared filesystem such as NFS)"
        )


def sweep_entrypoint(storage: str, name: str | None = None, promote: bool = True) -> str:
    """The shell command the job runs on the head node."""
    words = ["python", "-m", "sweep.cli", "sweep", "run", SPEC_NAME, "--storage", storage]
    words += ["--name", name] if name else []
    words += [] if promote else ["--no-promote"]
    return shlex.join(words)


def submit_sweep(
    spec_argument: str,
    address: str | None = None,
    *,
    storage: str | None = None,
    name: str | None = None,
    promote: bool = True,
) -> str:
    """Validate a spec here, then submit `sweep run` of it to the cluster; return the job id."""
    spec_path = spec_module.resolve(spec_argument)
    spec = spec_module.load(spec_path)
    storage = storage or spec.storage_path
    check_submitted_storage(storage)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    job_id = f"negmargin-{name or spec.name}-{stamp}-{secrets.token_hex(2)}"
    entrypoint = sweep_entrypoint(storage, name, promote)
    return jobs.submit(entrypoint, address, extra_files={SPEC_NAME: spec_path}, submission_id=job_id)
