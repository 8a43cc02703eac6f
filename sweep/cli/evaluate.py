"""`negmargin evaluate CHECKPOINT`: few-shot accuracy of a pretrained backbone on fixed episodes of a split.

The pipeline is evaluation.evaluate_checkpoint (evaluation/checkpoint_evaluation.py); the checkpoint format is
evaluation/checkpoint.py's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluation.checkpoint_evaluation import CheckpointEvaluation


def _table(evaluation: CheckpointEvaluation) -> str:
    """Plain-text table of the per-shot results."""
    lines = [f"{'shot':>4}  {'accuracy (%)':>15}  {'episodes':>8}  {'seconds':>8}"]
    for row in evaluation.results:
        accuracy = f"{row.accuracy_pct:.2f} ± {row.ci95_pct:.2f}"
        lines.append(f"{row.shot:>4}  {accuracy:>15}  {row.episodes:>8}  {row.seconds:>8.1f}")
    return "\n".join(lines)


def evaluate_command(args: argparse.Namespace) -> int:
    """Run `negmargin evaluate` (evaluation.evaluate_checkpoint): print the table (and write JSON); exit status 0."""
    from data.atomic import write_text_atomically  # the command's dependencies (torch) load here, not in the parser
    from evaluation.checkpoint_evaluation import evaluate_checkpoint
    from evaluation.device import resolve_device

    result = evaluate_checkpoint(
        args.checkpoint,
        args.dataset,
        split=args.split,
        shots=args.shots,
        episodes=args.episodes,
        way=args.way,
        queries=args.queries,
        seed=args.seed,
        root=args.root,
        cache_dir=args.cache,
        image_size=args.image_size,
        crop_scale_min=args.crop_scale_min,
        max_stored_size=args.max_stored_size,
        batch_size=args.batch_size,
        device=resolve_device(args.device, key="--device"),
    )
    print(
        f"features: {result.features_shape} of {result.dataset.name} {result.split} (stored at {result.stored_size} "
        f"px) in {result.feature_seconds:.1f} s on {result.device}"
    )
    print(_table(result))
    if args.json:
        write_text_atomically(args.json, json.dumps(result.to_json(), indent=1) + "\n")
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
        "checkpoint", type=Path, help="trial checkpoint file or directory (evaluation/checkpoint.py's format)"
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
