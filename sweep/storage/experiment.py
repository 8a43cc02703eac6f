"""The experiment directory: one per sweep, holding everything it made, never shared between sweeps.

<storage>/<name>-<YYYYmmdd-HHMMSS>-<suffix>/
    spec.yaml          the validated spec, as run
    episodes/          fixed episode sets: val_<k>shot.pt (made before trials), test_<k>shot.pt (by promotion)
    tune/              Ray Tune results and checkpoints (RunConfig(storage_path=<exp>, name="tune")), one
                       trial_<ray trial id>/ per trial; Tune's JSON/CSV results only, no TensorBoard files
    optuna.db          the Optuna study (SQLite), named after the experiment directory
    promotion.json     test accuracies of the promoted trials, paired comparisons
    gpu_packing.json   with resources.gpu: auto, the GPUs per trial chosen and the probe's figures
    report.md          the last report
    progress.json      the stages done (trials, promotion, report) and every call that worked on it
    (sweep.workflows.sweep_run)
    lease/             which driver runs the experiment now, and its heartbeat (sweep.storage.lease)
    accuracy_vs_margin.png   the accuracy-versus-margin figure
    tensorboard/       the only TensorBoard files: per-trial curves, HParams, the same figure
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from data.atomic import write_text_atomically
from data.paths import episode_file_name
from sweep.errors import ExperimentError, SpecError
from sweep.schema import spec as spec_module
from sweep.schema.spec import SweepSpec
from sweep.storage import promotion_file
from sweep.storage.promotion_file import Promotion

TUNE_NAME = "tune"


def trial_dirname(trial_id: str) -> str:
    """The directory name of a Ray trial inside tune/."""
    return f"trial_{trial_id}"


@dataclass(frozen=True)
class Experiment:
    """Paths of one experiment directory."""

    root: Path

    @property
    def spec_file(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def episodes_dir(self) -> Path:
        return self.root / "episodes"

    @property
    def tune_dir(self) -> Path:
        return self.root / TUNE_NAME

    def trial_dir(self, trial_id: str) -> Path:
        return self.tune_dir / trial_dirname(trial_id)

    @property
    def study_name(self) -> str:
        """The name a sweep gives its Optuna study: the experiment directory's."""
        return self.root.name

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def optuna_url(self) -> str:
        return f"sqlite:///{self.optuna_db}"

    @property
    def promotion_file(self) -> Path:
        return self.root / "promotion.json"

    @property
    def promotion_dir(self) -> Path:
        return self.root / "promotion"

    @property
    def gpu_packing_file(self) -> Path:
        return self.root / "gpu_packing.json"

    @property
    def report_file(self) -> Path:
        return self.root / "report.md"

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / "tensorboard"

    @property
    def margin_figure(self) -> Path:
        return self.root / "accuracy_vs_margin.png"

    def val_episodes(self, shot: int) -> Path:
        return self.episodes_dir / episode_file_name("val", shot)

    def test_episodes(self, shot: int) -> Path:
        return self.episodes_dir / episode_file_name("test", shot)

    def spec(self) -> SweepSpec:
        """The spec this experiment was run with; ExperimentError when it is unreadable or no longer valid (written
        by another version of negmargin, or edited)."""
        try:
            return spec_module.load(self.spec_file)
        except SpecError as error:
            raise ExperimentError(
                f"{self.root}: its spec.yaml cannot be used by this version of negmargin ({error})"
            ) from None

    def promotion(self) -> Promotion | None:
        """The promotion result (promotion.json, sweep.storage.promotion_file), or None before promotion."""
        return promotion_file.read(self.promotion_file)


def check_storage(spec: SweepSpec, storage: str | Path | None = None) -> Path:
    """The storage directory `create` would use, checked without creating anything: an existing directory, or a
    path whose nearest existing parent is a writable directory; ExperimentError naming the path otherwise."""
    storage_root = Path(storage or spec.storage_path).expanduser().resolve()
    existing = storage_root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ExperimentError(f"{storage_root}: cannot hold experiments ({existing} is not a directory)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ExperimentError(f"{storage_root}: cannot hold experiments ({existing} is not writable)")
    return storage_root


def new_root(spec: SweepSpec, storage: str | Path | None = None, name: str | None = None) -> Path:
    """A new experiment directory path under `storage`: <name>-<YYYYmmdd-HHMMSS>-<suffix> (nothing is created)."""
    storage_root = Path(storage or spec.storage_path).expanduser().resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return storage_root / f"{name or spec.name}-{stamp}-{secrets.token_hex(2)}"


def create_at(spec: SweepSpec, root: Path) -> Experiment:
    """Make the experiment directory `root` (missing or empty) for `spec`: its spec.yaml and episodes/ folder."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExperimentError(f"{root}: cannot create the experiment directory ({error.strerror})") from None
    experiment = Experiment(root)
    experiment.episodes_dir.mkdir(exist_ok=True)
    write_text_atomically(experiment.spec_file, spec.to_yaml())
    return experiment


def create(spec: SweepSpec, storage: str | Path | None = None, name: str | None = None) -> Experiment:
    """A fresh experiment directory for `spec` under `storage` (a new name every time, so sweeps never share one)."""
    root = new_root(spec, storage, name)
    if root.exists():
        raise ExperimentError(f"{root}: cannot create the experiment directory (it exists)")
    return create_at(spec, root)


def open_existing(path: str | Path) -> Experiment:
    """An experiment directory made by `create`, its spec and Optuna study readable; ExperimentError if not."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ExperimentError(f"{root}: no such experiment directory")
    experiment = Experiment(root)
    if not experiment.spec_file.is_file():
        raise ExperimentError(f"{root}: not an experiment directory (no spec.yaml)")
    experiment.spec()
    _check_study(experiment)
    return experiment


def _check_study(experiment: Experiment) -> None:
    """ExperimentError unless optuna.db, when there is one, is an SQLite database (read-only check: nothing is
    written, a damaged study stays as it is for the user to recover). A driver killed in the middle of a commit
    leaves its rollback journal beside it (optuna.db-journal), which SQLite must play back before anyone reads the
    study and cannot in read-only mode: then the check opens it for writing, and SQLite rolls the unfinished commit
    back, as Optuna's own next connection would."""
    if not experiment.optuna_db.exists():
        return
    import sqlite3

    journal = experiment.optuna_db.with_name(f"{experiment.optuna_db.name}-journal")
    mode = "rw" if journal.is_file() and journal.stat().st_size > 0 else "ro"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{experiment.optuna_db}?mode={mode}", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        raise ExperimentError(
            f"{experiment.optuna_db}: the Optuna study is not a readable SQLite database ({error})"
        ) from None
    if tables and "studies" not in tables:
        raise ExperimentError(f"{experiment.optuna_db}: not an Optuna study (no 'studies' table)")


def remove_if_unstarted(experiment: Experiment) -> None:
    """Delete an experiment directory that `create` just made and no trial has written to (no tune/ folder): a
    cluster that failed before the first trial leaves nothing behind."""
    if not experiment.tune_dir.exists() and not experiment.optuna_db.exists():
        shutil.rmtree(experiment.root, ignore_errors=True)


def find_all(storage: str | Path) -> list[Experiment]:
    """Every experiment under `storage`, oldest first."""
    storage_root = Path(storage).expanduser()
    if not storage_root.is_dir():
        return []
    found = [Experiment(path.resolve()) for path in storage_root.iterdir() if (path / "spec.yaml").is_file()]
    return sorted(found, key=lambda experiment: experiment.spec_file.stat().st_mtime)


def latest(storage: str | Path) -> Experiment:
    """The most recently created experiment under `storage`."""
    experiments = find_all(storage)
    if not experiments:
        raise ExperimentError(f"{Path(storage).expanduser()}: holds no experiments")
    return experiments[-1]
