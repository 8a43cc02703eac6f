"""progress.json: one typed definition of a sweep's progress (the stages done and every call that worked on the
experiment), and its write and read (the only code that does). sweep.workflows.sweep_run keeps it.

    {"format": 1,
     "done": {"trials": "2026-11-27T17:02:11Z", "promotion": …, "report": …},      stage -> when it finished (UTC)
     "attempts": [{"started": "2026-11-27T16:40:03Z", "host": "node-1", "pid": 4242, "resumed": false}, …]}
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from data.atomic import write_text_atomically
from sweep.storage.file_format import VersionedFile, dump, read_json

PROGRESS_FILE = "progress.json"
REMEDY = (
    "delete it and run the same command again: every stage is then redone from what the experiment holds "
    "(finished trials are kept)"
)


class Attempt(BaseModel):
    """One call that worked on the experiment: when it started (UTC), on which host and process, and whether it
    resumed an experiment an earlier call had begun."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    started: str
    host: str
    pid: int
    resumed: bool


class Progress(VersionedFile):
    """The stages done ({stage: finished at, UTC}) and the attempts, oldest first."""

    done: dict[str, str] = {}
    attempts: list[Attempt] = []

    def with_done(self, stage: str, at: str) -> Progress:
        """This progress with `stage` finished at `at`."""
        return self.model_copy(update={"done": {**self.done, stage: at}})

    def with_attempt(self, attempt: Attempt) -> Progress:
        """This progress with one more attempt."""
        return self.model_copy(update={"attempts": [*self.attempts, attempt]})


def path_of(root: Path) -> Path:
    """<experiment>/progress.json."""
    return root / PROGRESS_FILE


def read(path: Path) -> Progress:
    """The progress in `path` (empty before the first call); ExperimentError (one line) if it is not one."""
    if not path.exists():
        return Progress()
    return read_json(path, Progress, "progress file", REMEDY)


def write(path: Path, progress: Progress) -> Path:
    """Write progress.json atomically."""
    return write_text_atomically(path, json.dumps(dump(progress), indent=2) + "\n")
