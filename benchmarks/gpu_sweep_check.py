"""The product's sweep as a user runs it on a GPU: `negmargin sweep run` with `resources.gpu: auto`, measured.

gpu_check.sh's sweep stage, in three parts that share --work-dir (specs, experiments) and --json (one file, a key
per part):
  conv4     (a) the default preset (conv4, glyphs-mini, 24 px), 12 trials, max_concurrent 12: Ray's GPU share from
            the packing decision is what limits how many run at once
  resnet12  (b) the default preset with resnet12 at 84 px on glyphs-mini, 4 trials of 4 epochs
  packing   the packing check: N = 1, the decided N and 2 N concurrent trials of (a)'s trial
            (benchmarks/concurrent_trials.py), judged by sweep.tuning.gpu_packing.check_packing
Each sweep runs `python -m sweep.cli sweep run SPEC --experiment DIR` (trials, promotion, report; its own output in
DIR.log) while nvidia-smi is sampled (benchmarks/gpu_sampler.py), then prints the packing decision and its probe
figures, the trials that ran at once (from Tune's results; on a GPU also the processes on the card), the card's busy
share, the peak memory per trial process, the wall time and the report's first lines. Without a GPU the same runs on
CPUs (`gpu: auto` -> 0) and the GPU figures read "not measured: no GPU".

    python benchmarks/gpu_sweep_check.py conv4 --work-dir W --json OUT/sweep.json
    python benchmarks/gpu_sweep_check.py resnet12 --work-dir W --json OUT/sweep.json
    python benchmarks/gpu_sweep_check.py packing --work-dir W --json OUT/sweep.json     # after conv4
    python benchmarks/gpu_sweep_check.py conv4 --smoke-test ...   # tiny settings for a CPU (`make test` runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import concurrent_trials  # noqa: E402
from gpu_sampler import GpuSampler  # noqa: E402

REPORT_LINES = 8
NO_GPU = "not measured: no GPU"

# What each part changes in the default preset, on a GPU. The budgets are short so that the stage fits one call.
SWEEPS: dict[str, dict[str, Any]] = {
    "conv4": {
        "num_samples": 12,
        "max_concurrent": 12,
        "epochs": 16,
        "val_every": 4,
        "selection_from_epoch": 8,
        "scheduler": {"grace_period": 8, "reduction_factor": 2},
        "resources": {"cpu": 1, "gpu": "auto"},
    },
    "resnet12": {
        "backbone": "resnet12",
        "dataset": {"image_size": 84},
        "num_samples": 4,
        "max_concurrent": 4,
        "epochs": 4,
        "val_every": 2,
        "selection_from_epoch": 2,
        "scheduler": {"grace_period": 2, "reduction_factor": 2},
        "resources": {"cpu": 2, "gpu": "auto"},
    },
}
# --smoke-test: what both sweeps change on top of that, so that a CPU runs them in a test (glyphs-mini at 16 px,
# 2 trials of 1 epoch, a few episodes).
SMOKE: dict[str, Any] = {
    "dataset": {"image_size": 16},
    "num_samples": 2,
    "max_concurrent": 2,
    "epochs": 1,
    "val_every": 1,
    "selection_from_epoch": 1,
    "scheduler": {"grace_period": 1, "reduction_factor": 2},
    "validation": {"episodes": 10, "shots": [1, 5], "queries": 5, "finetune_epochs": 5},
    "promotion": {"top_k": 2, "test_episodes": 20, "shots": [1, 5], "queries": 5, "finetune_epochs": 5},
    "resources": {"cpu": 1, "gpu": "auto"},
}
PACKING_EPOCHS, SMOKE_PACKING_EPOCHS = 4, 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=("conv4", "resnet12", "packing"))
    p.add_argument("--work-dir", type=Path, required=True, help="specs, experiments, logs (shared by the parts)")
    p.add_argument("--json", type=Path, required=True, help="the stage's results file (a key per part)")
    p.add_argument("--smoke-test", action="store_true", help="tiny settings, for a CPU")
    return p.parse_args(argv)


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied, nested sections merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def sweep_spec(part: str, smoke: bool, work: Path) -> Path:
    """Write the part's spec (the default preset with SWEEPS[part], and SMOKE) into `work` -> its path."""
    from sweep.schema import spec as spec_module

    data = yaml.safe_load(spec_module.preset_path("default").read_text())
    data = merged(data, SWEEPS[part])
    if smoke:
        data = merged(data, SMOKE)
    data.update(name=f"gpu-check-{part}", storage_path=str(work / "experiments"))
    spec_module.parse(data)  # refuse a bad change here, before Ray starts
    path = work / f"{part}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Stopped(Exception):
    """gpu_check.sh's time limit (SIGTERM) arrived."""


def _raise_stopped(*_: object) -> None:
    raise Stopped


def run_sweep(spec_file: Path, experiment: Path) -> tuple[int, float, dict[str, Any]]:
    """`negmargin sweep run` of `spec_file` into `experiment` (output to experiment.log) -> return code (124: stopped
    by the time limit, the sweep and its Ray ended with it), wall seconds, the card's figures over the run."""
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep + path if path else ''}"}
    command = [sys.executable, "-m", "sweep.cli", "sweep", "run", str(spec_file), "--experiment", str(experiment)]
    command += ["--selections", str(experiment.parent / "selections.yaml")]
    signal.signal(signal.SIGTERM, _raise_stopped)
    with open(f"{experiment}.log", "w") as log, GpuSampler(period=0.5) as sampler:
        started = time.perf_counter()
        sweep = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = sweep.wait()
        except Stopped:  # end the sweep (its driver shuts its local Ray down) so that it leaves the card free
            rc = 124
            os.killpg(sweep.pid, signal.SIGTERM)
            try:
                sweep.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(sweep.pid, signal.SIGKILL)
        wall = time.perf_counter() - started
    return rc, wall, sampler.summary()


def trial_intervals(experiment: Path) -> list[tuple[float, float, int]]:
    """(start, end, epochs) of each trial, from Tune's result.json rows (end: the last row's timestamp; start:
    that minus the trial's time_total_s)."""
    intervals = []
    for result in sorted((experiment / "tune").glob("trial_*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if rows:
            last = rows[-1]
            intervals.append((last["timestamp"] - last["time_total_s"], last["timestamp"], last["training_iteration"]))
    return intervals


def most_at_once(intervals: list[tuple[float, float, int]]) -> int:
    """The largest number of intervals open at one time."""
    events = sorted([(start, 1) for start, _, _ in intervals] + [(end, -1) for _, end, _ in intervals])
    running = best = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start: touching intervals do not overlap
        running += step
        best = max(best, running)
    return best


def report_head(experiment: Path) -> list[str]:
    """The report's first non-empty lines."""
    report = experiment / "report.md"
    if not report.exists():
        return []
    return [line for line in report.read_text().splitlines() if line.strip()][:REPORT_LINES]


def sweep_part(part: str, smoke: bool, work: Path) -> dict[str, Any]:
    """Run one sweep and measure it -> its JSON-ready figures (printed too)."""
    from sweep.storage import gpu_packing_file
    from sweep.storage.experiment import Experiment

    spec_file = sweep_spec(part, smoke, work)
    spec = yaml.safe_load(spec_file.read_text())
    experiment = work / "experiments" / part
    experiment.parent.mkdir(parents=True, exist_ok=True)
    d = spec["dataset"]
    print(
        f"sweep {part}: {spec['backbone']}, {d['name']} at {d['image_size']} px, {spec['num_samples']} trials of "
        f"{spec['epochs']} epochs, max_concurrent {spec['max_concurrent']}, resources {spec['resources']}",
        flush=True,
    )
    rc, wall, card = run_sweep(spec_file, experiment)
    decision = gpu_packing_file.load(Experiment(experiment))
    intervals = trial_intervals(experiment)
    row = {
        "part": part,
        "returncode": rc,
        "spec_file": str(spec_file),  # in the stage's work folder, removed when the stage ends
        "resources": spec["resources"],
        "image_size": d["image_size"],
        "experiment": str(experiment),
        "wall_s": wall,
        "decision": None if decision is None else decision.__dict__,
        "trials": len(intervals),
        "epochs": sum(epochs for _, _, epochs in intervals),
        "trials_at_once": most_at_once(intervals),
        "card": card,
        "report_head": report_head(experiment),
    }
    print_sweep(row)
    if rc != 0:
        tail = Path(f"{experiment}.log").read_text().splitlines()[-30:]
        why = "stopped by the stage's time limit" if rc == 124 else f"failed (exit {rc})"
        print(f"  negmargin sweep run {why}; the end of {experiment}.log:", *tail, sep="\n    ")
    return row


def print_sweep(row: dict[str, Any]) -> None:
    """The figures of one sweep, a line each."""
    decision, card = row["decision"], row["card"]
    print(f"  packing: {'no decision recorded' if decision is None else decision['reason']}")
    figures = (decision or {}).get("figures")
    if figures:
        busy = "-" if figures["busy_fraction"] is None else f"{100 * figures['busy_fraction']:.0f}%"
        print(
            f"  probe on {figures['device_name']}: {1000 * figures['step_seconds']:.1f} ms/step, "
            f"{figures['images_per_s']:.0f} images/s, peak {figures['peak_memory'] / 2**30:.2f} GiB, busy {busy}; "
            f"GPUs per trial {decision['gpu']:g}, {decision['trials_per_gpu']} trials per card"
        )
    else:
        print("  probe: none (the cluster has no GPU: gpu auto -> 0, trials on CPUs)")
    on_card = NO_GPU if card["gpu_processes_max"] is None else f"{card['gpu_processes_max']} processes on the card"
    print(f"  trials: {row['trials']} ran ({row['epochs']} epochs), at most {row['trials_at_once']} at once; {on_card}")
    busy = (
        NO_GPU if card["gpu_busy_percent"] is None else f"{card['gpu_busy_percent']:.0f}% ({card['samples']} samples)"
    )
    print(f"  card busy over the sweep: {busy}")
    peak = card["process_memory_peak_gib"]
    print(f"  peak memory per trial process: {NO_GPU if peak is None else f'{peak:.2f} GiB'}")
    print(f"  sweep wall time: {row['wall_s']:.1f} s (trials, promotion, report)")
    print("  report's first lines:", *row["report_head"], sep="\n    ")


def packing_part(smoke: bool, work: Path, conv4: dict[str, Any]) -> dict[str, Any]:
    """Time 1, N and 2 N concurrent trials of sweep (a)'s trial (N: its decided trials per card; 1 without a GPU)
    and check the decision -> JSON-ready figures."""
    from sweep.tuning import gpu_packing

    decision = conv4["decision"] or {}
    decided = max(1, decision.get("trials_per_gpu", 0))
    counts = sorted({1, decided, 2 * decided})
    epochs = SMOKE_PACKING_EPOCHS if smoke else PACKING_EPOCHS
    folder = work / "packing"
    folder.mkdir(parents=True, exist_ok=True)
    argv = ["--spec", conv4["spec_file"], "--epochs", str(epochs), "--work-dir", str(folder)]
    config_path = concurrent_trials.trial_yaml(concurrent_trials.parse_args(argv), folder)
    images = concurrent_trials.prepare(config_path)
    on_gpu = decision.get("trials_per_gpu", 0) > 0
    print(f"packing check: {counts} concurrent trials of sweep conv4's trial, {epochs} epochs, {images} images each")
    rows = concurrent_trials.measure(counts, config_path, folder, epochs, images, 1, None)
    check = gpu_packing.check_packing({row["trials"]: row["images_per_s"] for row in rows}, decided)
    where = "" if on_gpu else f" ({NO_GPU}: the CPU's figures, decided N taken as 1)"
    print(f"  decided N = {decided}: {check.reason}{where}")
    return {"decided": decided, "on_gpu": on_gpu, "epochs": epochs, "rows": rows, "check": check.__dict__}


def main() -> None:
    """Run one part; add its figures to the stage's JSON file."""
    args = parse_args()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    fresh = args.part == "conv4" or not args.json.exists()  # the stage's first part starts the file over
    results = {} if fresh else json.loads(args.json.read_text())
    if args.part == "packing":
        if "conv4" not in results:
            raise SystemExit("gpu_sweep_check: run the conv4 part first (the packing check times its trial)")
        results["packing"] = packing_part(args.smoke_test, work, results["conv4"])
        failed = results["packing"]["rows"][0]["failed"] > 0  # one trial alone must finish; 2 N may run out
    else:
        results[args.part] = sweep_part(args.part, args.smoke_test, work)
        failed = results[args.part]["returncode"] != 0
    args.json.write_text(json.dumps(results, indent=2))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
