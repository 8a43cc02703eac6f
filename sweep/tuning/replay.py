"""Search replay: the sweep's own searcher and scheduler, driven by recorded learning curves instead of training.

`sweep run` builds OptunaSearch (`tuner.searcher`) and ASHA (`tuner.scheduler`) from a spec and hands them to Ray
Tune's controller, which wraps the searcher in a ConcurrencyLimiter (`max_concurrent_trials`), asks it for points,
starts up to `max_concurrent` trials and passes each report to the scheduler and the searcher. Here the same two
objects, built by the same functions from the same spec, are driven by an event loop on a virtual clock in the call
order of Tune's controller (ray/tune/execution/tune_controller.py): `on_trial_add` when a trial starts; per report
`scheduler.on_trial_result`, then `searcher.on_trial_result` unless the decision is STOP; when a trial ends (stopped,
or its last report) `scheduler.on_trial_complete` and `searcher.on_trial_complete` with its last report. The Optuna
study is a real SQLite file (or, with `in_memory`, Optuna's in-memory storage: the same trials, so the same
proposals, without SQLite's commits; for many sweep seeds). What is not Tune's: the clock, and no Ray workers.

- A proposed point trains as the nearest recorded configuration: the recorded configurations whose fixed values are
  the spec's, nearest over the searched parameters with each one's range scaled to [0, 1] (log scale for a
  loguniform space). A training seed is drawn per trial from the recorded ones, by a generator seeded with the sweep
  seed.
- A trial's reports arrive at the recorded epoch times of that run; up to `max_concurrent` trials run at once.
- Cost: epochs trained (all trials), and recorded seconds (the sweep's wall clock on the virtual clock).
- Promotion: the trial ranked first by validation (the objective at its best eligible report, as promotion ranks:
  sweep.storage.results), judged by its configuration's recorded test accuracy at that epoch averaged over the
  training seeds (the objective's shots), so a search is judged by what it chose, not by the luck of one seed.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweep.schema.hyperparameters import SEARCHED_PARAMETERS
from sweep.schema.objectives import OBJECTIVES, objective_value, selection_score
from sweep.schema.spec import SweepSpec
from sweep.storage.experiment import Experiment
from sweep.tuning import trainable, tuner

VALIDATION_KEYS = ("train_acc",)  # besides val_acc_<k>shot, what a report carries from the table


@dataclass(frozen=True)
class RecordedRun:
    """One recorded run: each epoch's seconds [epochs], and its validation reports in epoch order."""

    epoch_seconds: tuple[float, ...]
    reports: tuple[dict[str, float], ...]


@dataclass
class Recording:
    """A learning-curve table as configurations: `configs[i]` (every searched value), `runs[i]` {seed: run},
    `test[i]` {epoch: test accuracy %, mean over the objective's shots and the training seeds}."""

    configs: list[dict[str, float]]
    runs: list[dict[int, RecordedRun]]
    test: list[dict[int, float]]

    @classmethod
    def from_table(cls, table: pd.DataFrame, objective: str) -> Recording:
        """The table's runs (sweep.storage.learning_curves), grouped by configuration."""
        test_columns = [f"test_acc_{shot}shot" for shot in OBJECTIVES[objective]]
        recording = cls([], [], [])
        for values, group in table.groupby(list(SEARCHED_PARAMETERS), sort=True):
            runs = {}
            for seed, run in group.groupby("seed"):
                run = run.sort_values("epoch")
                validated = run.dropna(subset=[c for c in run.columns if c.startswith("val_acc_")])
                reports = tuple(
                    {key: float(value) for key, value in row.items() if key == "epoch" or _reported(key)}
                    for row in validated.to_dict("records")
                )
                runs[int(seed)] = RecordedRun(tuple(float(s) for s in run["epoch_seconds"]), reports)
            scored = group.dropna(subset=test_columns)
            per_epoch = scored.groupby("epoch")[test_columns].mean().mean(axis=1)
            recording.configs.append(dict(zip(SEARCHED_PARAMETERS, map(float, values))))
            recording.runs.append(runs)
            recording.test.append({int(epoch): float(acc) for epoch, acc in per_epoch.items()})
        return recording

    def in_space(self, spec: SweepSpec) -> list[int]:
        """The configurations a sweep of `spec` can reach: fixed values equal, searched ones inside their spaces."""
        fixed, searched = spec.fixed(), spec.searched()
        return [
            index
            for index, config in enumerate(self.configs)
            if all(math.isclose(config[name], float(value), abs_tol=1e-9) for name, value in fixed.items())
            and all(space.contains(config[name]) for name, space in searched.items())
        ]

    def nearest(self, spec: SweepSpec, point: dict[str, Any]) -> int:
        """The recorded configuration a proposed point trains as (see the module docstring)."""
        candidates = self.in_space(spec)
        if not candidates:
            raise ValueError(f"no recorded configuration lies in the space of spec {spec.name}")
        searched = spec.searched()

        def scaled(name: str, value: float) -> float:
            space = searched[name]
            low, high = space.bounds()
            if space.kind == "loguniform":
                value, low, high = math.log(value), math.log(low), math.log(high)
            return (value - low) / (high - low) if high > low else 0.0

        def distance(index: int) -> float:
            config = self.configs[index]
            return sum((scaled(name, config[name]) - scaled(name, float(point[name]))) ** 2 for name in searched)

        return min(candidates, key=distance)

    def score(self, index: int, epoch: int) -> float:
        """The seed-averaged test accuracy (%) of configuration `index`'s checkpoint at `epoch`."""
        return self.test[index][epoch]

    def final_epoch(self, index: int) -> int:
        """The last validated epoch of configuration `index`."""
        return max(self.test[index])


def _reported(key: str) -> bool:
    return key.startswith("val_acc_") or key in VALIDATION_KEYS


@dataclass
class _Trial:
    """What Tune's schedulers read of a trial (its id), and the replay's state of it."""

    trial_id: str
    index: int  # start order: breaks ties between reports due at the same second
    config: int
    run: RecordedRun
    next_report: int = 0
    epochs: int = 0
    best: tuple[float, float, int] | None = None  # (selection score, objective, epoch) of its best report so far
    last: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReplayedSweep:
    """What one replayed sweep did and chose.

    `trials` [(configuration, seed, epochs trained, best epoch or 0)], `trace` [(epochs spent, seconds, score of the
    current pick)] after every report, `pick` (configuration, epoch) of the trial ranked first, `score` its
    seed-averaged test accuracy (%), `epochs` and `seconds` spent in all; `driver` the real seconds the searcher and
    the scheduler took ("suggest": proposing points, "result": handling reports, "complete": ending trials)."""

    trials: list[tuple[int, int, int, int]]
    trace: list[tuple[int, float, float]]
    pick: tuple[int, int] | None
    score: float
    epochs: int
    seconds: float
    driver: dict[str, float] = field(default_factory=dict)


class _GridProposer:
    """Every configuration of a list once, in a seeded random order: the full-budget grid as a searcher."""

    def __init__(self, points: list[dict[str, float]], seed: int) -> None:
        self._points = [points[i] for i in np.random.default_rng(seed).permutation(len(points))]

    def suggest(self, trial_id: str) -> dict[str, float] | None:
        return self._points.pop(0) if self._points else None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """A grid learns nothing from results."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        """A grid learns nothing from results."""


def _controller_parts(
    spec: SweepSpec, recording: Recording, workdir: Path, grid: bool, in_memory: bool
) -> tuple[Any, Any, int]:
    """(searcher as Tune wraps it, scheduler, trials to run) for a replay of `spec`."""
    import optuna
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    if grid:
        points = [recording.configs[i] for i in recording.in_space(spec)]
        return _GridProposer(points, spec.seed), FIFOScheduler(), len(points)
    experiment = Experiment(workdir / f"replay-{spec.name}-seed{spec.seed}")
    experiment.root.mkdir(parents=True, exist_ok=True)
    experiment.optuna_db.unlink(missing_ok=True)
    storage = optuna.storages.InMemoryStorage() if in_memory else None
    searcher = ConcurrencyLimiter(tuner.searcher(spec, experiment, storage), max_concurrent=spec.max_concurrent)
    scheduler = tuner.scheduler(spec)
    scheduler.set_search_properties(spec.objective, "max")
    return searcher, scheduler, spec.num_samples


def replay(
    spec: SweepSpec, recording: Recording, workdir: Path, *, grid: bool = False, in_memory: bool = False
) -> ReplayedSweep:
    """One sweep of `spec` (its seed is the sweep seed) replayed on `recording`; `grid`: the full-budget grid of the
    recorded configurations in the spec's space instead of the spec's searcher and scheduler."""
    from ray.tune.schedulers import TrialScheduler

    searcher, scheduler, budget = _controller_parts(spec, recording, workdir, grid, in_memory)
    seeds = np.random.default_rng([spec.seed, 1]).integers  # the training seed drawn per trial
    clock, epochs_spent, started = 0.0, 0, 0
    events: list[tuple[float, int, _Trial]] = []
    trials: list[_Trial] = []
    trace: list[tuple[int, float, float]] = []
    driver = {"suggest": 0.0, "result": 0.0, "complete": 0.0}

    def start_trials() -> None:
        nonlocal started
        while len(events) < spec.max_concurrent and started < budget:
            trial_id = f"replay_{started:05d}"
            began = time.perf_counter()
            point = searcher.suggest(trial_id)
            driver["suggest"] += time.perf_counter() - began
            if not isinstance(point, dict):  # None: at the concurrency limit; "FINISHED": nothing left
                return
            config = recording.nearest(spec, {**spec.fixed(), **point})
            recorded = sorted(recording.runs[config])
            run = recording.runs[config][recorded[int(seeds(len(recorded)))]]
            trial = _Trial(trial_id, started, config, run)
            trials.append(trial)
            scheduler.on_trial_add(None, trial)
            started += 1
            _schedule(events, trial, clock)

    start_trials()
    while events:
        clock, _, trial = heapq.heappop(events)
        report = trial.run.reports[trial.next_report]
        epochs_spent += int(report["epoch"]) - trial.epochs
        trial.epochs = int(report["epoch"])
        trial.next_report += 1
        row = trainable.report_row(report, spec.objective, spec.selection, spec.selection_from_epoch)
        row.update(training_iteration=trial.next_report, trial_id=trial.trial_id)
        trial.last = row
        _keep_best(trial, row, spec)
        began = time.perf_counter()
        decision = scheduler.on_trial_result(None, trial, row)
        if decision != TrialScheduler.STOP:
            searcher.on_trial_result(trial.trial_id, row)
        driver["result"] += time.perf_counter() - began
        if decision == TrialScheduler.STOP or trial.next_report == len(trial.run.reports):
            began = time.perf_counter()
            scheduler.on_trial_complete(None, trial, row)
            searcher.on_trial_complete(trial.trial_id, result=row)
            driver["complete"] += time.perf_counter() - began
        else:
            _schedule(events, trial, clock)
        start_trials()
        pick = _pick(trials)
        trace.append((epochs_spent, clock, recording.score(*pick) if pick else math.nan))
    pick = _pick(trials)
    return ReplayedSweep(
        [(t.config, _seed_of(recording, t), t.epochs, t.best[2] if t.best else 0) for t in trials],
        trace,
        pick,
        recording.score(*pick) if pick else math.nan,
        epochs_spent,
        clock,
        driver,
    )


def _schedule(events: list[tuple[float, int, _Trial]], trial: _Trial, now: float) -> None:
    """Queue the trial's next report at now + the recorded seconds of the epochs up to it."""
    previous = int(trial.run.reports[trial.next_report - 1]["epoch"]) if trial.next_report else 0
    upto = int(trial.run.reports[trial.next_report]["epoch"])
    heapq.heappush(events, (now + sum(trial.run.epoch_seconds[previous:upto]), trial.index, trial))


def _keep_best(trial: _Trial, row: dict[str, Any], spec: SweepSpec) -> None:
    """The trial's best report by the selection metric (the earliest of equal ones), as sweep.storage.results."""
    score = selection_score(row, spec.selection, spec.selection_from_epoch)
    value = objective_value(row, spec.objective)
    if score is not None and value is not None and (trial.best is None or score > trial.best[0]):
        trial.best = (score, value, int(row["epoch"]))


def _pick(trials: list[_Trial]) -> tuple[int, int] | None:
    """(configuration, epoch) of the trial ranked first by the objective at its best report, as promotion ranks."""
    ranked = [trial for trial in trials if trial.best is not None]
    if not ranked:
        return None
    first = max(ranked, key=lambda trial: (trial.best[1] if trial.best else -math.inf, -trial.index))
    return first.config, first.best[2] if first.best else 0


def _seed_of(recording: Recording, trial: _Trial) -> int:
    return next(seed for seed, run in recording.runs[trial.config].items() if run is trial.run)


def _best_report(run: RecordedRun, spec: SweepSpec, upto: int | None = None) -> tuple[float, float, int] | None:
    """(selection score, objective, epoch) of the run's best eligible report up to epoch `upto`, as `_keep_best`."""
    trial = _Trial("", 0, 0, run)
    for report in run.reports:
        if upto is not None and int(report["epoch"]) > upto:
            break
        _keep_best(trial, trainable.report_row(report, spec.objective, spec.selection, spec.selection_from_epoch), spec)
    return trial.best


def reranked(spec: SweepSpec, recording: Recording, swept: ReplayedSweep) -> ReplayedSweep:
    """`swept` with promotion choosing among its top `spec.promotion.top_k` trials (ranked as `_pick` ranks) by the
    objective averaged over every recorded training seed of each one's configuration: its own run and the other
    seeds retrained to the full budget, whose epochs are added to the cost. What ranking on more training seeds
    (`promotion.extra_seeds`) buys against one seed's validation noise; the pick is scored at the chosen trial's best
    epoch, as `replay` scores."""
    ranked = []
    for config, seed, epochs, _ in swept.trials:
        best = _best_report(recording.runs[config][seed], spec, upto=epochs)
        if best is not None:
            ranked.append((best[1], config, best[2]))
    ranked.sort(key=lambda entry: -entry[0])  # stable: equal values keep start order, as `_pick`
    top = ranked[: spec.promotion.top_k]
    if not top:
        return swept

    def seeds_mean(config: int) -> float:
        values = [best[1] for run in recording.runs[config].values() if (best := _best_report(run, spec)) is not None]
        return float(np.mean(values))

    _, config, epoch = max(top, key=lambda entry: seeds_mean(entry[1]))
    extra = sum((len(recording.runs[c]) - 1) * recording.final_epoch(c) for _, c, _ in top)
    score = recording.score(config, epoch)
    epochs = swept.epochs + extra
    return ReplayedSweep(
        swept.trials,
        [*swept.trace, (epochs, swept.seconds, score)],
        (config, epoch),
        score,
        epochs,
        swept.seconds,
        swept.driver,
    )


def replay_many(
    spec: SweepSpec,
    recording: Recording,
    sweep_seeds: list[int],
    workdir: Path,
    *,
    grid: bool = False,
    in_memory: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[ReplayedSweep]:
    """`replay` once per sweep seed (the spec's seed replaced by each), the study in memory by default."""
    found = []
    for seed in sweep_seeds:
        swept = spec.model_copy(update={"seed": seed})
        found.append(replay(swept, recording, workdir, grid=grid, in_memory=in_memory))
        if progress is not None:
            progress(f"{spec.name} seed {seed}: score {found[-1].score:.2f}, {found[-1].epochs} epochs")
    return found
