"""The study directory of an experiment: <experiment>/study/ and every file in it (one place for their names).

study/
  request.yaml                      what is studied: margins, seeds, held-out base part, the fixed configuration
  tune/                             the grid as one Ray Tune experiment (checkpoints, results; resumable)
  episodes/base_<k>shot.pt          fixed episodes over the held-out base images (novel: the experiment's test sets)
  scores/<m=…>_seed<s>.pt           per-episode accuracies and discriminability of each run's best checkpoint
  study.json                        everything measured, the comparisons with m = 0, the one-line answer
  table.md | table.csv | table.json one row per margin
  accuracy_vs_margin.png            novel and held-out base accuracy vs m, 1- and 5-shot, 95 % CIs (paper Fig. 1)
  discriminability_vs_margin.png    D_inter, D_intra, φ vs m on held-out base and novel features (paper Fig. 2)
  tensorboard/                      both figures (Images), one run per margin (scalars + HParams)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data.paths import episode_file_name
from sweep.storage.experiment import TUNE_NAME, Experiment

STUDY_DIR = "study"
TABLE_FORMATS = ("md", "csv", "json")
FIGURES = ("accuracy_vs_margin", "discriminability_vs_margin")


@dataclass(frozen=True)
class StudyDir:
    """Paths of one experiment's study."""

    root: Path

    @classmethod
    def of(cls, experiment: Experiment) -> StudyDir:
        return cls(experiment.root / STUDY_DIR)

    @property
    def request_file(self) -> Path:
        return self.root / "request.yaml"

    @property
    def tune_dir(self) -> Path:
        return self.root / TUNE_NAME

    @property
    def study_file(self) -> Path:
        return self.root / "study.json"

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / "tensorboard"

    def base_episodes(self, shot: int) -> Path:
        return self.root / "episodes" / episode_file_name("base", shot)

    def scores_file(self, label: str, seed: int) -> Path:
        return self.root / "scores" / f"{label}_seed{seed}.pt"

    def table_file(self, fmt: str) -> Path:
        return self.root / f"table.{fmt}"

    def figure_file(self, name: str) -> Path:
        return self.root / f"{name}.png"
