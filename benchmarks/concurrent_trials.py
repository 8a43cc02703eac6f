"""N trials at once on one device: total training throughput and how busy the GPU is, for N = 1, 4, 12.

Each trial is a separate `negmargin train` process (`python -m sweep.cli train`, no Ray) of the default preset's
trial (glyphs-mini, conv4, 24 px, batch 64, m = 0) for --epochs epochs, validated once at the end; all N start
together. The image cache and the validation episodes are built first, so the trials find them (as in a sweep).
While they run, the GPU's utilisation (NVML: the share of time a kernel was running) and memory are sampled every
0.2 s. Throughput = N × epochs × base images / wall time of the slowest.

    python benchmarks/concurrent_trials.py --counts 1,4,12 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="1,4,12", help="numbers of simultaneous trials")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dataset", default="glyphs-mini")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="OMP/torch threads per trial process")
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def trial_yaml(args: argparse.Namespace, work: Path) -> Path:
    """The trial config file every process trains."""
    from sweep.schema import spec as spec_module

    config = spec_module.load(spec_module.preset_path("default")).trial_settings()
    config["dataset"].update(name=args.dataset, cache_dir=str(work / "cache"))
    config["validation"]["episodes_dir"] = str(work / "episodes")
    config.update(epochs=args.epochs, val_every=args.epochs, warmup_epochs=0, device=args.device)
    config.update(margin=0.0, scale=10.0, weight_decay=5e-4)
    path = work / "trial.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def prepare(config_path: Path) -> int:
    """Build the caches and episode sets the trials read; returns the number of base images."""
    import data
    from sweep.trial import TrialConfig
    from sweep.trial.runner import training_base, validation_episodes

    config = TrialConfig.from_yaml(config_path)
    val = data.load_split(config.dataset, "val", progress=False)
    for shot in config.validation.shots:
        validation_episodes(config, val, shot)
    return len(training_base(config).labels)


class GpuSampler:
    """Samples NVML utilisation (%) and used memory (bytes) of GPU 0 every `period` s in a thread; inert without."""

    def __init__(self, period: float = 0.2) -> None:
        self.period = period
        self.busy: list[float] = []
        self.memory: list[float] = []
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # no NVML (no GPU, or nvidia-ml-py missing): nothing to sample
            self._nvml = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while self._nvml is not None and not self._stop.wait(self.period):
            self.busy.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            self.memory.append(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def summary(self) -> dict:
        """Mean utilisation (%), peak used memory (GiB), or Nones."""
        if not self.busy:
            return {"gpu_busy_percent": None, "gpu_memory_gib": None}
        return {"gpu_busy_percent": sum(self.busy) / len(self.busy), "gpu_memory_gib": max(self.memory) / 2**30}


def run_at_once(count: int, config_path: Path, work: Path, threads: int) -> dict:
    """Start `count` training processes together, wait for all -> wall seconds and GPU figures."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    outs = [work / f"n{count}" / f"trial{i}" for i in range(count)]
    command = [sys.executable, "-m", "sweep.cli", "train", str(config_path), "--no-progress"]
    with GpuSampler() as sampler:
        started = time.perf_counter()
        processes = [
            subprocess.Popen([*command, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for out in outs
        ]
        errors = [p.communicate()[1] for p in processes]
        wall = time.perf_counter() - started
    failed = [e.decode()[-500:] for p, e in zip(processes, errors, strict=True) if p.returncode != 0]
    if failed:
        raise SystemExit(f"{len(failed)} of {count} trials failed; last error:\n{failed[-1]}")
    accuracy = [json.loads((out / "summary.json").read_text())["final_metrics"]["val_acc_5shot"] for out in outs]
    return {"trials": count, "wall_s": wall, "val_acc_5shot_mean": sum(accuracy) / count, **sampler.summary()}


def main() -> None:
    """Run each count, print the table."""
    args = parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory(prefix="negmargin-concurrent-") as temporary:
        work = (args.work_dir or Path(temporary)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        config_path = trial_yaml(args, work)
        images = prepare(config_path)
        print(
            f"\nconcurrent negmargin train processes: {args.dataset}, conv4, 24 px, batch 64, {args.epochs} epochs, "
            f"{images} base images; {time.strftime('%Y-%m-%d')}"
        )
        print(f"{'trials':>6} {'wall s':>8} {'images/s':>10} {'vs one':>7} {'GPU busy %':>11} {'GPU mem GiB':>12}")
        rows = []
        for count in counts:  # each row printed as soon as it is measured
            row = run_at_once(count, config_path, work, args.threads)
            row["images_per_s"] = count * args.epochs * images / row["wall_s"]
            rows.append(row)
            busy, memory = row["gpu_busy_percent"], row["gpu_memory_gib"]
            ratio = row["images_per_s"] / (rows[0]["images_per_s"] / rows[0]["trials"])
            busy_cell = "-" if busy is None else f"{busy:.0f}"
            memory_cell = "-" if memory is None else f"{memory:.1f}"
            print(
                f"{count:>6} {row['wall_s']:>8.1f} {row['images_per_s']:>10.0f} {ratio:>6.1f}x"
                f" {busy_cell:>11} {memory_cell:>12}",
                flush=True,
            )
            if args.json:  # rewritten after each row: a run stopped by its time limit keeps what it measured
                args.json.write_text(json.dumps({"epochs": args.epochs, "images": images, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
