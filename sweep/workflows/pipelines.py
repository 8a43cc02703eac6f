"""A sweep's pipelines as library calls: run, resume, promote and report an experiment.

The `negmargin sweep` commands, the benchmarks and the tests call these; the CLI only parses its options and prints
what they return. Each raises every user error (spec, storage, name, experiment directory, cluster address, dataset)
as one `data.errors.UserError` line before any cluster work, and holds the experiment's lease (sweep.storage.lease)
while it writes there.

    outcome = run_sweep("default", experiment="experiments/demo")   # trials, promotion, report
    print(render(outcome.report, "table"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.errors import SpecError
from sweep.schema import spec as spec_module
from sweep.schema.spec import SweepSpec
from sweep.storage import experiment as experiments
from sweep.storage.experiment import Experiment
from sweep.storage.lease import ExperimentLease

if TYPE_CHECKING:
    from sweep.report import Report

Log = Callable[[str], None]


@dataclass(frozen=True)
class SweepOutcome:
    """What a pipeline leaves: the experiment directory and its report (sweep.report.Report: the selected
    hyperparameters, the trial table, the promoted configurations with their test accuracy)."""

    experiment: Experiment
    report: Report


def run_sweep(
    spec: SweepSpec | str | Path | None = None,
    *,
    experiment: str | Path | None = None,
    storage: str | Path | None = None,
    name: str | None = None,
    address: str | None = None,
    promote: bool = True,
    selections: Path | None = None,
    lease_wait: float = 0.0,
    log: Log = print,
    before_trials: Callable[[Experiment], None] | None = None,
) -> SweepOutcome:
    """Run a sweep: its trials on the Ray cluster at `address` (default $RAY_ADDRESS, else a local Ray on 127.0.0.1),
    then promotion and the report.

    `spec`: a SweepSpec, a spec file or a preset name (None: the embedded default). With `experiment` the first call
    creates that directory and every later call resumes it (the same spec required; a finished one returns its report
    untouched); otherwise a new `<name>-<stamp>` directory under `storage` (default: the spec's storage_path), removed
    again when the cluster fails before the first trial. `before_trials` runs once the experiment exists."""
    from sweep import report as reports
    from sweep.workflows import sweep_run

    if experiment is not None and storage is not None:
        raise SpecError("give an experiment directory or a storage for a new one, not both")
    if storage is not None:
        spec_module.check_storage_path(str(storage), key="storage")
    if name is not None:
        spec_module.check_name(name, key="name")
    spec_argument = spec
    spec = spec_module.with_absolute_paths(spec) if isinstance(spec, SweepSpec) else spec_module.read(spec)
    if experiment is not None:
        spec_module.check_storage_path(str(experiment), key="experiment")
        root = Path(experiment).expanduser().resolve()
        existing = sweep_run.check_can_hold(root, spec)
        if existing is not None and sweep_run.finished(existing, promote, log):
            return SweepOutcome(existing, reports.build(existing))
        experiments.check_storage(spec, root.parent)
        if lease_wait <= 0:
            ExperimentLease(root).refuse_if_held()
    else:
        experiments.check_storage(spec, storage)
        root = experiments.new_root(spec, storage=storage, name=name)
    from clusters.errors import ClusterError
    from clusters.session import check_session

    check_session(address)
    from sweep.workflows import preflight  # torch loads once the spec, the storage and the address are known good

    preflight.check_dataset(spec, promote=promote)
    command = retry_command(spec_argument, root, address=address, promote=promote, selections=selections)
    try:
        found, report = sweep_run.start_or_resume(
            spec,
            root,
            address=address,
            promote=promote,
            selections=selections,
            lease_wait=lease_wait,
            log=log,
            before_trials=before_trials,
            command=command,
        )
    except (ClusterError, KeyboardInterrupt):
        if experiment is None:
            experiments.remove_if_unstarted(Experiment(root))
        raise
    return SweepOutcome(found, report)


def retry_command(
    spec: SweepSpec | str | Path | None,
    root: Path,
    *,
    address: str | None = None,
    promote: bool = True,
    selections: Path | None = None,
) -> str:
    """The `negmargin sweep run … --experiment ROOT` command that continues this sweep (what a storage fault's line
    tells the user to run once it is fixed): the spec as given (a file or preset name; ROOT/spec.yaml for a SweepSpec
    object), and the same address, promotion and selections."""
    import shlex

    spec_text = str(spec) if isinstance(spec, (str, Path)) else "default" if spec is None else str(root / "spec.yaml")
    words = ["negmargin", "sweep", "run", spec_text, "--experiment", str(root)]
    if address:
        words += ["--address", address]
    if not promote:
        words.append("--no-promote")
    if selections is not None:
        words += ["--selections", str(selections)]
    return " ".join(shlex.quote(word) for word in words)


def resume_sweep(
    experiment: str | Path,
    *,
    address: str | None = None,
    promote: bool = True,
    selections: Path | None = None,
    lease_wait: float = 0.0,
) -> SweepOutcome:
    """Finish the trials of an interrupted sweep (finished ones kept, unfinished ones continued from their
    checkpoints, the Optuna study continued), then promote and write the report."""
    from sweep import report as reports
    from sweep.tuning import tuner
    from sweep.workflows import promotion

    found = experiments.open_existing(experiment)
    with ExperimentLease(found.root).acquire(wait_s=lease_wait):
        tuner.resume(found, address=address)
        if promote:
            promotion.run(found, selections_path=selections, address=address)
        return SweepOutcome(found, reports.write_all(found))


def promote(
    experiment: str | Path,
    *,
    top_k: int | None = None,
    selections: Path | None = None,
    address: str | None = None,
    lease_wait: float = 0.0,
    holm: bool = False,
) -> SweepOutcome:
    """Score the top-k trials (default: the spec's promotion.top_k) and the baseline on the fixed test episodes,
    merge the selections file, write the report; with `holm`, the differences to the baseline are Holm-corrected
    over the promoted trials."""
    from sweep import report as reports
    from sweep.workflows import promotion

    found = experiments.open_existing(experiment)
    with ExperimentLease(found.root).acquire(wait_s=lease_wait):
        promotion.run(found, top_k=top_k, selections_path=selections, address=address, holm=holm)
        return SweepOutcome(found, reports.write_all(found))


def read_report(experiment: str | Path | None = None, *, storage: str | Path | None = None) -> SweepOutcome:
    """The report of an experiment directory, or of the newest experiment under `storage` (default: experiments/),
    read from what it holds (no cluster, nothing written)."""
    from sweep import report as reports

    if experiment is not None and storage is not None:
        raise SpecError("give an experiment directory or a storage to take the newest experiment of, not both")
    found = (
        experiments.open_existing(experiment)
        if experiment is not None
        else experiments.latest(storage or spec_module.DEFAULT_STORAGE)
    )
    return SweepOutcome(found, reports.build(found))


def read_spec(spec: str | Path | None = None, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """A spec file or preset name (None: the embedded default) with `overrides` of its keys ({"epochs": 8,
    "validation.episodes": 100}), validated; SpecError naming the key otherwise."""
    return spec_module.read(spec, overrides)


def open_experiment(path: str | Path) -> Experiment:
    """An existing experiment directory (ExperimentError, one line, when it is not one)."""
    return experiments.open_existing(path)


def render_report(report: Report, fmt: str = "table") -> str:
    """A report as text: "table" (the terminal's), "md", "csv" or "json"."""
    from sweep import report as reports

    return reports.render(report, fmt)
