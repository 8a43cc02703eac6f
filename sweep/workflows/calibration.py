"""Calibration: does a negative margin beat m = 0 on the novel classes with this spec's settings, and by how much?

Margins × training seeds of one configuration (the spec's fixed values, or given ones), all else fixed, each run
to its full budget by the product's own trial (`sweep.trial.run`), its final checkpoint and its best-by-validation
checkpoint (the spec's selection metric among the epochs from selection_from_epoch on, the earliest of equal ones,
as a sweep selects) both scored as promotion scores one (`sweep.workflows.promotion.score_checkpoint`) on the same
fixed novel
test episodes (the spec's promotion settings, test stream seed + 10 000). Every m ≠ 0 is compared with m = 0 of the
same seed, episode by episode (paired t and Wilcoxon), per seed and pooled over seeds; the per-epoch validation
curves say when the ranking of the margins settles (where an ASHA rung may sit).

No Ray: runs are processes (`workers` at once, each with its share of the CPU threads, or sharing one GPU), so the
same command runs on a laptop, a GPU machine without Ray, and in CI's tests. Each finished run is saved in
<out>/runs/<run>.pt and skipped when the command is run again, so a calibration interrupted half-way continues.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
import yaml

import data
from evaluation.checkpoint import Checkpoint
from evaluation.device import resolve_device
from sweep.errors import SpecError
from sweep.schema import spec as spec_module
from sweep.schema.hyperparameters import SEARCHED_PARAMETERS
from sweep.schema.objectives import selection_score
from sweep.schema.spec import SweepSpec
from sweep.schema.trial_config import merge_overrides
from sweep.scoring import checkpoint_scores
from sweep.storage import learning_curves
from sweep.storage.experiment import Experiment
from sweep.trial import TrialConfig, run
from sweep.trial.runner import validation_episodes
from sweep.tuning.space import trial_config

CHECKPOINT_KINDS = ("final", "best")  # the last epoch's checkpoint; the best by the selection metric


def spec_and_params(
    spec_argument: str | None, overrides: list[str], device: str | None = None
) -> tuple[SweepSpec, dict[str, float]]:
    """The spec to calibrate (a file or preset, "KEY=VALUE" overrides of its keys applied, paths made absolute) and
    the values of its searched parameters but the margin: the spec's fixed ones, or overrides of the same name."""
    pairs = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, e.g. epochs=40")
        pairs[key.strip()] = yaml.safe_load(value)
    params = {key: value for key, value in pairs.items() if key in SEARCHED_PARAMETERS}
    settings = {key: value for key, value in pairs.items() if key not in SEARCHED_PARAMETERS}
    if device is not None:
        settings["device"] = device
    path = spec_module.resolve(spec_argument)
    spec = spec_module.load(path)
    if settings:
        document = yaml.safe_load(spec.to_yaml())
        document.pop("scheduler", None)  # no early stopping here: every run goes to its full budget
        spec = spec_module.parse(merge_overrides(document, settings), f"{path} with --set")
    values = {**spec.fixed(), **params}
    values.pop("margin", None)
    missing = [name for name in SEARCHED_PARAMETERS if name != "margin" and name not in values]
    if missing:
        raise SpecError(f"{path}: {', '.join(missing)} searched, not fixed: give a value, e.g. --set {missing[0]}=…")
    return spec_module.with_absolute_paths(spec), values


@dataclass(frozen=True)
class CalibrationPlan:
    """What to run: `params` (every searched parameter but the margin) at each margin × seed, into `out`."""

    spec: SweepSpec
    params: dict[str, float]
    margins: list[float]
    seeds: list[int]
    out: Path
    workers: int = 1
    threads_per_worker: int = 1

    @property
    def episodes(self) -> Experiment:
        """The calibration's folder in the role of an experiment: its validation and test episodes are saved there."""
        return Experiment(self.out)

    def runs(self) -> list[tuple[float, int]]:
        """Every (margin, seed), in margin then seed order."""
        return [(margin, seed) for margin in self.margins for seed in self.seeds]

    def run_file(self, margin: float, seed: int) -> Path:
        """<out>/runs/m<margin>_s<seed>.pt."""
        return self.out / "runs" / f"m{margin:+.3f}_s{seed}.pt"

    def trial(self, margin: float, seed: int) -> TrialConfig:
        """The trial config of one run: the spec's settings, the fixed params, this margin and seed."""
        config = trial_config(self.spec, {**self.params, "margin": margin}, self.episodes.episodes_dir, seed=seed)
        return TrialConfig.from_dict(config)


@dataclass
class RunResult:
    """One (margin, seed) run: validation reports in epoch order, the best report's epoch, per-episode novel
    accuracies [E] in [0, 1] per checkpoint kind and shot, wall seconds.

    `novel_by_epoch` holds the same per-episode accuracies for every validated epoch's checkpoint (promotion picks
    among those from selection_from_epoch on; the earlier ones let a search replay try another selection_from_epoch),
    `epoch_seconds` each epoch's wall time (training, plus validation on a validated epoch), `params` every searched
    value of the run: the learning-curve table's columns (sweep.storage.learning_curves)."""

    margin: float
    seed: int
    curve: list[dict[str, float]]
    best_epoch: int
    novel: dict[str, dict[int, torch.Tensor]]
    seconds: float
    novel_by_epoch: dict[int, dict[int, torch.Tensor]] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    params: dict[str, float] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, float]:
        """The last validation report (the final epoch's metrics)."""
        return self.curve[-1]


@dataclass
class _KeepingReporter:
    """A sweep.trial.Reporter that keeps every validation report and each epoch's wall time, and writes every validated
    epoch's checkpoint as epoch<N>.pt."""

    folder: Path
    selection: str
    selection_from_epoch: int
    curve: list[dict[str, float]] = field(default_factory=list)
    best_value: float = -math.inf
    best_epoch: int = 0
    epoch_seconds: list[float] = field(default_factory=list)
    saved_epochs: list[int] = field(default_factory=list)
    _since: float = field(default_factory=time.perf_counter)

    def _lap(self) -> float:
        now = time.perf_counter()
        lap, self._since = now - self._since, now
        return lap

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        """Record the epoch's training time (its validation, when it has one, is added at the report)."""
        self.epoch_seconds.append(self._lap())

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint) -> None:
        """Keep the report and save its checkpoint; track the best by the selection metric."""
        self.curve.append({key: float(value) for key, value in metrics.items()})
        epoch = int(metrics["epoch"])
        shots = " / ".join(f"{value:.2f}" for key, value in metrics.items() if key.startswith("val_acc_"))
        with open(self.folder.parent / f"{self.folder.name}.log", "a") as log:  # progress of a run, while it runs
            log.write(f"epoch {epoch}: train acc {metrics['train_acc']:.1f}, val {shots}\n")
        checkpoint.save(self.folder / f"epoch{epoch}.pt")
        self.saved_epochs.append(epoch)
        value = selection_score(metrics, self.selection, self.selection_from_epoch)
        if value is not None and value > self.best_value:  # strict: the earliest of equal ones, as a sweep selects
            self.best_value, self.best_epoch = value, epoch
        self.epoch_seconds[-1] += self._lap()  # the validation belongs to the epoch it scored


def run_one(plan: CalibrationPlan, margin: float, seed: int) -> Path:
    """Train one (margin, seed) to its full budget, score its final and best checkpoints on the novel test episodes,
    save the RunResult (as plain types) in plan.run_file; returns that file. Runs in a worker process."""
    torch.set_num_threads(plan.threads_per_worker)
    started = time.perf_counter()
    config = plan.trial(margin, seed)
    folder = plan.run_file(margin, seed).with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    reporter = _KeepingReporter(folder, plan.spec.selection, plan.spec.selection_from_epoch)
    run(config, reporter)
    device = resolve_device(config.device)
    novel = data.load_split(plan.spec.dataset, "novel", allow_test=True, progress=False)
    episode_sets = {shot: data.EpisodeSet.load(plan.episodes.test_episodes(shot)) for shot in plan.spec.promotion.shots}
    by_epoch = {}
    for epoch in reporter.saved_epochs:
        path = folder / f"epoch{epoch}.pt"
        by_epoch[epoch] = checkpoint_scores.score_checkpoint(path, novel, episode_sets, plan.spec, device)
        path.unlink()  # the scores are what is kept
    folder.rmdir()
    final_epoch = int(reporter.curve[-1]["epoch"])
    novel_scores = {"final": by_epoch[final_epoch], "best": by_epoch[reporter.best_epoch]}
    result = RunResult(
        margin,
        seed,
        reporter.curve,
        reporter.best_epoch,
        novel_scores,
        time.perf_counter() - started,
        novel_by_epoch=by_epoch,
        epoch_seconds=reporter.epoch_seconds,
        params={**plan.params, "margin": margin},
    )
    torch.save(vars(result), plan.run_file(margin, seed))
    return plan.run_file(margin, seed)


def load_result(path: Path) -> RunResult:
    """A saved RunResult (weights_only: plain types and tensors)."""
    return RunResult(**torch.load(path, weights_only=True))


def prepare(plan: CalibrationPlan) -> None:
    """Before any run: decode the caches, save the fixed validation and novel test episode sets the runs share."""
    config = plan.trial(plan.margins[0], plan.seeds[0])
    for split in ("base", "val", "novel"):
        data.prepare_split(plan.spec.dataset, split, progress=False)
    val = data.load_split(plan.spec.dataset, "val", progress=False)
    for shot in config.validation.shots:
        validation_episodes(config, val, shot)
    novel = data.load_split(plan.spec.dataset, "novel", allow_test=True, progress=False)
    for shot in plan.spec.promotion.shots:
        checkpoint_scores.test_episode_set(plan.spec, plan.episodes, novel, shot)


def calibrate(plan: CalibrationPlan, progress: Callable[[str], None] = print) -> list[RunResult]:
    """Every run of the plan (those already saved are loaded, the others run `plan.workers` at a time)."""
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "spec.yaml").write_text(plan.spec.to_yaml())
    prepare(plan)
    todo = [(m, s) for m, s in plan.runs() if not plan.run_file(m, s).is_file()]
    progress(f"{len(plan.runs()) - len(todo)} of {len(plan.runs())} runs already done; {len(todo)} to run")
    if todo:
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=plan.workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_one, plan, m, s): (m, s) for m, s in todo}
            for done, future in enumerate(as_completed(futures), start=1):
                result = load_result(future.result())
                progress(
                    f"[{done}/{len(todo)}] m = {result.margin:g}, seed {result.seed}: "
                    f"final novel {_percent(result.novel['final'])}, {result.seconds:.0f} s "
                    f"({time.perf_counter() - started:.0f} s elapsed)"
                )
    return [load_result(plan.run_file(m, s)) for m, s in plan.runs()]


def curve_rows(result: RunResult) -> list[dict[str, Any]]:
    """The run's rows of the learning-curve table (sweep.storage.learning_curves): each epoch's time and validation,
    the mean novel test accuracy (%) of every checkpoint promotion could pick."""
    test = {
        epoch: {shot: 100 * float(acc.double().mean()) for shot, acc in scores.items()}
        for epoch, scores in result.novel_by_epoch.items()
    }
    return learning_curves.rows(result.params, result.seed, result.epoch_seconds, result.curve, test)


def _percent(scores: dict[int, torch.Tensor]) -> str:
    return " / ".join(f"{100 * float(acc.double().mean()):.2f}" for acc in scores.values())


def default_workers(device: str) -> tuple[int, int]:
    """(processes, torch threads each): one per CPU core on the CPU; four sharing one GPU."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if resolve_device(device).type == "cuda":
        return 4, max(1, cores // 4)
    return cores, 1
