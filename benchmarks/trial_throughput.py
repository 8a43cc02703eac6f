"""Training images/s of a trial's step versus (a) the raw backbone and (b) a reference PIL DataLoader pipeline.

All three run the same optimisation step (sweep.trial.training.train_step: forward, margin loss, backward, Adam step):
- raw:       synthetic float batches already on the device, no augmentation (the ceiling);
- trial:     sweep.trial.training.train_epoch, exactly as a trial runs it: uint8 cache -> device batches -> batched
             augmentation (data.TrainAugment) on the device -> step;
- reference: the published pipeline: JPEG files, a torchvision DataLoader with PIL transforms (RandomResizedCrop,
             ColorJitter(0.4, 0.4, 0.4), flip) in worker processes, then the step.
The images are synthetic (smooth random pictures of --source-size pixels); the JPEG size defaults to the cache's
stored size, which flatters the reference (real mini-ImageNet JPEGs are ~500x375).

    python benchmarks/trial_throughput.py --backbone resnet12 --image-size 84 --batch-size 256 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data  # noqa: E402
import models  # noqa: E402
from data.augment import NORMALIZE_MEAN, NORMALIZE_STD  # noqa: E402
from data.geometry import stored_size  # noqa: E402
from evaluation.device import resolve_device  # noqa: E402
from sweep.trial import training  # noqa: E402

TARGET_VS_RAW = 0.95  # issue 23: augmentation overlapped with the step (was 0.85)
TARGET_VS_REFERENCE = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet12", choices=models.list_backbones())
    p.add_argument("--loss", default="neg-cosine", choices=models.LOSSES)
    p.add_argument("--image-size", type=int, default=84)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=30, help="timed steps per pipeline")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (cudnn autotune, workers start)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--num-classes", type=int, default=64)
    p.add_argument("--images", type=int, default=0, help="images in the synthetic cache (default 8 batches)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="reference DataLoader workers")
    p.add_argument("--source-size", type=int, default=0, help="JPEG side for the reference (default: cache size S)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args(argv)


def smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """uint8 [n, size, size, 3] pictures: upsampled low-resolution noise (compresses like photos, not like noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=g)
    pictures = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return (pictures.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy().copy()


class Model:
    """Backbone + head + Adam on the device, as a trial builds them."""

    def __init__(self, args: argparse.Namespace, device: torch.device, precision: training.Precision) -> None:
        torch.manual_seed(0)
        self.backbone = models.build_backbone(args.backbone)
        in_dim = models.feature_dim(self.backbone, args.image_size)
        margin = -0.02 if args.loss.startswith("neg-") else 0.0
        self.head = models.build_head(args.loss, in_dim, args.num_classes, 10.0, margin)
        self.backbone.to(device)
        self.head.to(device)
        if precision.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        params = [*self.backbone.parameters(), *self.head.parameters()]
        self.optimizer = training.build_optimizer(params, 3e-3, 1e-4, device)
        self.scheduler = training.build_scheduler(self.optimizer, 100, 400, 100, 3e-3)
        self.precision = precision

    def step(self, images: torch.Tensor, labels: torch.Tensor, augment, generator) -> torch.Tensor:
        """One sweep.trial.training.train_step; returns the loss tensor."""
        loss, _ = training.train_step(
            self.backbone,
            self.head,
            self.optimizer,
            images,
            labels,
            augment=augment,
            generator=generator,
            precision=self.precision,
        )
        return loss


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_raw(model: Model, args: argparse.Namespace, device: torch.device) -> float:
    """images/s of the step on float batches already on the device (no augmentation)."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device, generator=g)
    y = torch.randint(0, args.num_classes, (args.batch_size,), device=device, generator=g)

    def identity(images, generator):
        return images

    for _ in range(args.warmup):
        model.step(x, y, identity, g)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = model.step(x, y, identity, g)
    loss.item()
    synchronize(device)
    return args.steps * args.batch_size / (time.perf_counter() - start)


def measure_trial(model: Model, args: argparse.Namespace, device: torch.device, images: np.ndarray) -> float:
    """images/s of sweep.trial.training.train_epoch: cache -> device batches -> TrainAugment -> step."""
    labels = np.arange(len(images)) % args.num_classes
    source = training.BatchSource(images, labels, device)
    augment = data.TrainAugment(args.image_size, device)
    shuffle = torch.Generator().manual_seed(0)
    aug_gen = torch.Generator(device=device).manual_seed(1)

    def run(steps: int) -> tuple[int, float]:
        done, seen, seconds, iteration = 0, 0, 0.0, 0
        while done < steps:
            result = training.train_epoch(
                model.backbone,
                model.head,
                model.optimizer,
                model.scheduler,
                source,
                augment=augment,
                shuffle_generator=shuffle,
                augment_generator=aug_gen,
                precision=model.precision,
                batch_size=args.batch_size,
                epoch=1,
                iteration=iteration,
                max_steps=steps - done,
            )
            done += result.iteration - iteration
            iteration = result.iteration
            seen += result.images
            seconds += result.seconds
        return seen, seconds

    run(args.warmup)
    seen, seconds = run(args.steps)
    return seen / seconds


def write_jpegs(images: np.ndarray, folder: Path, size: int) -> list[Path]:
    """Each image resized to size² and saved as JPEG (quality 90) under `folder`."""
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i:06d}.jpg"
        Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


class JpegDataset(torch.utils.data.Dataset):
    """The reference input pipeline: PIL decode + torchvision transforms per image."""

    def __init__(self, paths: list[Path], num_classes: int, image_size: int) -> None:
        from torchvision import transforms

        self.paths = paths
        self.num_classes = num_classes
        self.transform = transforms.Compose(
            [
                transforms.RandomResizedCrop(image_size),
                transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(NORMALIZE_MEAN, NORMALIZE_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB")), i % self.num_classes


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def measure_reference(model: Model, args: argparse.Namespace, device: torch.device, images: np.ndarray) -> float:
    """images/s of the step fed by a torchvision PIL DataLoader over JPEG files (args.workers processes)."""
    source_size = args.source_size or images.shape[1]
    with tempfile.TemporaryDirectory(prefix="negmargin-bench-") as folder:
        paths = write_jpegs(images, Path(folder), source_size)
        loader = torch.utils.data.DataLoader(
            JpegDataset(paths, args.num_classes, args.image_size),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
            persistent_workers=args.workers > 0,
            worker_init_fn=_one_thread if args.workers > 0 else None,
        )

        def identity(batch, generator):
            return batch

        def batches() -> Generator[tuple[torch.Tensor, torch.Tensor], None, None]:
            while True:
                for x, y in loader:
                    yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

        stream = batches()
        for _ in range(args.warmup):
            batch, labels = next(stream)
            model.step(batch, labels, identity, None)
        synchronize(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            batch, labels = next(stream)
            loss = model.step(batch, labels, identity, None)
        loss.item()
        synchronize(device)
        seconds = time.perf_counter() - start
        stream.close()
        loader = None  # type: ignore[assignment]  # ends the persistent workers before the JPEG folder is removed
    return args.steps * args.batch_size / seconds


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print the table."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precision = training.resolve_precision(args.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    stored = stored_size(args.image_size)
    n_images = args.images or 8 * args.batch_size
    images = smooth_images(n_images, stored, seed=0)
    model = Model(args, device, precision)

    results = {"raw": measure_raw(model, args, device), "trial": measure_trial(model, args, device, images)}
    if not args.skip_reference:
        results["reference"] = measure_reference(model, args, device, images)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(
        f"\ntrial throughput: {args.backbone} {args.loss} {args.image_size}px batch {args.batch_size}, "
        f"{args.steps} steps, {device} [{name}], precision {args.precision}"
    )
    labels = {
        "raw": "raw backbone (synthetic batch on device)",
        "trial": "trial step (uint8 cache -> device augment)",
        "reference": f"reference PIL DataLoader ({args.workers} workers)",
    }
    print(f"{'pipeline':<48} {'images/s':>10} {'vs raw':>8}")
    for key, value in results.items():
        print(f"{labels[key]:<48} {value:>10.1f} {value / results['raw']:>7.0%}")
    checks = {"trial_vs_raw": results["trial"] / results["raw"]}
    print(f"trial / raw = {checks['trial_vs_raw']:.2f} (target >= {TARGET_VS_RAW} on a GPU)")
    if "reference" in results:
        checks["trial_vs_reference"] = results["trial"] / results["reference"]
        print(f"trial / reference = {checks['trial_vs_reference']:.2f}x (target >= {TARGET_VS_REFERENCE}x on a GPU)")
    if args.json:
        record = {
            "device": str(device),
            "device_name": name,
            "args": {k: str(v) for k, v in vars(args).items()},
            "images_per_s": results,
            **checks,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
