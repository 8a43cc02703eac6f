"""Data pipeline throughput and size: decode-once cache + batched device augmentation vs a torchvision PIL DataLoader.

Writes photo-like JPEGs (smooth random colour fields + noise, 500x375, mini-ImageNet's typical size) into a temporary
imagefolder dataset, then in one run measures, on the same images:
  (a) the one-time cache build (decode + squash to S x S, S = data.geometry.stored_size: 297 for 84 px at crop scale
      0.08; --max-stored-size 97 gives the former ceil(1.15 * size) cache), its bytes per image, and
      data.TrainAugment on batches gathered from the memory-mapped cache, on --device;
  (b) torchvision ImageFolder + RandomResizedCrop + ColorJitter(0.4, 0.4, 0.4) + flip + ToTensor + Normalize in a
      DataLoader with num_workers = os.cpu_count(), batches moved to --device (skip with --skip-reference).
The first batch of (a) and the first epoch of (b) (worker start-up) are warm-up and not timed. It then prints the
cache size of mini-ImageNet (38,400 base + 9,600 val + 12,000 novel images) and CUB (11,788 images) at each published
input size, from data.geometry.stored_size with a native side of --native (375: 500x375 images), and the build time
of mini-ImageNet extrapolated from (a)'s rate.
Not a test. Default run: 1,200 images, a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import DatasetConfig, TrainAugment, load_split  # noqa: E402
from data.augment import NORMALIZE_MEAN, NORMALIZE_STD  # noqa: E402
from data.geometry import stored_size  # noqa: E402

DATASET_IMAGES = {"mini-ImageNet": 38_400 + 9_600 + 12_000, "CUB": 11_788}
PUBLISHED_SIZES = {"conv4 / resnet12 (84)": 84, "wrn28_10 (80)": 80, "resnet18 (224)": 224}


def photo_like(seed: int, width: int = 500, height: int = 375) -> Image.Image:
    """A smooth random colour field with texture noise, like a natural photo to a JPEG codec."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    detail = Image.fromarray(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    pixels = 0.7 * np.asarray(coarse, dtype=np.float32) + 0.3 * np.asarray(detail, dtype=np.float32)
    pixels += rng.integers(-12, 13, pixels.shape, dtype=np.int8)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_dataset(root: Path, n_images: int, n_classes: int) -> None:
    """root/base/c<k>/<i>.jpg, n_images in total, written in parallel."""

    def write(i: int) -> None:
        folder = root / "base" / f"c{i % n_classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        photo_like(i).save(folder / f"{i:06d}.jpg", quality=90)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write, range(n_images)))


def sync(device: torch.device) -> None:
    """Wait for queued device work so timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cached(
    root: Path, cache_dir: Path, args: argparse.Namespace, device: torch.device
) -> tuple[float, int, float, int, int, float]:
    """(build seconds, images built, augmentation seconds, images augmented, S, cache bytes per image) of (a)."""
    image_size, batch_size, epochs = args.image_size, args.batch_size, args.epochs
    start = time.perf_counter()
    crop_scale = (args.crop_scale_min, 1.0)
    section = DatasetConfig(
        name="imagefolder",
        root=str(root),
        cache_dir=str(cache_dir),
        image_size=image_size,
        crop_scale=crop_scale,
        max_stored_size=args.max_stored_size,
    )
    split = load_split(section, "base", progress=False)
    build_s = time.perf_counter() - start
    bytes_per_image = sum(f.stat().st_size for f in split.path.iterdir()) / len(split)
    augment, generator = TrainAugment(image_size, device, crop_scale=crop_scale), torch.Generator().manual_seed(0)
    order = torch.Generator().manual_seed(1)

    def batches():
        for _ in range(epochs):
            permutation = torch.randperm(len(split), generator=order).numpy()
            for begin in range(0, len(split), batch_size):
                index = np.sort(permutation[begin : begin + batch_size])
                batch = torch.from_numpy(split.images[index])
                yield batch.pin_memory() if device.type == "cuda" else batch

    stream = batches()
    augment(next(stream), generator)  # warm-up
    sync(device)
    count, start = 0, time.perf_counter()
    for batch in stream:
        out = augment(batch, generator)
        count += out.shape[0]
    sync(device)
    return build_s, len(split), time.perf_counter() - start, count, split.stored_size, bytes_per_image


def print_dataset_sizes(native: int, crop_scale_min: float, build_s_per_image: float) -> None:
    """Cache size of mini-ImageNet and CUB at each published input size, before (ceil(1.15·s)) and now."""
    print(f"\ncache of whole datasets (native side {native} px assumed, crop scale {crop_scale_min}; uint8 S x S x 3)")
    print(
        f"{'input size':<24} {'S before':>8} {'S now':>6} {'MB/image':>9}"
        + "".join(f" {k + ' GB':>17}" for k in DATASET_IMAGES)
    )
    for name, size in PUBLISHED_SIZES.items():
        before, now = -(-size * 115 // 100), stored_size(size, crop_scale_min, native=native)
        totals = "".join(
            f" {n * before**2 * 3 / 1e9:>7.2f} -> {n * now**2 * 3 / 1e9:>6.2f}" for n in DATASET_IMAGES.values()
        )
        print(f"{name:<24} {before:>8} {now:>6} {now**2 * 3 / 1e6:>9.3f}{totals}")
    minutes = DATASET_IMAGES["mini-ImageNet"] * build_s_per_image / 60
    print(f"mini-ImageNet build at (a)'s rate on this machine: {minutes:.0f} min (extrapolated, {os.cpu_count()} CPUs)")


def time_reference(
    root: Path, image_size: int, batch_size: int, epochs: int, device: torch.device, workers: int
) -> tuple[float, int]:
    """(seconds, images) for pipeline (b) over epochs 2..epochs."""
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size),
            transforms.ColorJitter(0.4, 0.4, 0.4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(NORMALIZE_MEAN, NORMALIZE_STD),
        ]
    )
    loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(str(root / "base"), transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    for x, _ in loader:  # warm-up epoch: worker start-up
        x.to(device, non_blocking=True)
    sync(device)
    count, start = 0, time.perf_counter()
    for _ in range(epochs - 1):
        for x, _ in loader:
            count += x.to(device, non_blocking=True).shape[0]
    sync(device)
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200, help="JPEGs to generate (default 1200)")
    parser.add_argument("--classes", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per pipeline (the reference's first is warm-up; default 3)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="reference DataLoader workers")
    parser.add_argument("--crop-scale-min", type=float, default=0.08, help="low end of crop_scale (sets S)")
    parser.add_argument("--max-stored-size", type=int, default=None, help="dataset.max_stored_size (97: the old S)")
    parser.add_argument("--native", type=int, default=375, help="native side assumed for the dataset projection")
    parser.add_argument("--skip-reference", action="store_true", help="do not time the PIL DataLoader (b)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2")
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory(prefix="negmargin-bench-") as tmp:
        root, cache_dir = Path(tmp) / "images", Path(tmp) / "cache"
        start = time.perf_counter()
        write_dataset(root, args.images, args.classes)
        print(
            f"wrote {args.images} JPEGs (500x375) in {time.perf_counter() - start:.1f}s; device {device}, "
            f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
            flush=True,
        )
        build_s, built, aug_s, augmented, size, bytes_per_image = time_cached(root, cache_dir, args, device)
        if not args.skip_reference:
            ref_s, referenced = time_reference(
                root, args.image_size, args.batch_size, args.epochs, device, args.workers
            )

    print(f"\ncache: S = {size} for input {args.image_size} px, {bytes_per_image / 1e3:.1f} kB per image on disk")
    rows = [
        ("(a) decode-once cache build (one time)", built, build_s),
        (f"(a) TrainAugment from the {size}-px cache on {device}", augmented, aug_s),
    ]
    if not args.skip_reference:
        rows.append((f"(b) torchvision PIL DataLoader, {args.workers} workers", referenced, ref_s))
    print(f"\n{'pipeline':<52} {'images':>8} {'seconds':>8} {'images/s':>10}")
    for name, count, seconds in rows:
        print(f"{name:<52} {count:>8} {seconds:>8.2f} {count / seconds:>10.0f}")
    if not args.skip_reference:
        ratio = (augmented / aug_s) / (referenced / ref_s)
        print(
            f"\nbatched augmentation vs reference: {ratio:.1f}x images/s "
            f"(size {args.image_size}, batch {args.batch_size})"
        )
        per_epoch_saving = args.images / (referenced / ref_s) - args.images / (augmented / aug_s)
        if per_epoch_saving > 0:
            print(f"the one-time build costs {build_s / per_epoch_saving:.1f} epochs of the reference's extra time")
    print_dataset_sizes(args.native, args.crop_scale_min, build_s / built)


if __name__ == "__main__":
    main()
