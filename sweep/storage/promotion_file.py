"""promotion.json: one typed definition of what promotion found, and its write and read (the only code that does).

Promotion (sweep.workflows.promotion) writes it; the selections file, the report, TensorBoard and the margin study
read it through `read`. Accuracies are in percent over the experiment's fixed test episodes; per-shot tables are
keyed by the shot as a string ("1", "5"), as JSON keys are.

    {"format": 1, "experiment": "/…/experiments/default-…", "objective": "val_acc_mean",
     "selection_metric": "val_acc_5shot", "shots": [1, 5], "test_episodes": {"1": "/…/episodes/test_1shot.pt", …},
     "trials": [PromotedTrial, …]            ranked by their own validation (rank 1 first)
     "comparisons": [Comparison, …]          every pair of promoted trials, per shot (paired over the episodes)
     "baseline": BaselineSection             the m = 0 trial (or the spec's first point) and each trial's difference
     "seconds": 12.3}
A file without `format` (written before it was recorded) is format 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from data.atomic import write_text_atomically
from sweep.storage.file_format import VersionedFile, dump, read_json

NO_BASELINE_SCORED = "no baseline (promoted before baselines were scored)"
REMEDY = "run `negmargin sweep promote EXPERIMENT` again to rewrite it"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShotScore(_Record):
    """Test accuracy of one checkpoint at one shot: mean and 95% half-width in percent, and the episode count."""

    mean: float
    ci95: float
    episodes: int


class AcrossSeeds(_Record):
    """A configuration's runs (its promoted trial, then the retrained seeds that trained) at one shot: their test
    means, and their validation at their best checkpoints (sweep.schema.objectives.validation_score), whose mean the
    selections choose on; `val_mean` is None and `val_runs` empty in files written before they were recorded."""

    mean: float
    std: float  # sample standard deviation (0 for one run)
    n: int
    runs: list[float]
    val_mean: float | None = None
    val_runs: list[float] = []


class FailedSeed(_Record):
    """A retrained seed without a score, and why ("diverged: …", "error: …")."""

    seed: int
    reason: str


class PromotedTrial(_Record):
    """One scored trial: its rank by validation ("baseline" for a baseline ranked below the promoted ones), searched
    values, validation metrics at its best checkpoint, that checkpoint's epoch and path, the epochs that could have
    been its best, its test scores per shot, and (with promotion.extra_seeds) its test and validation across seeds."""

    rank: int | Literal["baseline"]
    trial_id: str
    params: dict[str, Any]
    val: dict[str, float]
    epoch: int
    eligible_epochs: list[int] = []
    checkpoint: str
    test: dict[str, ShotScore]
    seeds: dict[str, AcrossSeeds] = {}
    seeds_failed: list[FailedSeed] = []


class PairedStats(_Record):
    """a − b over the same episodes, in points: mean, 95% half-width, paired t and Wilcoxon p-values, episode count
    (evaluation.paired_comparison)."""

    mean_diff: float
    ci95: float
    t_pvalue: float
    wilcoxon_pvalue: float
    n: int


class Comparison(PairedStats):
    """Two promoted trials compared at one shot (a − b)."""

    shot: int
    a: str
    b: str


class BaselineDifference(PairedStats):
    """A trial minus the baseline at one shot, on the episodes averaged over the training seeds both have
    (evaluation.compare_to_baseline): how many seeds were paired and which (`seed_ids`; empty in files written before
    they were recorded), each seed's own mean difference, the Holm-adjusted t p-value when promotion corrected over
    the promoted trials, and the verdict."""

    seeds: int
    seed_ids: list[int] = []
    per_seed: list[float]
    t_pvalue_holm: float | None = None
    verdict: str

    def describe(self) -> str:
        """'+1.23 ± 0.45 points (paired t p = 0.003, Wilcoxon p = 0.004): beats the baseline' (and the seeds)."""
        holm = f", Holm p = {self.t_pvalue_holm:.2g}" if self.t_pvalue_holm is not None else ""
        line = (
            f"{self.mean_diff:+.2f} ± {self.ci95:.2f} points (paired t p = {self.t_pvalue:.2g}{holm}, "
            f"Wilcoxon p = {self.wilcoxon_pvalue:.2g})"
        )
        if self.seeds > 1:
            named = [f"seed {seed} " for seed in self.seed_ids] or [""] * len(self.per_seed)
            listed = ", ".join(f"{name}{diff:+.2f}" for name, diff in zip(named, self.per_seed, strict=True))
            line += f" over {self.seeds} seeds ({listed})"
        return f"{line}: {self.verdict}"


class BaselineSection(_Record):
    """Which trial is the baseline (`label` says how it was chosen) or why there is none (`note`), each promoted
    trial's difference to it per shot {trial id: {shot: …}}, and its own entry when it ranked below the promoted."""

    note: str = NO_BASELINE_SCORED
    label: str | None = None
    trial_id: str | None = None
    differences: dict[str, dict[str, BaselineDifference]] = {}
    entry: PromotedTrial | None = None

    def difference(self, trial_id: str, shot: int | str) -> BaselineDifference | None:
        """The difference of `trial_id` to the baseline at `shot`, or None."""
        return self.differences.get(trial_id, {}).get(str(shot))


class Promotion(VersionedFile):
    """What one promotion of an experiment found (the module docstring shows the layout)."""

    experiment: str
    objective: str
    selection_metric: str
    shots: list[int]
    test_episodes: dict[str, str]
    trials: list[PromotedTrial]
    comparisons: list[Comparison] = []
    baseline: BaselineSection = BaselineSection()
    seconds: float = 0.0

    def scored_trials(self) -> list[PromotedTrial]:
        """The promoted trials by rank, then the baseline's entry when it ranked below them."""
        return self.trials + ([self.baseline.entry] if self.baseline.entry is not None else [])


def write(path: Path, promotion: Promotion) -> Path:
    """Write promotion.json atomically (NaN stays NaN, as json writes it)."""
    return write_text_atomically(path, json.dumps(dump(promotion, exclude_none=True), indent=2) + "\n")


def read(path: Path) -> Promotion | None:
    """The promotion in `path`, or None when there is none yet; ExperimentError (one line) if it is not one."""
    if not path.exists():
        return None
    return read_json(path, Promotion, "promotion file", REMEDY)
