"""Is the replay right? Real sweeps (training, on a local Ray) against the replay's interquartile band.

For each sweep seed: `sweep.run_sweep` of the spec (the product, trials trained for real; no promotion: what matters
is what it would promote), then from its trial table: the epochs it spent, and the configuration promotion would
pick (the trial ranked first by the objective at its best eligible checkpoint) with that checkpoint's epoch, judged
as the replay judges it — the learning-curve table's seed-averaged test accuracy of the nearest recorded
configuration at that epoch. The same spec replayed over `--replay-seeds` sweep seeds gives the band (25th-75th
percentile) each real sweep should land in.

    python benchmarks/replay_check.py --sweep-seeds 0 1 2 --storage experiments/replay-check   # ~25 min, 2 cores
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sweep  # noqa: E402
from sweep.schema import spec as spec_module  # noqa: E402
from sweep.schema.spec import SweepSpec  # noqa: E402
from sweep.storage import learning_curves  # noqa: E402
from sweep.storage.experiment import Experiment  # noqa: E402
from sweep.storage.results import load_trials, ranked  # noqa: E402
from sweep.tuning import replay  # noqa: E402

HERE = Path(__file__).resolve().parent


def real_sweep(spec: SweepSpec, folder: Path, recording: replay.Recording) -> tuple[int, float, str]:
    """(epochs spent, the pick's recorded seed-averaged test accuracy, the pick) of one real sweep into `folder`
    (resumed, or read back when it finished before)."""
    sweep.run_sweep(spec, experiment=folder, promote=False, log=lambda line: print(line, flush=True))
    records = load_trials(Experiment(folder), spec)
    first = ranked(records)[0]
    epoch = int(first.best["epoch"])
    config = recording.nearest(spec, {**spec.fixed(), **first.params})
    described = (
        f"m {float(first.params['margin']):+.3f} (recorded m {recording.configs[config]['margin']:+.1f}), epoch {epoch}"
    )
    return sum(record.epochs_run for record in records), recording.score(config, epoch), described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=HERE / "learning_curves" / "default.csv")
    parser.add_argument("--spec", default="default")
    parser.add_argument("--sweep-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--replay-seeds", type=int, default=20)
    parser.add_argument("--storage", type=Path, default=Path("experiments") / "replay-check")
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = spec_module.with_absolute_paths(spec_module.load(spec_module.resolve(args.spec)))
    recording = replay.Recording.from_table(learning_curves.read(args.table), base.objective)
    with tempfile.TemporaryDirectory(prefix="replay-check-") as work:
        replayed = replay.replay_many(base, recording, list(range(args.replay_seeds)), Path(work))
    epochs = np.array([sweep_.epochs for sweep_ in replayed], dtype=float)
    scores = np.array([sweep_.score for sweep_ in replayed])
    e_low, e_high = np.percentile(epochs, [25, 75])
    s_low, s_high = np.percentile(scores, [25, 75])
    rows = []
    for seed in args.sweep_seeds:
        spec = base.model_copy(update={"seed": seed})
        spent, score, pick = real_sweep(spec, (args.storage / f"{base.name}-seed{seed}").resolve(), recording)
        rows.append(
            f"| {seed} | {spent} ({'inside' if e_low <= spent <= e_high else 'outside'}) "
            f"| {score:.2f} ({'inside' if s_low <= score <= s_high else 'outside'}) | {pick} |"
        )
    print(
        f"\nreplay of {base.name} over {args.replay_seeds} sweep seeds: epochs spent median {np.median(epochs):.0f} "
        f"[IQR {e_low:.0f}-{e_high:.0f}], pick's test accuracy median {np.median(scores):.2f} "
        f"[IQR {s_low:.2f}-{s_high:.2f}]\n"
    )
    print("| real sweep seed | epochs spent (vs replay IQR) | pick's recorded test accuracy (vs IQR) | pick |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
