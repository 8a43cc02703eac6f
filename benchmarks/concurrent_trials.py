"""N trials at once on one device: total training throughput and how busy the GPU is, for N = 1, 4, 12.

Each trial is a separate `negmargin train` process (`python -m sweep.cli train`, no Ray) of the default preset's
trial (glyphs-mini, conv4, 24 px, batch 64, m = 0), or of a sweep spec's trial (--spec), for --epochs epochs,
validated once at the end; all N start together. The image cache and the validation episodes are built first, so the
trials find them (as in a sweep). While they run, the GPU's utilisation (the share of time a kernel was running) and
memory are sampled from nvidia-smi every 0.2 s (benchmarks/gpu_sampler.py). Throughput = N × epochs × base images /
wall time of the slowest. A count whose trials fail (out of memory, say) is a row without throughput.
benchmarks/gpu_sweep_check.py (the packing check) times 1, the packing decision's N and 2 N with it.

    python benchmarks/concurrent_trials.py --counts 1,4,12 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from gpu_sampler import GpuSampler  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="1,4,12", help="numbers of simultaneous trials")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument(
        "--spec", type=Path, default=None, help="a sweep spec whose trial to run (default: the default preset)"
    )
    p.add_argument(
        "--dataset", default=None, help="dataset name (default: the spec's; the default preset: glyphs-mini)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="OMP/torch threads per trial process")
    p.add_argument("--work-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def trial_yaml(args: argparse.Namespace, work: Path) -> Path:
    """The trial config file every process trains."""
    from sweep.schema import spec as spec_module

    if args.spec is None:
        config = spec_module.load(spec_module.preset_path("default")).trial_settings()
        config["dataset"].update(name=args.dataset or "glyphs-mini", cache_dir=str(work / "cache"))
    else:  # the sweep's own dataset section: its cache is the one the sweep built
        config = spec_module.load(args.spec).trial_settings()
        if args.dataset:
            config["dataset"]["name"] = args.dataset
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


def run_at_once(count: int, config_path: Path, work: Path, threads: int) -> dict:
    """Start `count` training processes together, wait for all -> wall seconds and GPU figures; a row with
    `failed` > 0 (and `out_of_memory`, the last error's tail) when some did not finish."""
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": f"{REPO}{os.pathsep + path if path else ''}"}
    outs = [work / f"n{count}" / f"trial{i}" for i in range(count)]
    command = [sys.executable, "-m", "sweep.cli", "train", str(config_path), "--no-progress"]
    with GpuSampler(period=0.2) as sampler:
        started = time.perf_counter()
        processes = [
            subprocess.Popen([*command, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for out in outs
        ]
        errors = [p.communicate()[1] for p in processes]
        wall = time.perf_counter() - started
    row = {"trials": count, "wall_s": wall, **sampler.summary()}
    failed = [e.decode(errors="replace") for p, e in zip(processes, errors, strict=True) if p.returncode != 0]
    if failed:
        out_of_memory = any("out of memory" in error.lower() for error in failed)
        return {**row, "failed": len(failed), "out_of_memory": out_of_memory, "error": failed[-1][-500:]}
    accuracy = [json.loads((out / "summary.json").read_text())["final_metrics"]["val_acc_5shot"] for out in outs]
    return {**row, "failed": 0, "out_of_memory": False, "val_acc_5shot_mean": sum(accuracy) / count}


def measure(
    counts: list[int],
    config_path: Path,
    work: Path,
    epochs: int,
    images: int,
    threads: int,
    json_path: Path | None,
) -> list[dict]:
    """Run each count of simultaneous trials of `config_path` (prepared: caches and episodes built; `images` base
    images an epoch), printing a row as soon as it is measured -> the rows, images_per_s None where trials failed."""
    print(f"{'trials':>6} {'wall s':>8} {'images/s':>10} {'vs one':>7} {'GPU busy %':>11} {'GPU mem GiB':>12}")
    rows: list[dict] = []
    for count in counts:
        row = run_at_once(count, config_path, work, threads)
        row["images_per_s"] = None if row["failed"] else count * epochs * images / row["wall_s"]
        rows.append(row)
        one = next((r["images_per_s"] / r["trials"] for r in rows if r["images_per_s"]), None)
        busy, memory = row["gpu_busy_percent"], row["gpu_memory_gib"]
        if row["images_per_s"] is None:
            why = "out of memory" if row["out_of_memory"] else "failed"
            cells = f"{'-':>10} {why}: {row['failed']} of {count} trials; last error: {row['error'][-200:]!r}"
        else:
            ratio = f"{row['images_per_s'] / one:.1f}x" if one else "-"
            busy_cell = "-" if busy is None else f"{busy:.0f}"
            memory_cell = "-" if memory is None else f"{memory:.1f}"
            cells = f"{row['images_per_s']:>10.0f} {ratio:>7} {busy_cell:>11} {memory_cell:>12}"
        print(f"{count:>6} {row['wall_s']:>8.1f} {cells}", flush=True)
        if json_path:  # rewritten after each row: a run stopped by its time limit keeps what it measured
            json_path.write_text(json.dumps({"epochs": epochs, "images": images, "rows": rows}, indent=2))
    return rows


def main() -> None:
    """Run each count, print the table."""
    args = parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory(prefix="negmargin-concurrent-") as temporary:
        work = (args.work_dir or Path(temporary)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        config_path = trial_yaml(args, work)
        images = prepare(config_path)
        config = yaml.safe_load(config_path.read_text())
        d = config["dataset"]
        print(
            f"\nconcurrent negmargin train processes: {d['name']}, {config['backbone']}, {d['image_size']} px, batch "
            f"{config['batch_size']}, {args.epochs} epochs, {images} base images; {time.strftime('%Y-%m-%d')}"
        )
        rows = measure(counts, config_path, work, args.epochs, images, args.threads, args.json)
    if any(row["failed"] for row in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
