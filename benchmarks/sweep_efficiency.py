"""Sweep efficiency, measured: does TPE + ASHA find what a full-budget grid finds, for a fraction of its epochs?

On a sweep spec (default: the embedded demo preset), with the product's own parts only:
  (a) the margin grid at full budget: the study's default grid (sweep.study.margins.default_margins) of the spec's
      margin range, every other searched value at the spec's first point, trained by
      sweep.tuning.grid_runner.grid_tuner;
  (b) a grid over margin × β (--scales), the same way; its row at the spec's own β is (a), trained once;
  (c) the spec's own TPE + ASHA sweep (sweep.run_sweep, no promotion) with as many trials as (a), once per sweep seed
      (--sweep-seeds) and ASHA schedule (--schedules: the spec's own rungs, and early rungs at 2, 6, 18 epochs, η = 3).
For each: the best validation objective found (the spec's objective at a trial's best epoch) and the total training
epochs spent. For (c) also: how many trials ASHA stopped whose margin is nearest to the margin (a) ranks best: an
early rung that compares margins before their ordering settles stops exactly those. The product's claim: (c)
reaches (a)'s best within 0.5 points with at most a third of its epochs. Prints a Markdown table (for RESULTS.md).
Not a test; every run is real training, on a local Ray of this machine.

    nice -n 10 python benchmarks/sweep_efficiency.py --storage experiments/efficiency   # the measurement (~1.5 h)
    python benchmarks/sweep_efficiency.py --quick    # checks the script works (12 tiny trials; 24 min on 2 busy cores)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusters.session import ray_session  # noqa: E402
from sweep.schema import spec as spec_module  # noqa: E402
from sweep.schema.first_points import first_points  # noqa: E402
from sweep.schema.hyperparameters import SEARCHED_PARAMETERS  # noqa: E402
from sweep.schema.spec import SweepSpec  # noqa: E402
from sweep.schema.trial_config import merge_overrides  # noqa: E402
from sweep.storage import experiment as experiments  # noqa: E402
from sweep.storage.results import load_trials  # noqa: E402
from sweep.study.margins import default_margins, label  # noqa: E402
from sweep.tuning import grid_runner  # noqa: E402
from sweep.tuning.trainable import RETRAIN_KEY  # noqa: E402
from sweep.workflows import preflight  # noqa: E402

CLAIM_POINTS, CLAIM_EPOCH_FRACTION = 0.5, 1 / 3
QUICK = {
    "dataset.image_size": 16,
    "epochs": 2,
    "validation.episodes": 20,
    "validation.finetune_epochs": 10,
    "scheduler.grace_period": 1,
}


@dataclass
class Method:
    """One way of searching: its trials' (margin, β, best objective, epochs run, stopped early)."""

    name: str
    is_sweep: bool = False
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best(self) -> float:
        scores = [t["objective"] for t in self.trials if t["objective"] is not None and math.isfinite(t["objective"])]
        return max(scores) if scores else float("nan")

    @property
    def epochs(self) -> int:
        return sum(t["epochs"] for t in self.trials)

    def best_margin(self) -> float | None:
        scored = [t for t in self.trials if t["objective"] is not None]
        return max(scored, key=lambda t: t["objective"])["margin"] if scored else None


def base_point(spec: SweepSpec) -> dict[str, Any]:
    """The spec's first point (published or points_to_evaluate), the fixed values, the middle of any other range."""
    point = {**spec.fixed(), **(first_points(spec)[:1] or [{}])[0]}
    for name, searched in spec.searched().items():
        if name not in point:
            low, high = searched.bounds()
            point[name] = type(low)((low + high) / 2) if searched.kind != "loguniform" else math.sqrt(low * high)
    return {name: point[name] for name in SEARCHED_PARAMETERS}


def run_grid(spec: SweepSpec, storage: Path, name: str, points: list[dict[str, Any]]) -> Method:
    """Every point trained at full budget (seed offset 0) as one Tune grid; its trials read back."""
    started = time.perf_counter()
    experiment = experiments.create(spec, storage=storage, name=name)
    preflight.prepare_validation_episodes(spec, experiment)
    labelled = [{"trial_id": f"{label(p['margin'])},b={p['scale']:g}", "params": p} for p in points]
    grid_runner.grid_tuner(spec, experiment, labelled, [0], storage=experiment.root, name="tune").fit()
    return Method(name, trials=grid_trials(experiment, spec.objective), seconds=time.perf_counter() - started)


def grid_trials(experiment: experiments.Experiment, objective: str) -> list[dict[str, Any]]:
    """A grid's trials as stored by Tune (each trial directory's params.json and result.json, one line per report)."""
    trials = []
    for params_file in sorted((experiment.root / "tune").glob("*/params.json")):
        params = json.loads(params_file.read_text())[RETRAIN_KEY]["params"]
        results_file = params_file.with_name("result.json")
        reports = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
        scores = [r[objective] for r in reports if r.get(objective) is not None]
        trials.append(
            {
                "margin": params["margin"],
                "scale": params["scale"],
                "objective": float(max(scores)) if scores else None,
                "epochs": max((int(r.get("epoch", 0)) for r in reports), default=0),
                "stopped": False,
            }
        )
    return trials


def sweep_trials(experiment: experiments.Experiment) -> list[dict[str, Any]]:
    """A sweep's trials as `negmargin sweep report` reads them."""
    return [
        {
            "margin": record.params["margin"],
            "scale": record.params["scale"],
            "objective": record.best_objective,
            "epochs": record.epochs_run,
            "stopped": record.stop_reason == "stopped early (ASHA)",
        }
        for record in load_trials(experiment, experiment.spec())
    ]


def sweep_name(spec: SweepSpec) -> str:
    """'(c) TPE + ASHA rungs 16 (η 2), sweep seed 0'."""
    rungs = rungs_text(spec.epochs, spec.scheduler.grace_period, int(spec.scheduler.reduction_factor))
    return f"(c) TPE + ASHA {rungs}, sweep seed {spec.seed}"


def run_sweep(spec: SweepSpec, storage: Path, sweep_seed: int, trials: int, schedule: tuple[int, int]) -> Method:
    """The spec's TPE + ASHA sweep with `trials` trials, sampler seed `sweep_seed` and ASHA's (grace period,
    reduction factor) `schedule`."""
    started = time.perf_counter()
    grace, reduction = schedule
    sweep_spec = spec.model_copy(
        update={
            "seed": sweep_seed,
            "num_samples": trials,
            "scheduler": spec.scheduler.model_copy(update={"grace_period": grace, "reduction_factor": reduction}),
        }
    )
    name = f"tpe-asha-g{grace}r{reduction}-seed{sweep_seed}"
    experiment = run_sweep(sweep_spec, storage=storage, name=name, promote=False, log=lambda _: None).experiment
    return Method(
        sweep_name(sweep_spec), is_sweep=True, trials=sweep_trials(experiment), seconds=time.perf_counter() - started
    )


def tabulate(storage: Path) -> None:
    """The tables of a measurement made before (--tabulate), read from its experiments without training; seconds
    are each experiment's wall time from its spec file to its last trial result."""
    found = experiments.find_all(storage)
    grid = next((e for e in found if e.root.name.startswith("grid-margin-2")), None)
    if grid is None:
        raise SystemExit(f"{storage}: no margin grid (a) to compare with")
    spec = grid.spec()
    methods = [Method("(a) margin grid, full budget", trials=grid_trials(grid, spec.objective), seconds=_wall(grid))]
    for experiment in found:
        if experiment.root.name.startswith("tpe-asha-"):
            method = Method(sweep_name(experiment.spec()), is_sweep=True, trials=sweep_trials(experiment))
            methods.append(dataclasses.replace(method, seconds=_wall(experiment)))
        elif experiment.root.name.startswith("grid-margin-beta-"):
            both = Method("(b) margin × β grid, full budget", trials=grid_trials(experiment, spec.objective))
            both.trials += methods[0].trials
            methods.insert(1, dataclasses.replace(both, seconds=_wall(experiment) + methods[0].seconds))
    margins = sorted({t["margin"] for t in methods[0].trials})
    show(methods[0], methods, margins, spec.objective)
    print(details(methods))


def _wall(experiment: experiments.Experiment) -> float:
    results = list((experiment.root / "tune").glob("*/result.json"))
    return max(f.stat().st_mtime for f in results) - experiment.spec_file.stat().st_mtime if results else 0.0


def details(methods: list[Method]) -> str:
    """Every method's trials by margin: 'm (β): best objective @ epochs run, stopped or not'."""
    lines = []
    for method in methods:
        lines.append(f"\n{method.name}:")
        for trial in sorted(method.trials, key=lambda t: (t["scale"], t["margin"])):
            score = f"{trial['objective']:.2f}" if trial["objective"] is not None else "–"
            stop = ", stopped by ASHA" if trial["stopped"] else ""
            lines.append(
                f"  m = {trial['margin']:+.3f}  β = {trial['scale']:g}: {score} in {trial['epochs']} epochs{stop}"
            )
    return "\n".join(lines)


def rungs_text(epochs: int, grace: int, reduction: int) -> str:
    """ASHA's rungs in epochs, e.g. 'rungs 2, 6, 18 (η 3)'."""
    rungs, rung = [], grace
    while rung < epochs:
        rungs.append(rung)
        rung *= reduction
    return f"rungs {', '.join(map(str, rungs)) or 'none'} (η {reduction})"


def parse_schedule(text: str) -> tuple[int, int]:
    """'2:3' -> (grace period 2, reduction factor 3)."""
    grace, reduction = text.split(":")
    return int(grace), int(reduction)


def stopped_best_margin(sweep: Method, grid_margins: list[float], best_margin: float) -> int:
    """Trials ASHA stopped whose margin is nearest to the grid's best margin."""
    nearest = [min(grid_margins, key=lambda m: abs(m - t["margin"])) for t in sweep.trials if t["stopped"]]
    return sum(margin == best_margin for margin in nearest)


def table(grid: Method, methods: list[Method], grid_margins: list[float], objective: str) -> str:
    """The Markdown table of every method against the margin grid (a)."""
    lines = [
        f"| method | trials | training epochs | best {objective} | vs grid (a) | epochs vs (a) | "
        "stopped trials at (a)'s best margin | claim met | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    best_margin = grid.best_margin()
    for method in methods:
        gap = method.best - grid.best
        fraction = method.epochs / grid.epochs if grid.epochs else float("nan")
        stopped = stopped_best_margin(method, grid_margins, best_margin) if method.is_sweep else "–"
        claim = gap >= -CLAIM_POINTS and fraction <= CLAIM_EPOCH_FRACTION
        met = ("yes" if claim else "no") if method.is_sweep else "–"
        lines.append(
            f"| {method.name} | {len(method.trials)} | {method.epochs} | {method.best:.2f} | {gap:+.2f} | "
            f"{fraction:.2f} | {stopped} | {met} | {method.seconds:.0f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=None, help="spec file or preset name (default: the embedded default)")
    parser.add_argument("--scales", default="5,10,20", help="β values of the margin × β grid (b)")
    parser.add_argument("--sweep-seeds", default="0,1,2", help="TPE sampler seeds of (c)")
    parser.add_argument(
        "--schedules",
        default=None,
        help="ASHA schedules of (c) as grace:reduction, comma-separated (default: the spec's own, then 2:3)",
    )
    parser.add_argument("--margins", type=int, default=7, help="points of the margin grid (a)")
    parser.add_argument("--storage", type=Path, default=None, help="where the experiments go (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="tiny budget: 3 margins, 2 β, 1 sweep seed, 2 epochs")
    parser.add_argument(
        "--tabulate", type=Path, default=None, help="print the tables of a measurement made before into this storage"
    )
    return parser.parse_args()


def main() -> None:
    """Run (a), (b) and (c) and print the table."""
    args = parse_args()
    if args.tabulate is not None:
        tabulate(args.tabulate)
        return
    spec = spec_module.with_absolute_paths(spec_module.load(spec_module.resolve(args.spec)))
    scales = [float(s) for s in args.scales.split(",")]
    sweep_seeds = [int(s) for s in args.sweep_seeds.split(",")]
    count = args.margins
    if args.quick:
        spec = spec_module.parse(merge_overrides(spec.model_dump(mode="json"), QUICK))
        scales, sweep_seeds, count = scales[:2], sweep_seeds[:1], 3
    own = (spec.scheduler.grace_period, spec.scheduler.reduction_factor)
    schedules = [parse_schedule(item) for item in args.schedules.split(",")] if args.schedules else [own, (2, 3)]
    preflight.check_dataset(spec)
    storage = args.storage or Path(tempfile.mkdtemp(prefix="negmargin-efficiency-"))
    point = base_point(spec)
    grid_margins = default_margins(spec.loss, spec.search["margin"].bounds(), count)
    print(f"spec {spec.name}: {spec.dataset.name} / {spec.backbone} / {spec.loss}, {spec.epochs} epochs; base {point}")
    print(
        f"margins {grid_margins}; β {scales}; sweep seeds {sweep_seeds}; ASHA (grace, η) {schedules}; "
        f"experiments in {storage}",
        flush=True,
    )
    with ray_session():
        grid = run_grid(spec, storage, "grid-margin", [{**point, "margin": m} for m in grid_margins])
        grid.name = "(a) margin grid, full budget"
        methods = [grid]
        show(grid, methods, grid_margins, spec.objective)
        for schedule in schedules:
            for seed in sweep_seeds:
                methods.append(run_sweep(spec, storage, seed, len(grid.trials), schedule))
                show(grid, methods, grid_margins, spec.objective)
        other_scales = [s for s in scales if s != point["scale"]]
        both = run_grid(
            spec,
            storage,
            "grid-margin-beta",
            [{**point, "margin": m, "scale": s} for m in grid_margins for s in other_scales],
        )
    both.name, both.seconds = "(b) margin × β grid, full budget", both.seconds + grid.seconds
    both.trials += grid.trials  # (a) is the row of (b) at the spec's own β: trained once, counted in both
    methods.insert(1, both)
    show(grid, methods, grid_margins, spec.objective)
    print(details(methods))


def show(grid: Method, methods: list[Method], grid_margins: list[float], objective: str) -> None:
    """Print the table so far (the benchmark runs for an hour or more; each method's row appears as it ends)."""
    print(f"\n(a) ranks m = {grid.best_margin():g} best\n")
    print(table(grid, methods, grid_margins, objective), flush=True)


if __name__ == "__main__":
    main()
