"""The selections file: one typed definition of the chosen hyperparameters per (dataset, backbone, loss, shot), merged
by every promotion, and its read and merge (the only code that does). A report's selected rows are the same entries.

    format: 1
    selections:
      - {dataset: glyphs, backbone: conv4, loss: neg-cosine, shot: 1,
         params: {margin: -0.12, scale: 12.3, weight_decay: 4.1e-4, drop_rate: 0.0, dropblock_size: 5},
         val_acc: 61.3, val_seeds: 1, test_acc: 58.9, test_ci95: 0.81, test_episodes: 600,
         experiment: /…/experiments/default-20261127-…, trial_id: 3b1c…, updated: 2026-11-27T17:02:11,
         baseline: {label: m = 0, trial_id: 9a0e…},
         vs_baseline: {mean_diff: 2.1, ci95: 0.7, t_pvalue: 1.2e-08, wilcoxon_pvalue: 3.0e-08, seeds: 1,
                       verdict: beats the baseline, text: "+2.10 ± 0.70 points (paired t p = …): beats the baseline"}}

Each shot's entry is the promoted trial with the best validation at that shot (`val_acc_<shot>shot`, else the
objective: sweep.schema.objectives.validation_score), averaged over the configuration's training seeds when promotion
retrained more (promotion.extra_seeds; `val_seeds` says over how many, `val_acc` is that mean); never chosen on test.
A promotion replaces the entry of each key it covers (the newest sweep of a setting is the one the user ran last);
entries of other settings are kept untouched. A file without `format` (written before it was recorded) is format 1.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from data.atomic import file_lock, write_text_atomically
from sweep.schema.objectives import validation_score
from sweep.schema.spec import DEFAULT_STORAGE, SweepSpec
from sweep.storage.experiment import Experiment
from sweep.storage.file_format import VersionedFile, dump, read_yaml
from sweep.storage.promotion_file import PromotedTrial, Promotion

KEY_FIELDS = ("dataset", "backbone", "loss", "shot")
REMEDY = "fix or delete it: `negmargin sweep promote EXPERIMENT` writes an experiment's entries again"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaselineTrial(_Record):
    """Which trial the selected one was compared with: how the baseline was chosen ("m = 0", …) and its trial id."""

    label: str | None = None
    trial_id: str | None = None


class VersusBaseline(_Record):
    """The selected trial minus the baseline at the entry's shot (sweep.storage.promotion_file.BaselineDifference,
    rounded), and the sentence that says it."""

    mean_diff: float
    ci95: float
    t_pvalue: float
    wilcoxon_pvalue: float
    seeds: int
    verdict: str
    text: str


class Selection(_Record):
    """One chosen configuration: its key (dataset, backbone, loss, shot), searched values, the validation accuracy it
    was chosen on (%, the mean over `val_seeds` training seeds; 1 in files written before it was recorded) and its
    test accuracy (%, its promoted trial's mean ± 95 % half-width over `test_episodes`), where it comes from, when it
    was chosen, and its difference to the baseline (`baseline` is the note alone when promotion had none)."""

    dataset: str
    backbone: str
    loss: str
    shot: int
    params: dict[str, Any]
    val_acc: float
    val_seeds: int = 1
    test_acc: float
    test_ci95: float
    test_episodes: int
    experiment: str
    trial_id: str
    updated: str
    baseline: BaselineTrial | str
    vs_baseline: VersusBaseline | None = None

    def key(self) -> tuple[str, str, str, int]:
        """(dataset, backbone, loss, shot): what one entry of the file is the choice for."""
        return (self.dataset, self.backbone, self.loss, self.shot)

    def matches(self, **criteria: Any) -> bool:
        """Whether every given criterion (dataset=…, backbone=…, loss=…, shot=…) holds; None matches all."""
        return all(value is None or getattr(self, field) == value for field, value in criteria.items())


class Selections(VersionedFile):
    """The whole selections file."""

    selections: list[Selection]


def default_path(experiment: Experiment | None = None) -> Path:
    """$NEGMARGIN_SELECTIONS, else `selections.yaml` beside the experiments (in the storage directory)."""
    if os.environ.get("NEGMARGIN_SELECTIONS"):
        return Path(os.environ["NEGMARGIN_SELECTIONS"]).expanduser()
    if experiment is not None:
        return experiment.root.parent / "selections.yaml"
    return Path(DEFAULT_STORAGE) / "selections.yaml"


def read(path: Path) -> list[Selection]:
    """The entries of a selections file (empty when it does not exist yet); ExperimentError (one line) if damaged."""
    if not path.exists():
        return []
    return list(read_yaml(path, Selections, "selections file", REMEDY).selections)


def chosen_on(trial: PromotedTrial, shot: int, objective: str) -> tuple[float, int]:
    """(validation score, over how many training seeds) a promoted trial is chosen on at `shot`: the mean over its
    configuration's seeds when promotion recorded one (promotion.extra_seeds), else its own."""
    seeds = trial.seeds.get(str(shot))
    if seeds is not None and seeds.val_mean is not None:
        return seeds.val_mean, len(seeds.val_runs)
    return validation_score(trial.val, shot, objective), 1


def entries_from_promotion(spec: SweepSpec, promotion: Promotion) -> list[Selection]:
    """One entry per shot: the promoted trial with the best validation for that shot (`chosen_on`; the first by
    rank of equal ones)."""
    entries = []
    for shot in promotion.shots:
        scored = [(chosen_on(trial, shot, spec.objective), trial) for trial in promotion.trials]
        (val_acc, val_seeds), chosen = max(scored, key=lambda pair: pair[0][0])  # the first of equal ones
        test = chosen.test[str(shot)]
        entry = {
            "dataset": spec.dataset.name,
            "backbone": spec.backbone,
            "loss": spec.loss,
            "shot": int(shot),
            "params": chosen.params,
            "val_acc": round(float(val_acc), 3),
            "val_seeds": val_seeds,
            "test_acc": round(test.mean, 3),
            "test_ci95": round(test.ci95, 3),
            "test_episodes": test.episodes,
            "experiment": promotion.experiment,
            "trial_id": chosen.trial_id,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        entries.append(Selection.model_validate({**entry, **versus_baseline(promotion, chosen.trial_id, shot)}))
    return entries


def versus_baseline(promotion: Promotion, trial_id: str, shot: int) -> dict[str, Any]:
    """{"baseline": which trial, "vs_baseline": the paired test difference of `trial_id` to it at `shot`, with its
    one-line description (BaselineDifference.describe)}; the note alone when promotion had no baseline."""

    found = promotion.baseline
    difference = found.difference(trial_id, shot)
    if difference is None:
        return {"baseline": found.note}
    rounded = {
        key: round(float(getattr(difference, key)), 6) for key in ("mean_diff", "ci95", "t_pvalue", "wilcoxon_pvalue")
    }
    summary: dict[str, Any] = {**rounded, "seeds": difference.seeds, "verdict": difference.verdict}
    if trial_id == found.trial_id:
        summary["text"] = f"the selected configuration is the baseline ({found.label})"
    else:
        summary["text"] = difference.describe()
    return {"baseline": {"label": found.label, "trial_id": found.trial_id}, "vs_baseline": summary}


def merge(path: Path, new_entries: list[Selection]) -> list[Selection]:
    """Merge entries into the file (replacing those with the same key); return the whole table.

    Read, merge and write happen under an exclusive lock on `<path>.lock`, and the write is atomic: two promotions
    that share a storage directory both land, whatever their timing."""
    replaced = {entry.key() for entry in new_entries}
    with file_lock(path.with_name(f".{path.name}.lock")):
        table = [entry for entry in read(path) if entry.key() not in replaced] + new_entries
        table.sort(key=Selection.key)
        content = dump(Selections(selections=table), exclude_none=True)
        write_text_atomically(path, yaml.safe_dump(content, sort_keys=False))
    return table


def select(path: Path, **criteria: Any) -> list[Selection]:
    """Entries matching every given criterion (dataset=…, backbone=…, loss=…, shot=…; None matches all)."""
    return [entry for entry in read(path) if entry.matches(**criteria)]
