"""Search efficiency, measured as the field measures it: search strategies replayed on recorded learning curves.

Every strategy is the product's own searcher and scheduler (sweep.tuning.replay: `tuner.searcher` and
`tuner.scheduler` built from a spec, driven in Tune's call order on a virtual clock) over a learning-curve table
recorded by `negmargin calibrate --curves` (benchmarks/learning_curves/), once per sweep seed:

  grid      every recorded configuration of the space at full budget (the authors' way), in a random order
  random    Optuna's random sampler, no early stopping
  today     TPE with the settings a fresh install ran before they were stated (Optuna 5.1's defaults: 10 random
            start-up trials, multivariate, constant liar), the preset's ASHA rung, trials told their last value
  …         the candidates (STRATEGIES below): TPE settings stated, start-up trials, what a stopped trial tells TPE,
            where the rung sits

in two spaces: the preset's own (margin, β fixed) and margin × β (β loguniform in [5, 20]). For each: the score of
the configuration promotion would pick — its recorded test accuracy averaged over training seeds — against the
epochs spent (best-so-far curves: median and interquartile band over sweep seeds, one figure); the epochs to come
within 0.5 points of the grid's best (the grid's median final score); the regret at the preset's budget
(`num_samples` trials: median, interquartile mean with a bootstrap 95 % CI, the share of sweep seeds within 0.5);
the epochs to beat the default configuration (m = 0 at the preset's β).

    python benchmarks/sweep_efficiency.py                      # 50 sweep seeds, all strategies (a minute)
    python benchmarks/sweep_efficiency.py --results benchmarks/RESULTS.md   # and the table into RESULTS.md
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep.schema import spec as spec_module  # noqa: E402
from sweep.schema.spec import SweepSpec  # noqa: E402
from sweep.storage import learning_curves  # noqa: E402
from sweep.tuning import replay  # noqa: E402

TARGET_POINTS = 0.5  # "within 0.5 points of the grid's best"
TARGET_EPOCH_FRACTION = 0.25  # ... with at most a quarter of the grid's epochs
TARGET_SHARE = 0.8  # and the pick at the preset's budget within 0.5 points in at least 80 % of sweep seeds
SECTION = "sweep-efficiency"
HERE = Path(__file__).resolve().parent
DEFAULT_TABLE = HERE / "learning_curves" / "default.csv"

Overrides = Callable[[SweepSpec], dict[str, Any]]


@dataclass(frozen=True)
class Strategy:
    """A way to search: spec keys it sets (a function of the base spec), or the full-budget grid."""

    name: str
    description: str
    overrides: Overrides
    grid: bool = False
    rerank: bool = False  # promotion re-ranks the top-k on every recorded training seed (replay.reranked)


def _tpe(n_startup: int, value: str, stopped: str, multivariate: bool = True) -> dict[str, Any]:
    return {
        "searcher": {
            "sampler": "tpe",
            "n_startup_trials": n_startup,
            "multivariate": multivariate,
            "constant_liar": True,
            "trial_value": value,
            "stopped_trials": stopped,
        }
    }


STRATEGIES = [
    Strategy("grid", "full-budget grid of the recorded configurations", lambda spec: {}, grid=True),
    Strategy(
        "random",
        "random search, no early stopping",
        lambda spec: {
            "searcher": {"sampler": "random"},
            "scheduler": {"grace_period": spec.epochs},
            "points_to_evaluate": [],
        },
    ),
    Strategy(
        "today",
        "TPE as a fresh install ran it (10 random start-up trials, multivariate, constant liar), ASHA at the "
        "preset's rung, last value",
        lambda spec: _tpe(10, "last", "complete"),
    ),
    Strategy(
        "tpe10-asha",
        "TPE after 10 random start-up trials, multivariate, constant liar, best eligible value, stopped trials "
        "pruned, ASHA at the preset's rung",
        lambda spec: _tpe(10, "best", "pruned"),
    ),
    Strategy(
        "tpe5-asha",
        "TPE after 5 start-up trials, best eligible value, stopped trials pruned, ASHA at the preset's rung",
        lambda spec: _tpe(5, "best", "pruned"),
    ),
    Strategy(
        "tpe2-asha",
        "TPE after 2 start-up trials, best eligible value, stopped trials pruned, ASHA at the preset's rung",
        lambda spec: _tpe(2, "best", "pruned"),
    ),
    Strategy(
        "tpe2",
        "TPE after 2 start-up trials, best eligible value, no early stopping",
        lambda spec: {**_tpe(2, "best", "pruned"), "scheduler": {"grace_period": spec.epochs}},
    ),
    Strategy(
        "tpe2-asha24",
        "TPE after 2 start-up trials, best eligible value, stopped trials pruned, ASHA rung at epoch 24",
        lambda spec: {**_tpe(2, "best", "pruned"), "scheduler": {"grace_period": min(24, spec.epochs)}},
    ),
    Strategy(
        "tpe2-asha+seed",
        "as tpe2-asha, then promotion ranks its top-k on both recorded training seeds (one more seed each)",
        lambda spec: _tpe(2, "best", "pruned"),
        rerank=True,
    ),
    Strategy(
        "grid+seed",
        "the full-budget grid, then its top-k ranked on both recorded training seeds",
        lambda spec: {},
        grid=True,
        rerank=True,
    ),
]

BETA_RANGE = (5.0, 20.0)  # the margin x beta space's β (--beta-range): a table's recorded β values should span it


def spaces(beta_range: tuple[float, float] = BETA_RANGE) -> dict[str, dict[str, Any]]:
    """The spaces compared: the preset's own, and margin × β (β loguniform over `beta_range`), spec keys each."""
    return {
        "margin": {},
        "margin x beta": {
            "search.scale": {"loguniform": list(beta_range)},
            "points_to_evaluate": [{"margin": 0.0, "scale": 10.0}, {"margin": -0.3, "scale": 10.0}],
        },
    }


SPACES = spaces()
# drawn in the figure (the table has every strategy): the references, today's and the chosen settings, the early rung
FIGURE_STRATEGIES = ("grid", "random", "today", "tpe2-asha", "tpe2-asha24", "tpe2-asha+seed")


def with_keys(spec: SweepSpec, keys: dict[str, Any], source: str) -> SweepSpec:
    """`spec` with `keys` set: a dotted key ("search.scale") is replaced by its value, a top-level section
    ("searcher": {...}) gets the keys given and keeps its others."""
    document = yaml.safe_load(spec.to_yaml())
    for key, value in keys.items():
        *parents, leaf = key.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        merge = not parents and isinstance(value, dict) and isinstance(node.get(leaf), dict)
        node[leaf] = {**node[leaf], **value} if merge else value
    return spec_module.parse(document, source)


@dataclass(frozen=True)
class Scenario:
    """One space of one spec on a recording: the grid's configurations, the default's score, the grid's best."""

    name: str
    spec: SweepSpec
    configs: list[int]
    default_score: float
    oracle: float


def scenario(
    base: SweepSpec, recording: replay.Recording, name: str, beta_range: tuple[float, float] = BETA_RANGE
) -> Scenario:
    """The spec restricted to space `name` (`spaces`), with what the comparison needs of the recording."""
    spec = with_keys(base, spaces(beta_range)[name], f"{base.name}, space {name}")
    configs = recording.in_space(spec)
    if not configs:
        raise SystemExit(f"the table holds no configuration in space {name!r} of spec {base.name}")
    default = recording.nearest(spec, {**base.fixed(), "margin": 0.0})  # m = 0 at the preset's other values
    final = {index: recording.score(index, recording.final_epoch(index)) for index in configs}
    return Scenario(name, spec, configs, final[default], max(final.values()))


def run_strategy(
    where: Scenario, strategy: Strategy, recording: replay.Recording, seeds: list[int], budget: int, workdir: Path
) -> list[replay.ReplayedSweep]:
    """The strategy's sweeps in `where`, one per sweep seed, `budget` trials each (the grid: all its points)."""
    spec = with_keys(where.spec, strategy.overrides(where.spec), f"{where.name} / {strategy.name}")
    spec = spec.model_copy(update={"num_samples": budget})
    swept = replay.replay_many(spec, recording, seeds, workdir, grid=strategy.grid)
    return [replay.reranked(spec, recording, one) for one in swept] if strategy.rerank else swept


def first_epochs(trace: list[tuple[int, float, float]], threshold: float, strict: bool = False) -> float:
    """Epochs spent when the current pick's score first reaches `threshold` (exceeds it, if strict); inf if never."""
    for epochs, _, score in trace:
        if score > threshold or (not strict and score >= threshold):
            return float(epochs)
    return math.inf


def interquartile_mean(values: np.ndarray) -> float:
    """The mean of the middle half (Syne Tune's and rliable's robust aggregate)."""
    ordered = np.sort(values)
    n = len(ordered)
    return float(ordered[n // 4 : n - n // 4].mean()) if n >= 4 else float(ordered.mean())


def bootstrap_ci(values: np.ndarray, statistic: Callable[[np.ndarray], float], seed: int = 0) -> tuple[float, float]:
    """A 95 % percentile bootstrap interval of `statistic` over sweep seeds (2000 resamples)."""
    rng = np.random.default_rng(seed)
    draws = [statistic(rng.choice(values, size=len(values), replace=True)) for _ in range(2000)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def per_seed_rows(
    where: Scenario,
    strategy: Strategy,
    curve: list[replay.ReplayedSweep],
    at_budget: list[replay.ReplayedSweep],
    seeds: list[int],
    grid_best: float,
) -> list[dict[str, Any]]:
    """One row per sweep seed: the pick's score and cost at the preset's budget, and the epochs to the targets."""
    return [
        {
            "space": where.name,
            "strategy": strategy.name,
            "sweep_seed": seed,
            "score": budgeted.score,
            "regret": grid_best - budgeted.score,
            "epochs": budgeted.epochs,
            "seconds": round(budgeted.seconds, 1),
            "trials_stopped": sum(1 for trial in budgeted.trials if trial[2] < where.spec.epochs),
            "epochs_to_target": first_epochs(long.trace, grid_best - TARGET_POINTS),
            "epochs_to_beat_default": first_epochs(long.trace, where.default_score, strict=True),
            "curve_epochs": long.epochs,
            "curve_score": long.score,
            "curve_regret": grid_best - long.score,
        }
        for seed, long, budgeted in zip(seeds, curve, at_budget)
    ]


def summary(rows: pd.DataFrame, grid_epochs: dict[str, int]) -> pd.DataFrame:
    """Per (space, strategy): medians over sweep seeds, the regret's IQM with its bootstrap CI, shares."""
    found = []
    for (space, strategy), group in rows.groupby(["space", "strategy"], sort=False):
        regret = group["regret"].to_numpy(dtype=float)
        low, high = bootstrap_ci(regret, interquartile_mean)
        to_target = group["epochs_to_target"].to_numpy(dtype=float)
        found.append(
            {
                "space": space,
                "strategy": strategy,
                "seeds": len(group),
                "epochs to within 0.5 (median)": float(np.median(to_target)),
                "as share of grid": float(np.median(to_target)) / grid_epochs[space],
                "seeds reaching it": float(np.isfinite(to_target).mean()),
                "epochs to beat m = 0 (median)": float(np.median(group["epochs_to_beat_default"])),
                "regret at budget (median)": float(np.median(regret)),
                "regret IQM": interquartile_mean(regret),
                "regret IQM CI low": low,
                "regret IQM CI high": high,
                "within 0.5 at budget": float((regret <= TARGET_POINTS).mean()),
                "epochs at budget (median)": float(group["epochs"].median()),
                "within 0.5 after grid-many trials": float((group["curve_regret"] <= TARGET_POINTS).mean()),
                "budget epochs as share of grid": float(group["epochs"].median()) / grid_epochs[space],
            }
        )
    return pd.DataFrame(found)


def meets_target(row: pd.Series) -> bool:
    """The issue's target: within 0.5 points with <= a quarter of the grid's epochs (median), and the pick at the
    preset's budget within 0.5 points in >= 80 % of sweep seeds."""
    return bool(row["as share of grid"] <= TARGET_EPOCH_FRACTION and row["within 0.5 at budget"] >= TARGET_SHARE)


def curve_band(traces: list[list[tuple[int, float, float]]], xs: np.ndarray) -> np.ndarray:
    """[3, len(xs)]: the 25th, 50th and 75th percentile over sweep seeds of the pick's score after x epochs."""
    values = np.full((len(traces), len(xs)), np.nan)
    for row, trace in enumerate(traces):
        epochs = np.array([point[0] for point in trace])
        scores = np.array([point[2] for point in trace])
        index = np.searchsorted(epochs, xs, side="right") - 1
        values[row] = np.where(index >= 0, scores[np.clip(index, 0, None)], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # before a sweep's first report no seed has a pick
        return np.nanpercentile(values, [25, 50, 75], axis=0)


def figure(
    curves: dict[tuple[str, str], list[replay.ReplayedSweep]],
    scenarios: dict[str, Scenario],
    grid_best: dict[str, float],
    grid_epochs: dict[str, int],
    path: Path,
) -> None:
    """Best-so-far curves, one panel per space: median and interquartile band per strategy, the grid's best and the
    default's score as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scenarios), figsize=(max(7.5, 6.5 * len(scenarios)), 5.0), squeeze=False)
    for axis, (space, where) in zip(axes[0], scenarios.items()):
        xs = np.arange(0, grid_epochs[space] + 1)
        for (curve_space, strategy), sweeps in curves.items():
            if curve_space != space or strategy not in FIGURE_STRATEGIES:
                continue
            low, mid, high = curve_band([sweep.trace for sweep in sweeps], xs)
            (line,) = axis.step(xs, mid, where="post", label=strategy, linewidth=1.6)
            axis.fill_between(xs, low, high, step="post", alpha=0.15, color=line.get_color())
        axis.axhline(grid_best[space], color="black", linewidth=0.8, linestyle="--", label="grid's best")
        axis.axhline(grid_best[space] - TARGET_POINTS, color="black", linewidth=0.8, linestyle=":", label="- 0.5")
        axis.axhline(where.default_score, color="grey", linewidth=0.8, label="default (m = 0)")
        axis.axvline(
            TARGET_EPOCH_FRACTION * grid_epochs[space], color="red", linewidth=0.6, alpha=0.6, label="1/4 of the grid"
        )
        axis.set_title(f"space: {space} ({len(where.configs)} recorded configurations)")
        axis.set_xlabel("training epochs spent (all trials)")
        axis.set_ylabel("promoted configuration's test accuracy, % (seed-averaged)")
        low_y = min(where.default_score, grid_best[space] - TARGET_POINTS) - 1.5
        axis.set_ylim(low_y, where.oracle + 0.8)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "What promotion would pick after x epochs: median and interquartile band over sweep seeds\n"
        "(replayed learning curves; the pick ranks first on validation, scored by its seed-averaged test accuracy)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(
    table: pd.DataFrame,
    scenarios: dict[str, Scenario],
    grid_best: dict[str, float],
    grid_epochs: dict[str, int],
    header: str,
) -> str:
    """The comparison as Markdown (for RESULTS.md)."""
    lines = [header, ""]
    for space, where in scenarios.items():
        lines.append(
            f"- space **{space}**: {len(where.configs)} recorded configurations, grid = {grid_epochs[space]} epochs; "
            f"grid's best (median final pick) {grid_best[space]:.2f} %, best configuration {where.oracle:.2f} %, "
            f"default (m = 0) {where.default_score:.2f} %"
        )
    lines += [
        "",
        "| space | strategy | epochs to within 0.5 (median, share of grid, seeds reaching) | epochs to beat m = 0 "
        "| regret at budget: median, IQM [95 % CI] | within 0.5 at budget | epochs at budget (share) "
        "| within 0.5 after as many trials as the grid | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        lines.append(
            f"| {row['space']} | {row['strategy']} | {_epochs(row['epochs to within 0.5 (median)'])} "
            f"({row['as share of grid']:.2f}, {row['seeds reaching it']:.0%}) "
            f"| {_epochs(row['epochs to beat m = 0 (median)'])} "
            f"| {row['regret at budget (median)']:+.2f}, {row['regret IQM']:+.2f} "
            f"[{row['regret IQM CI low']:+.2f}, {row['regret IQM CI high']:+.2f}] "
            f"| {row['within 0.5 at budget']:.0%} "
            f"| {row['epochs at budget (median)']:.0f} ({row['budget epochs as share of grid']:.2f}) "
            f"| {row['within 0.5 after grid-many trials']:.0%} "
            f"| {'met' if meets_target(row) else '—'} |"
        )
    return "\n".join(lines) + "\n"


def _epochs(value: float) -> str:
    return "never" if not math.isfinite(value) else f"{value:.0f}"


def compare(
    table_path: Path,
    spec_argument: str,
    seeds: list[int],
    strategies: list[Strategy],
    space_names: list[str],
    out: Path,
    progress: Callable[[str], None] = print,
    beta_range: tuple[float, float] = BETA_RANGE,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Run every strategy in every space over `seeds`; write per-seed rows (CSV), the summary (Markdown) and the
    figure (PNG) into `out`; return (rows, summary, markdown)."""
    base = spec_module.load(spec_module.resolve(spec_argument))
    recording = replay.Recording.from_table(learning_curves.read(table_path), base.objective)
    scenarios = {name: scenario(base, recording, name, beta_range) for name in space_names}
    grid_epochs = {name: len(where.configs) * base.epochs for name, where in scenarios.items()}
    curves: dict[tuple[str, str], list[replay.ReplayedSweep]] = {}
    budgeted: dict[tuple[str, str], list[replay.ReplayedSweep]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="replay-", dir=_fast_dir()) as work:
        for space, where in scenarios.items():
            for strategy in strategies:
                began = time.perf_counter()
                long_budget = len(where.configs)
                curves[space, strategy.name] = run_strategy(where, strategy, recording, seeds, long_budget, Path(work))
                budgeted[space, strategy.name] = (
                    curves[space, strategy.name]
                    if strategy.grid
                    else run_strategy(where, strategy, recording, seeds, base.num_samples, Path(work))
                )
                progress(f"{space} / {strategy.name}: {len(seeds)} sweep seeds in {time.perf_counter() - began:.1f} s")
    grid_best = {
        space: float(np.median([sweep.score for sweep in curves[space, "grid"]]))
        if (space, "grid") in curves
        else scenarios[space].oracle
        for space in scenarios
    }
    rows = pd.DataFrame(
        [
            row
            for (space, name), sweeps in curves.items()
            for row in per_seed_rows(
                scenarios[space],
                next(s for s in strategies if s.name == name),
                sweeps,
                budgeted[space, name],
                seeds,
                grid_best[space],
            )
        ]
    )
    table = summary(rows, grid_epochs)
    header = (
        f"{len(seeds)} sweep seeds per strategy, table {table_path.name} ({len(recording.configs)} configurations), "
        f"spec {base.name}: budget {base.num_samples} trials × {base.epochs} epochs, {base.max_concurrent} at once; "
        f"{time.perf_counter() - started:.0f} s on this machine"
    )
    text = markdown(table, scenarios, grid_best, grid_epochs, header)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "sweep_efficiency_seeds.csv", index=False)
    (out / "sweep_efficiency.md").write_text(text)
    figure(curves, scenarios, grid_best, grid_epochs, out / "sweep_efficiency.png")
    return rows, table, text


def _fast_dir() -> str | None:
    """/dev/shm where it exists (the studies' SQLite files need no disk), else the system's temporary folder."""
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


def replace_section(document: str, body: str) -> str:
    """`document` with the marked section <!-- sweep-efficiency --> … replaced by `body` (appended if absent)."""
    start, end = f"<!-- {SECTION} -->", f"<!-- /{SECTION} -->"
    block = f"{start}\n{body}{end}"
    if start in document and end in document:
        return document[: document.index(start)] + block + document[document.index(end) + len(end) :]
    return document.rstrip("\n") + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="learning-curve table (CSV)")
    parser.add_argument("--spec", default="default", help="spec file or preset name (default: the embedded one)")
    parser.add_argument("--sweep-seeds", type=int, default=50, help="sweep seeds per strategy (default 50)")
    parser.add_argument("--strategies", nargs="+", default=[s.name for s in STRATEGIES], help="which strategies")
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=list(SPACES), help="which spaces")
    parser.add_argument(
        "--beta-range", type=float, nargs=2, default=list(BETA_RANGE), help="β range of the margin x beta space"
    )
    parser.add_argument("--out", type=Path, default=HERE / "sweep_efficiency", help="folder of the outputs")
    parser.add_argument("--results", type=Path, default=None, help="also write the table into this Markdown file")
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    unknown = [name for name in args.strategies if name not in {s.name for s in STRATEGIES}]
    if unknown:
        parser.error(f"unknown strategy {unknown[0]!r}; known: {', '.join(s.name for s in STRATEGIES)}")
    chosen = [s for s in STRATEGIES if s.name in args.strategies]
    seeds = list(range(args.sweep_seeds))
    _, _, text = compare(args.table, args.spec, seeds, chosen, args.spaces, args.out, beta_range=tuple(args.beta_range))
    print("\n" + text)
    if args.results is not None:
        document = args.results.read_text() if args.results.is_file() else ""
        args.results.write_text(replace_section(document, text))
        print(f"wrote the table into {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
