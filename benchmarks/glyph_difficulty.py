"""Difficulty of the embedded glyph benchmark, measured with our own pipeline: trials on base, promotion's scoring.

For each margin m (--margins) and seed (--seeds), one trial (`sweep.trial.run`) trains conv4 with the Neg-Cosine head
(scale β, margin m; a positive m trains the cosine head, as a sweep does) on the glyph base split at --image-size,
with the trial's own augmentation (crop scale 0.8-1, no flips), optimiser and schedule, and is validated once, at the
end, on its fixed 100-episode val sets. Its final checkpoint is then scored on the novel split exactly as promotion
scores one (sweep.promote.score_checkpoint): the backbone rebuilt by `evaluation.load_backbone_from_checkpoint`,
features once, 600 fixed 5-way episodes per shot with 16 queries (sampled with seed 10 000, the test stream, and
shared by every run, so runs are paired), the published per-episode fine-tuning (`evaluation.evaluate`, its loss's
head, 100 epochs, seed 0), mean ± 95 % CI (`evaluation.mean_ci95`). For every m ≠ 0 the paired difference to m = 0
of the same seed on the same episodes follows (`evaluation.paired_comparison`). CPU only; not a test.

The difficulty figure (the m = 0 row; benchmarks/RESULTS.md, "Glyph benchmark difficulty (our pipeline)") is

    python benchmarks/glyph_difficulty.py --threads 1

With --val-every 1 every epoch is validated and the per-epoch validation curves are printed, with the last epoch at
which the ranking of the margins (mean over seeds of the mean of 1- and 5-shot val accuracy) still changes: the
crossover an early ASHA rung must not precede. `--save FILE` keeps every run (curves, per-episode novel accuracies);
`--combine FILE ...` prints the table, the curves and the paired differences pooled over the saved runs, so seeds
can run in parallel processes. The glyphs-mini calibration (benchmarks/RESULTS.md) is

    python benchmarks/glyph_difficulty.py --dataset glyphs-mini --margins 0.1,0,-0.1,-0.3 --seeds 0 --epochs 30 \
        --batch-size 64 --val-every 1 --threads 1 --save seed0.pt        # and --seeds 1 ... --save seed1.pt
    python benchmarks/glyph_difficulty.py --combine seed0.pt seed1.pt
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data  # noqa: E402
import evaluation  # noqa: E402
from models.catalog import trained_loss  # noqa: E402
from sweep.trial import TrialConfig, run  # noqa: E402

SHOTS = (1, 5)
WAY = 5
QUERIES = 16
TEST_EPISODE_SEED = 10_000  # promotion's test stream: spec seed 0 + sweep.promote.TEST_EPISODE_SEED_OFFSET
FINETUNE_SEED = 0  # promotion fine-tunes with the spec's seed (0 by default)
DEVICE = torch.device("cpu")


@dataclass
class MemoryReporter:
    """A `sweep.trial.Reporter` that prints each epoch and keeps the last report and its checkpoint in memory."""

    label: str
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)  # every validation report, in epoch order

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        """Print the epoch's training metrics."""
        print(
            f"  {self.label} epoch {metrics['epoch']}: loss {metrics['train_loss']:.3f}, "
            f"train acc {metrics['train_acc']:.1f}%, {metrics['images_per_s']:.0f} images/s",
            flush=True,
        )

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any]) -> None:
        """Keep the validation report and its checkpoint (only the last one matters here)."""
        self.metrics, self.checkpoint = metrics, checkpoint
        self.curve.append(dict(metrics))


@dataclass
class RunResult:
    """One (margin, seed) run: its final trial metrics, per-episode novel accuracies [E] per shot, wall seconds."""

    margin: float
    seed: int
    metrics: dict[str, Any]
    novel: dict[int, torch.Tensor]
    seconds: float
    curve: list[dict[str, Any]] = field(default_factory=list)


def trial_config(args: argparse.Namespace, margin: float, seed: int) -> TrialConfig:
    """The glyph benchmark's trial config for one margin and seed (validated at the last epoch only)."""
    return TrialConfig.from_dict(
        {
            "dataset": {
                "name": args.dataset,
                "root": args.cache,
                "cache_dir": args.cache,
                "image_size": args.image_size,
                "crop_scale": [0.8, 1.0],
                "hflip": False,
            },
            "backbone": args.backbone,
            "loss": trained_loss("neg-cosine", margin),
            "margin": margin,
            "scale": args.scale,
            "weight_decay": 5e-4,
            "epochs": args.epochs,
            "warmup_epochs": 0,
            "batch_size": args.batch_size,
            "lr": 3e-3,
            "val_every": args.val_every or args.epochs,
            "validation": {"episodes": 100, "shots": list(SHOTS), "queries": QUERIES},
            "seed": seed,
            "device": DEVICE.type,
        }
    )


def novel_episode_sets(novel: data.CachedSplit, episodes: int) -> dict[int, data.EpisodeSet]:
    """The fixed test episode set of each shot, as promotion samples it; shared by every run."""
    return {
        shot: data.EpisodeSet.sample(novel.labels, WAY, shot, QUERIES, episodes, seed=TEST_EPISODE_SEED)
        for shot in SHOTS
    }


def score_on_novel(
    checkpoint: dict[str, Any], novel: data.CachedSplit, episode_sets: dict[int, data.EpisodeSet]
) -> dict[int, torch.Tensor]:
    """Per-episode novel accuracies [E] in [0, 1] per shot of a trial checkpoint, scored as promotion scores one."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "checkpoint.pt"
        torch.save(checkpoint, path)
        backbone, head, image_size = evaluation.load_backbone_from_checkpoint(path, DEVICE)
    features = evaluation.extract_features(backbone, novel.images, batch_size=256, device=DEVICE, image_size=image_size)
    labels = torch.as_tensor(novel.labels)
    return {
        shot: evaluation.evaluate(features, labels, episodes, seed=FINETUNE_SEED, device=DEVICE, **head)
        for shot, episodes in episode_sets.items()
    }


def run_one(
    args: argparse.Namespace, margin: float, seed: int, novel: data.CachedSplit, episode_sets: dict[int, Any]
) -> RunResult:
    """Train one trial to the end, then score its final checkpoint on the novel episodes."""
    start = time.time()
    reporter = MemoryReporter(f"m={margin:g} seed={seed}")
    run(trial_config(args, margin, seed), reporter)
    if reporter.checkpoint is None:
        raise RuntimeError(f"trial m={margin} seed={seed} reported no checkpoint")
    scores = score_on_novel(reporter.checkpoint, novel, episode_sets)
    return RunResult(margin, seed, reporter.metrics, scores, time.time() - start, reporter.curve)


def summary(accuracy: torch.Tensor) -> str:
    """'mean ± half-width' in percent of per-episode accuracies [E] in [0, 1]."""
    mean, half_width = evaluation.mean_ci95(accuracy.double() * 100)
    return f"{mean:.2f} ± {half_width:.2f}"


def print_table(results: list[RunResult], episodes: int) -> None:
    """One row per run: base train accuracy (last epoch), val accuracies, novel accuracies ± 95 % CI, seconds."""
    print(f"\n{WAY}-way, {QUERIES} queries; val: 100 episodes per shot; novel: {episodes} episodes per shot (paired)")
    header = f"{'margin':>7} {'seed':>4} {'train acc':>9} {'val 1-shot':>10} {'val 5-shot':>10} "
    print(header + f"{'novel 1-shot':>14} {'novel 5-shot':>14} {'seconds':>7}")
    for r in results:
        row = f"{r.margin:>7g} {r.seed:>4} {r.metrics['train_acc']:>9.2f} "
        row += f"{r.metrics['val_acc_1shot']:>10.2f} {r.metrics['val_acc_5shot']:>10.2f} "
        print(row + f"{summary(r.novel[1]):>14} {summary(r.novel[5]):>14} {r.seconds:>7.0f}")


def print_paired(results: list[RunResult]) -> None:
    """Novel accuracy of each m ≠ 0 minus m = 0 of the same seed, on the same episodes (points, 95 % CI, p-values):
    per seed, then pooled over seeds (the (seed, episode) pairs of all seeds together)."""
    baseline = {r.seed: r for r in results if r.margin == 0}
    others = [r for r in results if r.margin != 0 and r.seed in baseline]
    if not others:
        print("\npaired differences: no m = 0 run of the same seed to compare with")
        return
    print("\npaired differences on novel, m - (m = 0), same seed and episodes (points):")
    print(f"{'margin':>7} {'seed':>6} {'shot':>4} {'diff ± 95% CI':>15} {'t p':>8} {'Wilcoxon p':>10} {'n':>5}")
    margins = sorted({r.margin for r in others}, reverse=True)
    for margin in margins:
        runs = [r for r in others if r.margin == margin]
        groups = [(str(r.seed), [r]) for r in runs] + ([("pooled", runs)] if len(runs) > 1 else [])
        for label, group in groups:
            for shot in SHOTS:
                a = torch.cat([r.novel[shot] for r in group]).double() * 100
                b = torch.cat([baseline[r.seed].novel[shot] for r in group]).double() * 100
                stats = evaluation.paired_comparison(a, b)
                diff = f"{stats['mean_diff']:+.2f} ± {stats['ci95']:.2f}"
                print(
                    f"{margin:>7g} {label:>6} {shot:>4} {diff:>15} {stats['t_pvalue']:>8.3g} "
                    f"{stats['wilcoxon_pvalue']:>10.3g} {stats['n']:>5}"
                )


def objective(row: dict[str, Any]) -> float:
    """The mean of a validation report's 1- and 5-shot accuracy (the default sweep's objective, val_acc_mean)."""
    return (row["val_acc_1shot"] + row["val_acc_5shot"]) / 2


def print_curves(results: list[RunResult]) -> None:
    """Validation objective per epoch for each margin (mean over seeds), the margins ranked at each epoch, and the
    last epoch at which that ranking still differs from the final one (the crossover)."""
    margins = sorted({r.margin for r in results}, reverse=True)
    epochs = sorted({row["epoch"] for r in results for row in r.curve})
    if len(epochs) < 2:
        return
    mean = {}
    for margin in margins:
        for epoch in epochs:
            values = [objective(row) for r in results if r.margin == margin for row in r.curve if row["epoch"] == epoch]
            mean[margin, epoch] = sum(values) / len(values)
    print("\nvalidation objective (mean of 1- and 5-shot %, mean over seeds) per epoch; margins best first")
    print(f"{'epoch':>5} " + " ".join(f"{'m=' + format(m, 'g'):>8}" for m in margins) + "  ranking")
    rankings = {}
    for epoch in epochs:
        rankings[epoch] = sorted(margins, key=lambda m: -mean[m, epoch])
        values = " ".join(f"{mean[m, epoch]:>8.2f}" for m in margins)
        print(f"{epoch:>5} {values}  {' > '.join(format(m, 'g') for m in rankings[epoch])}")
    final = rankings[epochs[-1]]
    unsettled = [epoch for epoch in epochs if rankings[epoch] != final]
    if unsettled:
        print(f"ranking of the margins last differs from the final one at epoch {unsettled[-1]}: it settles after it")
    else:
        print("ranking of the margins is the final one from the first validated epoch on")


def float_list(text: str) -> list[float]:
    """'0,-0.3' -> [0.0, -0.3]."""
    return [float(item) for item in text.split(",") if item.strip()]


def int_list(text: str) -> list[int]:
    """'0,1' -> [0, 1]."""
    return [int(item) for item in text.split(",") if item.strip()]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", default=None, help="glyph and image cache dir (default: $NEGMARGIN_CACHE or ~/.cache/negmargin)"
    )
    parser.add_argument("--dataset", default="glyphs", choices=("glyphs", "glyphs-mini"))
    parser.add_argument("--backbone", default="conv4")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--val-every", type=int, default=None, help="validate every N epochs (default: last only)")
    parser.add_argument("--save", type=Path, default=None, help="write every run (torch.save) here")
    parser.add_argument("--combine", type=Path, nargs="+", default=None, help="print the saved runs of these files")
    parser.add_argument("--image-size", type=int, default=24, help="model input size")
    parser.add_argument("--margins", type=float_list, default=[0.0, -0.3], help="comma-separated margins m")
    parser.add_argument("--scale", type=float, default=10.0, help="cosine-softmax scale β")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int_list, default=[0], help="comma-separated trial seeds")
    parser.add_argument("--episodes", type=int, default=600, help="novel test episodes per shot")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    return parser.parse_args()


def main() -> None:
    """Train every (margin, seed), score each on the shared novel episodes, print the table and paired differences."""
    args = parse_args()
    if args.combine:
        results = [RunResult(**run) for path in args.combine for run in torch.load(path, weights_only=True)]
        print_table(results, len(results[0].novel[1]))
        print_curves(results)
        print_paired(results)
        return
    torch.set_num_threads(args.threads)
    start = time.time()
    novel = data.load_split(
        args.dataset, args.cache, "novel", args.image_size, args.cache, allow_test=True, progress=False
    )
    episode_sets = novel_episode_sets(novel, args.episodes)
    print(f"novel: {len(novel.labels)} images / {len(novel.class_names)} classes ({time.time() - start:.0f}s)")
    results = []
    for margin in args.margins:
        for seed in args.seeds:
            results.append(run_one(args, margin, seed, novel, episode_sets))
    if args.save:
        torch.save([vars(result) for result in results], args.save)
    print_table(results, args.episodes)
    print_curves(results)
    print_paired(results)
    print(f"\ntotal {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
