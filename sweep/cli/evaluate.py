"""`negmargin evaluate CHECKPOINT`: few-shot accuracy of a pretrained backbone on fixed episodes of a split.

The checkpoint format is described in evaluation/checkpoint.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from data.section import DatasetConfig


def _table(rows: list[dict]) -> str:
    """Plain-text table of the per-shot results."""
    lines = [f"{'shot':>4}  {'accuracy (%)':>15}  {'episodes':>8}  {'seconds':>8}"]
    for row in rows:
        accuracy = f"{row['accuracy_pct']:.2f} ± {row['ci95_pct']:.2f}"
        lines.append(f"{row['shot']:>4}  {accuracy:>15}  {row['episodes']:>8}  {row['seconds']:>8.1f}")
    return "\n".join(lines)


def dataset_section(args: argparse.Namespace, trained_on: dict, image_size: int) -> DatasetConfig:
    """The dataset section to read: the checkpoint's recorded cache geometry (crop scale, max stored size), so the
    trial's cache is read again and not rebuilt, with the dataset, root, cache and any size the user gave."""
    from data.geometry import CROP_SCALE
    from sweep.schema.config_errors import checked_dataset_section

    crop_scale = tuple(trained_on.get("crop_scale", CROP_SCALE))
    if args.crop_scale_min is not None:
        crop_scale = (args.crop_scale_min, crop_scale[1])
    section = {
        "name": args.dataset,
        "root": args.root,
        "cache_dir": None if args.cache is None else str(args.cache),
        "image_size": image_size,
        "crop_scale": crop_scale,
        "max_stored_size": args.max_stored_size or trained_on.get("max_stored_size"),
    }
    return checked_dataset_section(section, "evaluate")


def evaluate_command(args: argparse.Namespace) -> int:
    """Run `negmargin evaluate`: print the table (and write JSON); exit status 0."""
    import data  # the command's dependencies (torch) load here, not when the CLI builds its parser
    from evaluation.checkpoint import load_backbone_from_checkpoint, training_dataset
    from evaluation.device import resolve_device
    from evaluation.episode_accuracy import evaluate
    from evaluation.features import extract_features
    from evaluation.stats import mean_ci95
    from sweep.trial.checkpoints import checkpoint_file

    device = resolve_device(args.device, key="--device")
    path = checkpoint_file(args.checkpoint)
    backbone, head, image_size = load_backbone_from_checkpoint(path, device)
    image_size = args.image_size or image_size
    section = dataset_section(args, training_dataset(path), image_size)
    split = data.load_split(section, args.split, allow_test=args.split == "novel")  # novel only when asked for
    started = time.perf_counter()
    features = extract_features(backbone, split.images, args.batch_size, device, image_size)
    print(
        f"features: {tuple(features.shape)} of {args.dataset} {args.split} (stored at {split.stored_size} px) in "
        f"{time.perf_counter() - started:.1f} s on {device}"
    )
    rows = []
    for shot in args.shots:
        episodes = data.EpisodeSet.sample(
            split.labels, args.way, shot, args.queries, args.episodes, args.seed, class_names=split.class_names
        )
        started = time.perf_counter()
        accuracy = evaluate(features, split.labels, episodes, seed=args.seed, device=device, **head)
        seconds = time.perf_counter() - started
        mean, half_width = mean_ci95(accuracy * 100.0)
        rows.append(
            {
                "shot": shot,
                "accuracy_pct": mean,
                "ci95_pct": half_width,
                "episodes": len(accuracy),
                "seconds": seconds,
                "episode_accuracy": accuracy.tolist(),
            }
        )
    print(_table(rows))
    if args.json:
        report = {
            "checkpoint": str(args.checkpoint),
            "dataset": args.dataset,
            "split": args.split,
            "image_size": image_size,
            "way": args.way,
            "queries": args.queries,
            "seed": args.seed,
            "head": head,
            "results": rows,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="few-shot accuracy of a checkpoint on fixed episodes (mean ± 95%% CI)",
        description="Extract the split's features once, fine-tune a fresh head on every episode (the published "
        "protocol, batched), and print accuracy ± 1.96·std/√E per shot.",
    )
    parser.add_argument(
        "checkpoint", type=Path, help="trial checkpoint (torch.save'd dict with model_spec, backbone_state)"
    )
    parser.add_argument("--dataset", required=True, help="dataset name (see `negmargin data`)")
    parser.add_argument("--root", default=None, help="dataset root directory (not needed for glyphs)")
    parser.add_argument(
        "--split", choices=("val", "novel"), default="val", help="val, or novel: the test split (final evaluation only)"
    )
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5], help="support images per class")
    parser.add_argument("--episodes", type=int, default=600, help="episodes per shot")
    parser.add_argument("--way", type=int, default=5, help="classes per episode")
    parser.add_argument("--queries", type=int, default=16, help="query images per class")
    parser.add_argument("--seed", type=int, default=0, help="seed of the episodes and of the fine-tuning")
    parser.add_argument("--json", type=Path, default=None, help="also write the results (per episode too) here")
    parser.add_argument("--cache", type=Path, default=None, help="image cache directory")
    parser.add_argument("--image-size", type=int, default=None, help="model input size (default: checkpoint's)")
    parser.add_argument(
        "--crop-scale-min",
        type=float,
        default=None,
        help="low end of the training crop_scale, which sets the cached size (default: the checkpoint's, else 0.08)",
    )
    parser.add_argument(
        "--max-stored-size", type=int, default=None, help="cap on the cached side (default: the checkpoint's)"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per feature-extraction batch")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.set_defaults(func=evaluate_command)
