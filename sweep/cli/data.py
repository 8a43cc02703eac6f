"""`negmargin data prepare`: decode a dataset's splits into the image cache ahead of a sweep."""

from __future__ import annotations

import argparse

from data.datasets import list_datasets
from data.geometry import CROP_SCALE
from data.paths import default_cache_dir

DEFAULT_SPLITS = ("base", "val", "novel")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command group (with `data prepare`) to the CLI's subparsers."""
    data_parser = subparsers.add_parser("data", help="dataset tools")
    data_commands = data_parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    prepare = data_commands.add_parser(
        "prepare",
        help="decode and resize a dataset's splits into the uint8 cache",
        description="Decode every image of each split once into the cache, squashed to S x S with S = max(int(1.15 * "
        "size), ceil(size / sqrt(crop scale min))), capped at the images' native side and at --max-stored-size. "
        "The test split (novel) is prepared too: decoding it is not reading it; only promotion loads it.",
    )
    prepare.add_argument("name", choices=list_datasets(), help="dataset name")
    prepare.add_argument("--root", default=None, help="dataset root directory (optional for glyphs)")
    prepare.add_argument(
        "--size",
        "--image-size",
        dest="image_size",
        type=int,
        default=84,
        help="model input size (default 84: stored at 297 where the images have the pixels)",
    )
    prepare.add_argument(
        "--crop-scale-min",
        type=float,
        default=CROP_SCALE[0],
        help=f"the low end of the trials' dataset.crop_scale (default {CROP_SCALE[0]}, the published value)",
    )
    prepare.add_argument(
        "--max-stored-size", type=int, default=None, help="store at most this side (dataset.max_stored_size)"
    )
    prepare.add_argument(
        "--cache", default=None, help=f"cache directory (default $NEGMARGIN_CACHE or {default_cache_dir()})"
    )
    prepare.add_argument(
        "--splits", default=",".join(DEFAULT_SPLITS), help="comma-separated splits to prepare (default base,val,novel)"
    )
    prepare.add_argument("--workers", type=int, default=None, help="decoding threads (default: CPU count)")
    prepare.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    prepare.set_defaults(func=prepare_command)


def prepare_command(args: argparse.Namespace) -> int:
    """Build the cache of each requested split and print where it is; returns the exit status."""
    from data.section import checked_dataset_section
    from data.splits import prepare_split  # the cache (numpy, PIL, tqdm) loads when there is work

    options = {"name": args.name, "root": args.root, "cache_dir": args.cache, "image_size": args.image_size}
    geometry = {"crop_scale": (args.crop_scale_min, CROP_SCALE[1]), "max_stored_size": args.max_stored_size}
    section = checked_dataset_section({**options, **geometry}, "data prepare")
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        folder, size = prepare_split(section, split, progress=args.progress, workers=args.workers)
        print(f"{args.name} {split}: {size}x{size} cache at {folder}")
    return 0
