"""The selections file: the chosen hyperparameters per (dataset, backbone, loss, shot), merged by every promotion.

    selections:
      - {dataset: glyphs, backbone: conv4, loss: neg-cosine, shot: 1,
         params: {margin: -0.12, scale: 12.3, weight_decay: 4.1e-4, drop_rate: 0.0, dropblock_size: 5},
         val_acc: 61.3, test_acc: 58.9, test_ci95: 0.81, test_episodes: 600,
         experiment: /…/experiments/default-20261127-…, trial_id: 3b1c…, updated: 2026-11-27T17:02:11,
         baseline: {label: m = 0, trial_id: 9a0e…},
         vs_baseline: {mean_diff: 2.1, ci95: 0.7, t_pvalue: 1.2e-08, wilcoxon_pvalue: 3.0e-08, seeds: 1,
                       verdict: beats the baseline, text: "+2.10 ± 0.70 points (paired t p = …): beats the baseline"}}

A promotion replaces the entry of each key it covers (the newest sweep of a setting is the one the user ran last);
entries of other settings are kept untouched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from data.atomic import file_lock, write_text_atomically
from sweep.errors import ExperimentError
from sweep.schema.spec import DEFAULT_STORAGE, SweepSpec
from sweep.storage.experiment import Experiment
from sweep.storage.promotion_file import PromotedTrial, Promotion

KEY_FIELDS = ("dataset", "backbone", "loss", "shot")


def default_path(experiment: Experiment | None = None) -> Path:
    """$NEGMARGIN_SELECTIONS, else `selections.yaml` beside the experiments (in the storage directory)."""
    if os.environ.get("NEGMARGIN_SELECTIONS"):
        return Path(os.environ["NEGMARGIN_SELECTIONS"]).expanduser()
    if experiment is not None:
        return experiment.root.parent / "selections.yaml"
    return Path(DEFAULT_STORAGE) / "selections.yaml"


def read(path: Path) -> list[dict[str, Any]]:
    """The entries of a selections file (empty when it does not exist yet)."""
    if not path.exists():
        return []
    content = yaml.safe_load(path.read_text()) or {}
    entries = content.get("selections") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise ExperimentError(f"{path}: not a selections file (expected a 'selections' list)")
    return entries


def entries_from_promotion(spec: SweepSpec, promotion: Promotion) -> list[dict[str, Any]]:
    """One entry per shot: the promoted trial with the best validation accuracy for that shot."""
    entries = []
    for shot in promotion.shots:
        val_key = f"val_acc_{shot}shot"

        def validation_score(trial: PromotedTrial, val_key: str = val_key) -> float:
            return trial.val.get(val_key, trial.val.get(spec.objective, float("-inf")))

        chosen = max(promotion.trials, key=validation_score)
        test = chosen.test[str(shot)]
        entry = {
            "dataset": spec.dataset.name,
            "backbone": spec.backbone,
            "loss": spec.loss,
            "shot": int(shot),
            "params": chosen.params,
            "val_acc": round(float(validation_score(chosen)), 3),
            "test_acc": round(test.mean, 3),
            "test_ci95": round(test.ci95, 3),
            "test_episodes": test.episodes,
            "experiment": promotion.experiment,
            "trial_id": chosen.trial_id,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        entries.append({**entry, **versus_baseline(promotion, chosen.trial_id, shot)})
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


def merge(path: Path, new_entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge entries into the file (replacing those with the same key); return the whole table.

    Read, merge and write happen under an exclusive lock on `<path>.lock`, and the write is atomic: two promotions
    that share a storage directory both land, whatever their timing."""

    def key(entry: dict[str, Any]) -> tuple:
        return tuple(entry[field] for field in KEY_FIELDS)

    replaced = {key(entry) for entry in new_entries}
    with file_lock(path.with_name(f".{path.name}.lock")):
        table = [entry for entry in read(path) if key(entry) not in replaced] + new_entries
        table.sort(key=key)
        write_text_atomically(path, yaml.safe_dump({"selections": table}, sort_keys=False))
    return table


def select(path: Path, **criteria: Any) -> list[dict[str, Any]]:
    """Entries matching every given criterion (dataset=…, backbone=…, loss=…, shot=…; None matches all)."""
    return [
        entry
        for entry in read(path)
        if all(value is None or entry.get(field) == value for field, value in criteria.items())
    ]
