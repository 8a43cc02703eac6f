"""`resources.gpu: auto`: how much of a GPU each trial of a sweep asks Ray for, decided from a probe of its real step.

Before the Tuner starts, `trial_gpus(spec, experiment)` runs the GPU probe (sweep.tuning.gpu_probe) as a Ray task on one
GPU of the cluster, so on a node that has the GPUs, and `decide` (a pure function of the probe's figures) packs as
many trials onto a card as fit in its memory with headroom and still find it idle: a trial that keeps the card busy
half of the time or more gets a whole GPU. The decision, with the figures, is logged and written to the experiment
(gpu_packing.json: sweep.storage.gpu_packing_file); a resumed sweep (and its promotion's extra seeds, its margin study)
reads it back instead of probing again. A cluster without GPUs gets 0 (trials on CPUs), saying so; a number in the spec
is used as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sweep.schema.spec import SweepSpec
from sweep.storage import gpu_packing_file
from sweep.storage.experiment import Experiment
from sweep.storage.gpu_packing_file import PackingDecision
from sweep.tuning.gpu_probe import ProbeFigures

AUTO = "auto"
MEMORY_HEADROOM = 0.8  # share of a card's memory the packed trials may plan to take
CUDA_CONTEXT_BYTES = 600 * 2**20  # per process, outside PyTorch's allocator: CUDA context, cuBLAS/cuDNN handles
WHOLE_GPU_BUSY = 0.5  # a trial keeping the card at least this busy gets a whole GPU: sharing would only slow it
TARGET_LOAD = 1.5  # packed trials' summed busy share: above 1, the card stays busy while some start or validate
MAX_TRIALS_PER_GPU = 16
PACKING_THROUGHPUT_SHARE = 0.9  # the decided pack is right when it gives this share of the best throughput measured
_FRACTION_STEP = 1e-4  # Ray's resolution for fractional resources


def decide(figures: ProbeFigures | None, cluster_gpus: float, split_bytes: int = 0) -> PackingDecision:
    """The per-trial GPU share of a trial that `figures` measured on one card of a cluster with `cluster_gpus` GPUs;
    `split_bytes`: the base split the trial keeps on the card (sweep.trial.training.BatchSource) when it fits."""
    if cluster_gpus <= 0 or figures is None or figures.device != "cuda":
        return PackingDecision(0.0, 0, "the cluster has no GPU: trials run on CPUs")
    from sweep.trial.training import DEVICE_CACHE_FRACTION

    card, busy = figures.total_memory, figures.busy_fraction or 0.0
    on_card = split_bytes if split_bytes <= DEVICE_CACHE_FRACTION * card else 0
    trial_memory = figures.peak_memory + CUDA_CONTEXT_BYTES + on_card
    by_memory = math.floor(MEMORY_HEADROOM * card / trial_memory)
    by_compute = 1 if busy >= WHOLE_GPU_BUSY else max(1, math.floor(TARGET_LOAD / max(busy, 1e-6)))
    trials = max(1, min(by_memory, by_compute, MAX_TRIALS_PER_GPU))
    gpu = 1.0 if trials == 1 else math.floor(1 / trials / _FRACTION_STEP) * _FRACTION_STEP
    memory = f"{_gib(trial_memory)} per trial of {_gib(card)} ({figures.device_name}): {by_memory} fit"
    compute = f"one trial keeps the card {100 * busy:.0f}% busy"
    if trials == 1:
        why = "it needs most of the card's memory" if by_memory <= 1 else "it keeps the card busy on its own"
        reason = f"a whole GPU ({why}; {memory}; {compute})"
    else:
        limit = "memory" if by_memory == trials else "compute" if by_compute == trials else "the cap"
        reason = f"{trials} trials per GPU, limited by {limit} ({memory}; {compute})"
    return PackingDecision(round(gpu, 4), trials, reason, figures.to_dict(), trial_memory)


@dataclass(frozen=True)
class PackingCheck:
    """A packing decision checked against the card: total throughput of the decided number of trials at once
    against the best of the numbers timed (benchmarks/gpu_sweep_check.py times 1, N and 2 N)."""

    decided: int
    best: int | None  # trials at once that gave the most images/s (None: every count failed)
    share: float | None  # the decided count's images/s over the best's (None: it failed)
    right: bool
    reason: str


def check_packing(images_per_s: dict[int, float | None], decided: int) -> PackingCheck:
    """Whether `decided` trials at once on one card reach PACKING_THROUGHPUT_SHARE of the best total throughput in
    `images_per_s` (trials at once -> images/s; None where a trial failed, e.g. ran out of memory)."""
    finished = {count: rate for count, rate in images_per_s.items() if rate is not None}
    failed = sorted(count for count, rate in images_per_s.items() if rate is None)
    if decided not in images_per_s:
        raise ValueError(f"the decided count {decided} was not timed (timed: {sorted(images_per_s)})")
    if not finished:
        return PackingCheck(decided, None, None, False, f"every count failed ({failed})")
    best = max(finished, key=lambda count: finished[count])
    if decided in failed:
        return PackingCheck(decided, best, None, False, f"wrong: {decided} trials at once failed (out of memory?)")
    share = finished[decided] / finished[best]
    right = share >= PACKING_THROUGHPUT_SHARE
    reason = (
        f"{'right' if right else 'wrong'}: {decided} trials at once give {100 * share:.0f}% of the best throughput "
        f"({best} at once, {finished[best]:.0f} images/s); the rule asks for {100 * PACKING_THROUGHPUT_SHARE:.0f}%"
    )
    if failed:
        reason += f"; failed: {', '.join(map(str, failed))} at once"
    return PackingCheck(decided, best, share, right, reason)


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


def trial_gpus(spec: SweepSpec, experiment: Experiment) -> float:
    """GPUs per trial: the spec's number, or (auto) the experiment's recorded decision, made now if there is none.
    Needs a Ray session when it has to decide."""
    if spec.resources.gpu != AUTO:
        return float(spec.resources.gpu)
    decision = gpu_packing_file.load(experiment)
    if decision is None:
        decision = decide_for_cluster(spec, experiment)
        gpu_packing_file.save(experiment, decision)
    return decision.gpu


def decide_for_cluster(spec: SweepSpec, experiment: Experiment) -> PackingDecision:
    """Probe the spec's trial step on one GPU of the connected cluster (none: 0) and decide; logs the decision."""
    import ray

    cluster_gpus = float(ray.cluster_resources().get("GPU", 0.0))
    if cluster_gpus <= 0:
        decision = decide(None, 0.0)
    else:
        figures = run_probe(spec, experiment, num_gpus=1)
        decision = decide(figures, cluster_gpus, base_split_bytes(spec))
    print(decision.describe(), flush=True)
    return decision


def run_probe(spec: SweepSpec, experiment: Experiment, num_gpus: float, **probe_kwargs: Any) -> ProbeFigures:
    """The GPU probe of `spec`'s trial step, run as a Ray task asking for `num_gpus` (0: on a CPU) and the spec's
    CPUs, so on a node that has what it asks for."""
    import ray

    from sweep.tuning.gpu_probe import probe_trial_step

    task = ray.remote(num_gpus=num_gpus, num_cpus=spec.resources.cpu, max_retries=0)(probe_trial_step)
    return ray.get(task.remote(*probe_arguments(spec, experiment), **probe_kwargs))


def probe_arguments(spec: SweepSpec, experiment: Experiment) -> tuple[dict[str, Any], int, int]:
    """(trial config, base classes, stored size S) the probe runs: the spec's trial at a representative point of the
    search space, each searched value at its upper bound (the largest DropBlock, the costliest step)."""
    from sweep.tuning import space

    point = {name: parameter.bounds()[1] for name, parameter in spec.searched().items()}
    return (space.trial_config(spec, point, experiment.episodes_dir), *_base_split_shape(spec))


def _base_split_shape(spec: SweepSpec) -> tuple[int, int]:
    """(classes, stored size S) of the spec's base split, from its file list (no image is read)."""
    import data
    from data.splits import split_stored_size

    d = spec.dataset
    base = data.build_dataset(d.name, d.root, "base")
    return len(base.class_names), split_stored_size(base, d)


def base_split_bytes(spec: SweepSpec) -> int:
    """Bytes of the spec's cached base split (uint8 [N, S, S, 3])."""
    import data

    d = spec.dataset
    images = len(data.build_dataset(d.name, d.root, "base").labels)
    _, stored = _base_split_shape(spec)
    return images * stored * stored * 3
