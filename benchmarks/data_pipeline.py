"""Data pipeline throughput: decode-once cache + batched device augmentation vs a torchvision PIL DataLoader.

Writes photo-like JPEGs (smooth random colour fields + noise, ~500x375) into a temporary imagefolder dataset, then in
one run measures, on the same images:
  (a) the one-time cache build (decode + resize to ceil(1.15 * size), threads), reported separately, and
      data.TrainAugment on batches gathered from the memory-mapped cache, on --device;
  (b) torchvision ImageFolder + RandomResizedCrop + ColorJitter(0.4, 0.4, 0.4) + flip + ToTensor + Normalize in a
      DataLoader with num_workers = os.cpu_count(), batches moved to --device.
The first batch of (a) and the first epoch of (b) (worker start-up) are warm-up and not timed.
Not a test. Default run: 1,200 images, well under 2 minutes on 2 CPU cores.
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

from data import TrainAugment, load_split  # noqa: E402


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
    root: Path, cache_dir: Path, image_size: int, batch_size: int, epochs: int, device: torch.device
) -> tuple[float, int, float, int]:
    """(build seconds, images built, augmentation seconds, images augmented) for pipeline (a)."""
    start = time.perf_counter()
    split = load_split("imagefolder", root, "base", image_size, cache_dir, progress=False)
    build_s = time.perf_counter() - start
    augment, generator = TrainAugment(image_size, device), torch.Generator().manual_seed(0)
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
    return build_s, len(split), time.perf_counter() - start, count


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
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
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
        build_s, built, aug_s, augmented = time_cached(
            root, cache_dir, args.image_size, args.batch_size, args.epochs, device
        )
        ref_s, referenced = time_reference(root, args.image_size, args.batch_size, args.epochs, device, args.workers)

    rows = [
        ("(a) decode-once cache build (one time)", built, build_s),
        (f"(a) TrainAugment from cache on {device}", augmented, aug_s),
        (f"(b) torchvision PIL DataLoader, {args.workers} workers", referenced, ref_s),
    ]
    print(f"\n{'pipeline':<48} {'images':>8} {'seconds':>8} {'images/s':>10}")
    for name, count, seconds in rows:
        print(f"{name:<48} {count:>8} {seconds:>8.2f} {count / seconds:>10.0f}")
    ratio = (augmented / aug_s) / (referenced / ref_s)
    print(
        f"\nbatched augmentation vs reference: {ratio:.1f}x images/s (size {args.image_size}, batch {args.batch_size})"
    )
    per_epoch_saving = args.images / (referenced / ref_s) - args.images / (augmented / aug_s)
    if per_epoch_saving > 0:
        print(f"the one-time build costs {build_s / per_epoch_saving:.1f} epochs of the reference's extra time")


if __name__ == "__main__":
    main()
