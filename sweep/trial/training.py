"""Pretraining pieces of a trial: device/precision, optimizer and schedule, batches from the cache, the step itself.

`train_epoch` (its `augmented_batches` and `optimize_step`) is the one training code path: sweep.trial runs it, the
GPU probe (sweep.tuning.gpu_probe) measures it, and benchmarks/trial_throughput.py times it.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sweep.errors import DivergenceError
from sweep.trial import phases

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
FINAL_LR = 1e-6
WARMUP_START_FACTOR = 1.0 / 16.0
DIVERGENCE_CHECK_EVERY = 50  # iterations between host syncs that look for a non-finite loss
DEVICE_CACHE_FRACTION = 0.25  # put the base split on the GPU when it takes at most this share of free memory
_UPLOAD_CHUNK = 4096  # images per host-to-device copy when the split is moved to the GPU


@dataclass(frozen=True)
class Precision:
    """How the step computes: autocast dtype (None = fp32) and whether inputs/weights are channels-last."""

    autocast_dtype: torch.dtype | None
    channels_last: bool

    def autocast(self, device: torch.device):
        """Autocast context for `device` (a no-op for fp32)."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device.type, dtype=self.autocast_dtype)


def resolve_precision(name: str, device: torch.device) -> Precision:
    """ "auto" -> bf16 autocast + channels-last on CUDA, fp32 elsewhere; "bf16" / "fp32" as named."""
    if name == "auto":
        name = "bf16" if device.type == "cuda" else "fp32"
    if name == "bf16":
        return Precision(torch.bfloat16, channels_last=device.type == "cuda")
    return Precision(None, channels_last=False)


class WarmupCosine:
    """LR factor per iteration: linear lr/16 -> lr over `warmup_iters`, then cosine to `final_lr` at `total_iters`.

    A callable object (not a lambda) so that LambdaLR's state_dict holds its numbers and restores exactly.
    """

    def __init__(self, warmup_iters: int, total_iters: int, base_lr: float, final_lr: float = FINAL_LR) -> None:
        self.warmup_iters = int(warmup_iters)
        self.total_iters = int(total_iters)
        self.final_factor = min(1.0, final_lr / base_lr)

    def __call__(self, iteration: int) -> float:
        """Factor of the base lr for 0-based `iteration`."""
        if iteration < self.warmup_iters:
            return WARMUP_START_FACTOR + (1.0 - WARMUP_START_FACTOR) * iteration / self.warmup_iters
        span = max(1, self.total_iters - self.warmup_iters)
        progress = min(1.0, (iteration - self.warmup_iters) / span)
        return self.final_factor + (1.0 - self.final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Adam:
    """Adam with coupled L2 weight decay (torch.optim.Adam's weight_decay), as the published code; fused on CUDA."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda" or None)


def build_scheduler(
    optimizer: torch.optim.Optimizer, iters_per_epoch: int, epochs: int, warmup_epochs: int, lr: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up + cosine LambdaLR, to be stepped once per iteration."""
    schedule = WarmupCosine(warmup_epochs * iters_per_epoch, epochs * iters_per_epoch, lr)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


class BatchSource:
    """Base-split images uint8 [N, S, S, 3] and labels [N], served as shuffled batches on the training device.

    On CUDA the whole split is copied to the GPU once when it fits (DEVICE_CACHE_FRACTION of free memory); otherwise
    (and on CPU) batches are gathered from the memory-mapped array (into pinned memory, copied asynchronously).
    Every epoch draws one permutation from the shuffle generator; the last, smaller batch is kept (drop_last=False).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device) -> None:
        self.device = device
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).to(device)
        self._host_images = images
        self.images: torch.Tensor | None = None  # on the device, when the split is kept there
        if device.type == "cuda" and images.nbytes <= DEVICE_CACHE_FRACTION * torch.cuda.mem_get_info(device)[0]:
            self.images = torch.empty(images.shape, dtype=torch.uint8, device=device)
            for start in range(0, len(images), _UPLOAD_CHUNK):  # bounded host memory; the memmap is read-only
                chunk = np.array(images[start : start + _UPLOAD_CHUNK])
                self.images[start : start + len(chunk)].copy_(torch.from_numpy(chunk))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def iters_per_epoch(self, batch_size: int) -> int:
        """Number of batches per epoch (the last one may be smaller)."""
        return math.ceil(len(self) / batch_size)

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (images uint8 [B, S, S, 3], labels [B]) on the device, in a permutation from `generator`."""
        order = torch.randperm(len(self), generator=generator)
        device_order = order.to(self.device)  # one copy per epoch: no host-device sync per batch
        for start in range(0, len(self), batch_size):
            index = device_order[start : start + batch_size]
            if self.images is not None:
                images = self.images[index]
            else:
                images = self._gather_from_host(order[start : start + batch_size])
            yield images, self.labels[index]

    def _gather_from_host(self, index: torch.Tensor) -> torch.Tensor:
        batch = torch.from_numpy(np.take(self._host_images, index.numpy(), axis=0))
        if self.device.type != "cuda":
            return batch
        return batch.pin_memory().to(self.device, non_blocking=True)


def training_logits(
    backbone: nn.Module, head: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, precision: Precision
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits with the margin, margin-free logits), both float32 [B, C], of inputs [B, 3, H, W] and labels [B].

    Only the backbone runs under `precision`'s autocast; the head (normalisation, similarities, margin, β) runs
    outside it on the features cast to float32, so m reaches the logits exactly (in bf16 a margin of −0.005 rounds
    to 0 next to dot products ≥ 2; docs/protocol.md D1). The margin-free logits carry no gradient.
    """
    with precision.autocast(inputs.device):
        features = backbone(inputs)
    features = features.float()
    logits = head(features, labels)
    with torch.no_grad():
        plain_logits = head(features.detach())
    return logits, plain_logits


def prepare_inputs(
    images: torch.Tensor, labels: torch.Tensor, *, augment: Augment, generator: torch.Generator, precision: Precision
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented inputs float [B, 3, H, W] (channels-last when `precision` says) of images uint8 [B, S, S, 3], and
    the labels [B] unchanged."""
    inputs = augment(images, generator)
    if precision.channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs, labels


def optimize_step(
    backbone: nn.Module,
    head: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    precision: Precision,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on augmented inputs [B, 3, H, W] and labels [B] (on the device).

    Returns (loss [] fp32, correct [] int64) as device tensors, without a host sync; the loss is the float32
    cross-entropy of `training_logits`, `correct` counts argmax hits of the margin-free logits (with m < 0 the
    margin-adjusted accuracy is meaningless).
    """
    logits, plain_logits = training_logits(backbone, head, inputs, labels, precision)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    correct = (plain_logits.argmax(dim=1) == labels).sum()
    return loss.detach(), correct


def train_step(
    backbone: nn.Module,
    head: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    augment: Augment,
    generator: torch.Generator,
    precision: Precision,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`optimize_step` on images uint8 [B, S, S, 3] augmented first (`prepare_inputs`): (loss [], correct [])."""
    inputs, labels = prepare_inputs(images, labels, augment=augment, generator=generator, precision=precision)
    return optimize_step(backbone, head, optimizer, inputs, labels, precision)


def augmented_batches(
    source: BatchSource,
    *,
    augment: Augment,
    shuffle_generator: torch.Generator,
    augment_generator: torch.Generator,
    precision: Precision,
    batch_size: int,
    max_steps: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch (at most `max_steps` batches) of (inputs float [B, 3, H, W], labels [B]) on the training device:
    `source`'s batches in a permutation from `shuffle_generator`, augmented with `augment_generator`.

    On CUDA the next batch is gathered and augmented on a side stream while the caller's step on the current one
    runs on the main stream, so the card does not wait for augmentation. The generators are drawn from in the same
    order, for the same batches, as without the overlap (the CUDA generator's offsets advance on the host at each
    call), and never beyond the epoch or `max_steps`: the inputs are identical and a checkpoint's generator states
    are those of the batches trained on. Elsewhere the batches are prepared one by one, in order.
    """
    batches = source.batches(shuffle_generator, batch_size)
    if max_steps is not None:
        batches = itertools.islice(batches, max_steps)
    prepare = functools.partial(prepare_inputs, augment=augment, generator=augment_generator, precision=precision)
    if source.device.type != "cuda":
        for images, labels in batches:
            yield prepare(images, labels)
        return
    main, side = torch.cuda.current_stream(source.device), torch.cuda.Stream(source.device)

    def enqueue_next() -> tuple[torch.Tensor, torch.Tensor] | None:
        side.wait_stream(main)  # what the main stream wrote before (the split's upload, the step before last)
        with torch.cuda.stream(side):
            batch = next(batches, None)
            return prepare(*batch) if batch is not None else None

    pending = enqueue_next()
    while pending is not None:
        main.wait_stream(side)
        for tensor in pending:  # made on the side stream, used on the main one: keep its memory until main is done
            tensor.record_stream(main)
        current, pending = pending, enqueue_next()
        yield current


@dataclass
class EpochResult:
    """Training statistics of one epoch."""

    loss: float  # mean cross-entropy over the epoch's samples
    accuracy: float  # percent, margin-free logits
    lr: float  # learning rate of the epoch's last step
    images: int
    seconds: float
    iteration: int  # global iterations completed after the epoch

    @property
    def images_per_s(self) -> float:
        """Training throughput of the epoch."""
        return self.images / max(self.seconds, 1e-9)


def train_epoch(
    backbone: nn.Module,
    head: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    source: BatchSource,
    *,
    augment: Augment,
    shuffle_generator: torch.Generator,
    augment_generator: torch.Generator,
    precision: Precision,
    batch_size: int,
    epoch: int,
    iteration: int,
    max_steps: int | None = None,
) -> EpochResult:
    """Train one epoch (or `max_steps` batches of it); DivergenceError on the first non-finite loss.

    The loss is checked on the device every step and read by the host every DIVERGENCE_CHECK_EVERY steps and at
    the end, so the GPU is never stalled per step; the error names the first bad epoch and iteration (1-based).
    """
    backbone.train()
    head.train()
    device = source.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct_sum = torch.zeros((), dtype=torch.long, device=device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    seen, lr, start_iteration = 0, optimizer.param_groups[0]["lr"], iteration
    start = time.perf_counter()
    batches = augmented_batches(
        source,
        augment=augment,
        shuffle_generator=shuffle_generator,
        augment_generator=augment_generator,
        precision=precision,
        batch_size=batch_size,
        max_steps=max_steps,
    )
    for inputs, labels in batches:
        lr = optimizer.param_groups[0]["lr"]
        loss, correct = optimize_step(backbone, head, optimizer, inputs, labels, precision)
        if iteration == start_iteration:
            phases.mark("first step", once=True)  # a no-op unless a benchmark records (sweep.trial.phases)
        scheduler.step()
        iteration += 1
        batch = labels.shape[0]
        seen += batch
        loss_sum += loss.double() * batch
        correct_sum += correct
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), iteration, first_bad)
        if iteration % DIVERGENCE_CHECK_EVERY == 0:
            _raise_if_diverged(first_bad, epoch, start_iteration)
    _raise_if_diverged(first_bad, epoch, start_iteration)
    loss_total, correct_total = loss_sum.item(), correct_sum.item()  # host sync: the epoch's work is done
    seconds = time.perf_counter() - start
    return EpochResult(
        loss=loss_total / max(seen, 1),
        accuracy=100.0 * correct_total / max(seen, 1),
        lr=lr,
        images=seen,
        seconds=seconds,
        iteration=iteration,
    )


def _raise_if_diverged(first_bad: torch.Tensor, epoch: int, start_iteration: int) -> None:
    bad = int(first_bad.item())
    if bad >= 0:
        raise DivergenceError(
            f"training diverged: non-finite loss at epoch {epoch}, iteration {bad} "
            f"(step {bad - start_iteration} of the epoch); lower lr or check the loss settings",
            epoch=epoch,
        )
