"""Every cluster test keeps its failure output: the files it names (driver output, node logs, job logs) are gathered
into `<the test's tmp dir>/failure-output.log` when it fails, and that log is printed in pytest's report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

TAIL_LINES = 120
LOG_NAME = "failure-output.log"


class FailureLog:
    """What to keep if the test fails: files (their last TAIL_LINES lines) and text from callables."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, Path] = {}
        self.sources: dict[str, Callable[[], str]] = {}

    def watch(self, label: str, path: str | Path) -> Path:
        """Keep the tail of file `path` under `label`; returns the path."""
        self.files[label] = Path(path)
        return Path(path)

    def watch_cluster(self, cluster) -> None:
        """Keep every node's log of a local cluster (clusters.local.cluster.LocalCluster)."""
        for node in cluster.nodes:
            self.watch(f"node {node.name}", node.log)

    def add_source(self, label: str, source: Callable[[], str]) -> None:
        """Keep what `source()` returns at failure time (e.g. a job's logs fetched from the cluster)."""
        self.sources[label] = source

    def write(self) -> str:
        """Gather everything into self.path; return the text."""
        parts = []
        for label, path in self.files.items():
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError as error:
                lines = [f"(unreadable: {error})"]
            parts.append(f"===== {label}: {path} (last {TAIL_LINES} lines) =====\n" + "\n".join(lines[-TAIL_LINES:]))
        for label, source in self.sources.items():
            try:
                text = source()
            except Exception as error:  # the cluster may be gone: say so, keep the rest
                text = f"(not available: {type(error).__name__}: {error})"
            parts.append(f"===== {label} =====\n" + "\n".join(text.splitlines()[-TAIL_LINES:]))
        text = "\n\n".join(parts)
        self.path.write_text(text)
        return text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    log = getattr(item, "failure_log", None)
    if log is not None and report.failed and report.when in ("setup", "call"):
        text = log.write()
        report.sections.append((f"failure output, kept in {log.path}", text or "(nothing was watched)"))


@pytest.fixture
def failure_log(request, tmp_path) -> FailureLog:
    """The test's FailureLog (written to <tmp_path>/failure-output.log and printed if it fails)."""
    log = FailureLog(tmp_path / LOG_NAME)
    request.node.failure_log = log
    return log
