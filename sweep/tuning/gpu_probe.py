"""The GPU probe: a few real training steps of a sweep's trial, measuring what one trial takes of its device.

`probe_trial_step(trial, …)` builds the trial's backbone and head (`sweep.trial.runner.build_model`), its optimizer,
its batched augmentation and its precision, and runs `sweep.trial.training.train_epoch` (the step a trial runs, the
augmentation overlap included) on synthetic uint8 images of the split's stored size. It reports the peak memory the
steps reserved and, on CUDA, how busy they keep the card: the kernels' time (torch.profiler, the union of the kernel
intervals) over the steps' wall time. Knows nothing of Ray: sweep.tuning.gpu_packing runs it as a Ray task on a GPU
node.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

WARMUP_STEPS = 3  # untimed: cuDNN autotuning, the allocator's first blocks, lazy CUDA initialisation
TIMED_STEPS = 8


@dataclass(frozen=True)
class ProbeFigures:
    """What the probe measured on one device."""

    device: str  # "cuda" | "cpu"
    device_name: str
    total_memory: int  # bytes of the card (0 on a CPU)
    peak_memory: int  # bytes: CUDA, the allocator's peak reservation during the steps; CPU, the process's max RSS
    busy_fraction: float | None  # CUDA: kernel time / wall time of the timed steps; None on a CPU
    step_seconds: float  # wall time per timed step
    images_per_s: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ProbeFigures:
        """Inverse of to_dict."""
        return cls(**values)


def probe_trial_step(
    trial: dict[str, Any], num_classes: int, stored_size: int, steps: int = TIMED_STEPS, warmup: int = WARMUP_STEPS
) -> ProbeFigures:
    """Run `warmup` + 2 × `steps` training steps of the trial config `trial` (a TrialConfig dict) on its device, on
    images of the stored size S = `stored_size`, with a head of `num_classes` (timed, then profiled) -> figures."""
    import torch

    from evaluation.device import resolve_device
    from sweep.schema.trial_config import TrialConfig

    config = TrialConfig.from_dict(trial)
    device = resolve_device(config.device)
    run = _StepRunner(config, num_classes, stored_size, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    run(warmup)
    started = time.perf_counter()
    images = run(steps)
    seconds = time.perf_counter() - started
    if device.type != "cuda":
        return ProbeFigures(
            device="cpu",
            device_name="cpu",
            total_memory=0,
            peak_memory=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            busy_fraction=None,
            step_seconds=seconds / steps,
            images_per_s=images / seconds,
            steps=steps,
        )
    kernel_seconds = _kernel_seconds(lambda: run(steps))
    return ProbeFigures(
        device="cuda",
        device_name=torch.cuda.get_device_name(device),
        total_memory=int(torch.cuda.get_device_properties(device).total_memory),
        peak_memory=int(torch.cuda.max_memory_reserved(device)),
        busy_fraction=min(1.0, kernel_seconds / seconds),
        step_seconds=seconds / steps,
        images_per_s=images / seconds,
        steps=steps,
    )


class _StepRunner:
    """A trial's model, optimizer, schedule, augmentation and batch source on `device`; calling it runs n steps."""

    def __init__(self, config: Any, num_classes: int, stored_size: int, device: Any) -> None:
        import numpy as np
        import torch

        import data
        from sweep.trial import training
        from sweep.trial.runner import build_model

        self.training, self.device, self.batch_size, self.iteration = training, device, config.batch_size, 0
        self.precision = training.resolve_precision(config.precision, device)
        self.backbone, self.head = build_model(config, num_classes, device, self.precision)
        images = np.random.default_rng(0).integers(
            0, 256, (2 * config.batch_size, stored_size, stored_size, 3), np.uint8
        )
        self.source = training.BatchSource(images, np.arange(len(images)) % num_classes, device)
        params = [*self.backbone.parameters(), *self.head.parameters()]
        self.optimizer = training.build_optimizer(params, config.lr, config.weight_decay, device)
        self.scheduler = training.build_scheduler(self.optimizer, 2, config.epochs, config.warmup_epochs, config.lr)
        ds = config.dataset
        self.augment = data.TrainAugment(ds.image_size, device, crop_scale=ds.crop_scale, hflip=ds.hflip)
        self.shuffle = torch.Generator().manual_seed(0)
        self.augment_generator = torch.Generator(device=device).manual_seed(1)

    def __call__(self, steps: int) -> int:
        """Run `steps` training steps (the trial's train_epoch, epochs of two batches); returns the images seen."""
        done, images = 0, 0
        while done < steps:
            result = self.training.train_epoch(
                self.backbone,
                self.head,
                self.optimizer,
                self.scheduler,
                self.source,
                augment=self.augment,
                shuffle_generator=self.shuffle,
                augment_generator=self.augment_generator,
                precision=self.precision,
                batch_size=self.batch_size,
                epoch=1,
                iteration=self.iteration,
                max_steps=steps - done,
            )  # ends with a host sync (the epoch's loss): the timing covers the device's work
            done += result.iteration - self.iteration
            self.iteration, images = result.iteration, images + result.images
        return images


def _kernel_seconds(work) -> float:
    """Seconds the GPU spent running kernels (or copies) during `work()`: the union of their intervals."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        work()
    intervals = sorted(
        (event.time_range.start, event.time_range.end)
        for event in prof.events()
        if event.device_type == DeviceType.CUDA
    )
    return busy_microseconds(intervals) / 1e6


def busy_microseconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals sorted by start (overlapping kernels count once)."""
    total, end = 0.0, float("-inf")
    for start, stop in intervals:
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total
