"""The sweep driver at scale: what the searcher, the scheduler and Ray Tune itself cost per trial, from the replay.

(a) searcher + scheduler (sweep.tuning.replay, the study in SQLite on this disk as a sweep keeps it): the seconds
    TPE's suggest, report handling (ASHA's decision, Optuna's intermediate value: one SQLite commit each) and trial
    completion take, per trial, at 32, 256 and 1,000 replayed trials with 2, 16 and 64 at once.
(b) Ray Tune's own bookkeeping (the controller's loop, result processing, experiment-state saves, result files) on
    top: a real `Tuner` with the same searcher and scheduler and a trainable that reports a recorded run's rows at
    once (no training), 32 and 256 trials; its wall time per trial less (a)'s.
Each against the recorded trial's own time (its epochs' seconds on the machine that recorded the table): the driver
works serially while `at once` trials train, so the share of the sweep's wall time it adds is cost per trial × trials
at once / a trial's own (recorded) seconds. Published reference points: Ray Tune's scalability benchmark (10,000
one-second trials, ~9 ms of bookkeeping per trial), Optuna's TPE (≈ 2 ms per parameter per trial at 1,000
trials, O(n) per suggest), SQLite (≈ 10 ms per committed trial).

    python benchmarks/driver_scale.py                   # (a) and (b); prints a Markdown table
    python benchmarks/driver_scale.py --skip-tune       # (a) only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep.schema import spec as spec_module  # noqa: E402
from sweep.schema.spec import SweepSpec  # noqa: E402
from sweep.storage import learning_curves  # noqa: E402
from sweep.storage.experiment import Experiment  # noqa: E402
from sweep.tuning import replay, trainable, tuner  # noqa: E402

HERE = Path(__file__).resolve().parent
SPACE = {"search": {"margin": {"uniform": [-0.5, 0.2]}, "scale": {"loguniform": [5.0, 20.0]}}}


def scaled_spec(base: SweepSpec, trials: int, at_once: int) -> SweepSpec:
    """The preset with margin × β searched, `trials` trials, `at_once` at a time."""
    document = base.model_dump(mode="json")
    document["search"] = {**document["search"], **SPACE["search"]}
    document["points_to_evaluate"] = [{"margin": 0.0, "scale": 10.0}]
    document.update(num_samples=trials, max_concurrent=at_once)
    return spec_module.parse(document, f"{base.name}, {trials} trials, {at_once} at once")


def replayed_costs(spec: SweepSpec, recording: replay.Recording, workdir: Path) -> dict[str, float]:
    """(a): seconds per trial in suggest / results / completion, the trial's own recorded seconds, the wall time."""
    started = time.perf_counter()
    swept = replay.replay(spec, recording, workdir)
    wall = time.perf_counter() - started
    trials = len(swept.trials)
    own = sum(sum(recording.runs[c][seed].epoch_seconds[:epochs]) for c, seed, epochs, _ in swept.trials) / trials
    return {**{key: value / trials for key, value in swept.driver.items()}, "own": own, "wall": wall / trials}


def replay_trainable(config: dict[str, Any], *, recording: replay.Recording, spec_data: dict[str, Any]) -> None:
    """Tune trainable: report the nearest recorded run's rows at once (the searcher's point, training seed by hash)."""
    from ray import tune

    spec = spec_module.parse(spec_data)
    index = recording.nearest(spec, {**spec.fixed(), **config})
    seeds = sorted(recording.runs[index])
    run = recording.runs[index][seeds[hash(tune.get_context().get_trial_id()) % len(seeds)]]
    for report in run.reports:
        tune.report(trainable.report_row(report, spec.objective, spec.selection, spec.selection_from_epoch))


def tune_costs(spec: SweepSpec, recording: replay.Recording, workdir: Path) -> float:
    """(b): wall seconds per trial of a real Tune run of the replay trainable with the sweep's searcher/scheduler."""
    import ray
    from ray import tune

    experiment = Experiment(workdir / f"tune-{spec.num_samples}-{spec.max_concurrent}")
    experiment.root.mkdir(parents=True, exist_ok=True)
    trainable_fn = tune.with_resources(
        tune.with_parameters(replay_trainable, recording=recording, spec_data=spec.model_dump(mode="json")),
        {"cpu": 2 / spec.max_concurrent},
    )
    tune_config = tune.TuneConfig(
        metric=spec.objective,
        mode="max",
        search_alg=tuner.searcher(spec, experiment),
        scheduler=tuner.scheduler(spec),
        num_samples=spec.num_samples,
        max_concurrent_trials=spec.max_concurrent,
        reuse_actors=tuner.REUSE_ACTORS,
    )
    run_config = tune.RunConfig(name="tune", storage_path=str(experiment.root), verbose=0)
    started = time.perf_counter()
    tune.Tuner(trainable_fn, tune_config=tune_config, run_config=run_config).fit()
    seconds = time.perf_counter() - started
    assert ray.is_initialized()
    return seconds / spec.num_samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=HERE / "learning_curves" / "default.csv")
    parser.add_argument("--spec", default="default")
    parser.add_argument("--trials", type=int, nargs="+", default=[32, 256, 1000])
    parser.add_argument("--at-once", type=int, nargs="+", default=[2, 16, 64])
    parser.add_argument("--tune-trials", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--skip-tune", action="store_true", help="(a) only")
    parser.add_argument("--workdir", type=Path, default=None, help="where the studies go (default: a temporary folder)")
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = spec_module.load(spec_module.resolve(args.spec))
    recording = replay.Recording.from_table(learning_curves.read(args.table), base.objective)
    print(
        "| trials | at once | suggest ms/trial | results ms/trial | complete ms/trial | searcher+scheduler ms/trial "
        "| Tune wall ms/trial | trial's own s | driver share |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="driver-scale-", dir=args.workdir) as work:
        if not args.skip_tune:
            import ray

            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            for trials in args.trials:
                for at_once in args.at_once:
                    spec = scaled_spec(base, trials, at_once)
                    costs = replayed_costs(spec, recording, Path(work))
                    driver = costs["suggest"] + costs["result"] + costs["complete"]
                    tune_wall = (
                        tune_costs(spec, recording, Path(work))
                        if not args.skip_tune and trials in args.tune_trials
                        else np.nan
                    )
                    total = max(driver, tune_wall) if np.isfinite(tune_wall) else driver
                    print(
                        f"| {trials} | {at_once} | {1000 * costs['suggest']:.1f} | {1000 * costs['result']:.1f} "
                        f"| {1000 * costs['complete']:.1f} | {1000 * driver:.1f} "
                        f"| {'—' if not np.isfinite(tune_wall) else f'{1000 * tune_wall:.0f}'} "
                        f"| {costs['own']:.0f} | {100 * total * min(at_once, trials) / costs['own']:.2f} % |",
                        flush=True,
                    )
        finally:
            if not args.skip_tune:
                import ray

                ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
