"""study.json: one typed definition of what a margin study measured, and its write and read (the only code that
does). sweep.study.pipeline writes it; `read` gives it back to the CLI (`negmargin sweep study EXP --show`) and the
Python API. Accuracies and differences are in percent points; per-shot tables are keyed by the shot as a string.

    {"format": 1, "experiment": "/…/experiments/default-…", "setting": "glyphs / conv4 / neg-cosine",
     "objective": "val_acc_mean", "shots": [1, 5], "request": StudyRequest,
     "episodes": {domain: {shot: EpisodeSetInfo}},      domain: "novel" (the test split) | "base" (held-out base)
     "held_out_images": 180, "runs": [RunRow, …], "margins": [MarginSummary, …],
     "comparisons": [MarginComparison, …],               every margin ≠ 0 against m = 0, per domain and shot
     "answer": "glyphs / conv4 / neg-cosine: 1-shot: …", "seconds": 81.2}
A file without `format` (written before it was recorded) is format 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from data.atomic import write_text_atomically
from sweep.errors import ExperimentError
from sweep.storage.file_format import VersionedFile, dump, read_json
from sweep.study.request import StudyRequest


def remedy(path: Path) -> str:
    """What to do about a damaged study.json: run the study again (what it trained is kept)."""
    return f"run `negmargin sweep study {path.parent.parent}` again to rewrite it (what it trained is kept)"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EpisodeSetInfo(_Record):
    """One fixed episode set a study scored on: its file, episode count, way and queries per class."""

    path: str
    episodes: int
    way: int
    queries: int


class RunRow(_Record):
    """One margin × seed run: its best checkpoint (None when it failed, and why), that checkpoint's epoch and train
    accuracy, and its validation metrics (`val_acc…` keys, kept as extra fields: their names follow the shots)."""

    model_config = ConfigDict(extra="allow")

    margin: float
    seed: int
    checkpoint: str | None = None
    failure: str | None = None
    epoch: int | None = None
    train_acc: float | None = None


class Accuracy(_Record):
    """Accuracy at one domain and shot: mean ± 95 % half-width over episodes of the seed-averaged accuracy, and each
    seed's mean."""

    mean: float
    ci95: float
    per_seed: list[float]


class Spread(_Record):
    """A discriminability measure over seeds: mean, sample standard deviation (0 for one seed), each seed's value."""

    mean: float
    std: float
    runs: list[float]


class MarginSummary(_Record):
    """One margin: the loss it trains, the seeds that scored, accuracy {domain: {shot: …}} and discriminability
    {domain: {"inter" | "intra" | "phi": …}} (both empty when no seed scored)."""

    margin: float
    loss: str
    seeds: list[int]
    accuracy: dict[str, dict[str, Accuracy]] = {}
    discriminability: dict[str, dict[str, Spread]] = {}


class MarginComparison(_Record):
    """One margin minus m = 0 in one domain at one shot, over the seeds both trained (evaluation.compare_to_baseline):
    the paired statistics, each seed's mean difference and their spread, the Holm-adjusted t p-value over the
    margins of that (domain, shot), and whether the margin beats m = 0."""

    domain: str
    shot: int
    margin: float
    seeds: list[int]
    mean_diff: float
    ci95: float
    t_pvalue: float
    wilcoxon_pvalue: float
    n: int
    per_seed_diff: list[float]
    seed_std: float | None = None
    seed_t_pvalue: float | None = None
    t_pvalue_holm: float | None = None
    significant: bool


class Study(VersionedFile):
    """What one margin study measured (the module docstring shows the layout)."""

    experiment: str
    setting: str
    objective: str
    shots: list[int]
    request: StudyRequest
    episodes: dict[str, dict[str, EpisodeSetInfo]]
    held_out_images: int
    runs: list[RunRow]
    margins: list[MarginSummary]
    comparisons: list[MarginComparison]
    answer: str
    seconds: float = 0.0

    def scored_margins(self) -> list[MarginSummary]:
        """The margins with at least one scored seed, in the request's order."""
        return [entry for entry in self.margins if entry.seeds]


def write(path: Path, study: Study) -> Path:
    """Write study.json atomically (NaN stays NaN, as json writes it)."""
    return write_text_atomically(path, json.dumps(dump(study), indent=2) + "\n")


def read(path: Path) -> Study:
    """The study in `path`; ExperimentError (one line naming it and what to do) if missing, damaged or newer."""
    if not path.is_file():
        raise ExperimentError(f"{path}: no study here yet; run `negmargin sweep study {path.parent.parent}` first")
    return read_json(path, Study, "study file", remedy(path))
