"""Where a trial's time goes before its first training step and after its last (sweep.trial.phases marks).

Part 1, one trial in a fresh Python process, as `negmargin train` runs it (no Ray; what gpu_check.sh measures):
process start -> imports -> CUDA initialisation -> cache open -> episode sets -> model build -> batch source (the
split onto the GPU) -> first step ... final validation -> checkpoint + report. Run twice: the first run builds the
image cache and samples the episode sets, the second finds them built (the case of every trial of a sweep).
Part 2 (--ray N): N trials of the default preset's shape through the real sweep Tuner on a local Ray cluster, one
at a time: per trial, Tune's scheduling and the Ray worker's start (until the trainable runs), the trainable's own
phases, and the time from the trial's start to its first step. With actor reuse (sweep.tuning.tuner) every trial after
the first runs in the first one's worker process.

    python benchmarks/trial_startup.py                      # part 1 on the default preset's trial, 1 epoch
    python benchmarks/trial_startup.py --ray 4              # and part 2 with 4 trials
    python benchmarks/trial_startup.py --device cuda --backbone resnet12 --image-size 84 --batch-size 256
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_FIRST_STEP_S = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dataset", default="glyphs-mini", help="default: the default preset's (generated, no download)")
    p.add_argument("--backbone", default="conv4")
    p.add_argument("--image-size", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads in the trial (0: leave)")
    p.add_argument("--work-dir", type=Path, default=None, help="cache, episodes, runs (default: a temporary dir)")
    p.add_argument("--ray", type=int, default=0, metavar="N", help="also N trials through the sweep Tuner on Ray")
    p.add_argument(
        "--no-reuse", action="store_true", help="part 2 without actor reuse (sweep.tuning.tuner.REUSE_ACTORS)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--launched", type=float, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def trial_config(args: argparse.Namespace, work: Path) -> dict:
    """The default preset's trial (m = 0, its first point) with the flags' backbone, size, batch and epochs."""
    from sweep.schema import spec as spec_module

    spec = spec_module.load(spec_module.preset_path("default"))
    config = spec.trial_settings()
    config["dataset"].update(name=args.dataset, image_size=args.image_size, cache_dir=str(work / "cache"))
    config["validation"]["episodes_dir"] = str(work / "episodes")
    config.update(backbone=args.backbone, batch_size=args.batch_size, epochs=args.epochs, val_every=args.epochs)
    config.update(device=args.device, margin=0.0, scale=10.0, weight_decay=5e-4, warmup_epochs=0)
    return config


def child(args: argparse.Namespace) -> None:
    """One trial in this fresh process, `negmargin train`'s way; writes its phases to args.child (JSON)."""
    entered = time.time()
    phases = [("python start", entered - args.launched)]  # the parent's time.time() when it started this process
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases.append((name, now - mark))
        mark = now

    import torch

    lap("import torch")
    from sweep.trial import TrialConfig, run
    from sweep.trial import phases as trial_phases
    from sweep.trial.run_dir import RunDirReporter

    lap("import negmargin")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrialConfig.from_dict(trial_config(args, args.work_dir))
    if config.device in ("auto", "cuda") and torch.cuda.is_available():
        torch.zeros(1, device="cuda").sum().item()  # the CUDA context: what a trial's first CUDA call pays
    lap("CUDA init")
    out = Path(tempfile.mkdtemp(prefix="run-", dir=args.work_dir))
    with trial_phases.recording() as clock:
        reporter = RunDirReporter(out, config.model_dump(), config.selection, progress=False)
        final = run(config, reporter)
        reporter.close(final)
        trial_phases.mark("summary")
    phases += clock.phases
    first_step = sum(s for _, s in phases[: len(phases) - len(clock.phases)]) + clock.since_start("first step")
    device = "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"
    args.child.write_text(json.dumps({"phases": phases, "first_step_s": first_step, "device": device}))


def run_child(args: argparse.Namespace, argv: list[str]) -> dict:
    """Part 1: one trial in a fresh Python process -> its phases."""
    result = args.work_dir / "child.json"
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--work-dir", str(args.work_dir)]
    subprocess.run([*command, "--child", str(result), "--launched", repr(time.time())], check=True)
    return json.loads(result.read_text())


def print_process_table(runs: list[dict]) -> None:
    """Phases of the cold and warm runs side by side."""
    names = [name for name, _ in runs[-1]["phases"]]
    print(f"\n{'phase (one trial, fresh process)':<34}" + "".join(f"{label:>12}" for label in ("cold s", "warm s")))
    for name in names:
        cells = [dict(run["phases"]).get(name) for run in runs]
        print(f"{name:<34}" + "".join(f"{c:>12.2f}" if c is not None else f"{'-':>12}" for c in cells))
    totals = [sum(s for _, s in run["phases"]) for run in runs]
    print(f"{'total':<34}" + "".join(f"{t:>12.2f}" for t in totals))
    first = [run["first_step_s"] for run in runs]
    print(f"{'first step after process start':<34}" + "".join(f"{t:>12.2f}" for t in first))
    verdict = "met" if first[-1] <= TARGET_FIRST_STEP_S else "not met"
    print(f"target: warm first step within {TARGET_FIRST_STEP_S:.0f} s of the start: {verdict} ({first[-1]:.2f} s)")


def run_ray(args: argparse.Namespace, count: int) -> list[dict]:
    """Part 2: `count` trials one at a time through sweep.tuning.tuner on a local Ray cluster -> per-trial records."""
    from clusters.session import ray_session
    from sweep.schema import spec as spec_module
    from sweep.storage import experiment as experiments
    from sweep.trial.phases import PHASES_DIR_ENV
    from sweep.tuning import tuner
    from sweep.workflows import preflight

    data = spec_module.load(spec_module.preset_path("default")).model_dump(mode="json")
    data["dataset"].update(name=args.dataset, image_size=args.image_size, cache_dir=str(args.work_dir / "cache"))
    data.update(backbone=args.backbone, batch_size=args.batch_size, epochs=args.epochs, val_every=args.epochs)
    data.update(num_samples=count, max_concurrent=1, points_to_evaluate=[], warmup_epochs=0)
    data["scheduler"] = {"grace_period": args.epochs, "reduction_factor": 2}
    data["resources"] = {"cpu": 1, "gpu": 1 if args.device == "cuda" else 0}
    spec = spec_module.parse(data)
    experiment = experiments.create(spec, storage=args.work_dir / "experiments")
    records_dir = args.work_dir / f"phases-{experiment.root.name}"
    records_dir.mkdir()
    os.environ[PHASES_DIR_ENV] = str(records_dir)  # the local cluster's workers inherit it
    tuner.REUSE_ACTORS = not args.no_reuse
    preflight.prepare_validation_episodes(spec, experiment)
    with ray_session():  # the local cluster starts here; tuner.run then uses it
        started = time.time()
        tuner.run(spec, experiment)
        finished = time.time()
    records = sorted((json.loads(p.read_text()) for p in records_dir.glob("*.json")), key=lambda r: r["entered"])
    previous_exit = started
    for record in records:
        record["wait"] = record["entered"] - previous_exit  # Tune's scheduling + the worker's start and imports
        ahead = record["wait"]
        for name, seconds in record["phases"]:
            ahead += seconds
            if name == "first step":
                break
        record["first_step_s"] = ahead
        previous_exit = record["exited"]
    reuse = "with" if tuner.REUSE_ACTORS else "without"
    print(
        f"\n{count} trials through the sweep Tuner, one at a time, {reuse} actor reuse: fit() took "
        f"{finished - started:.1f} s"
    )
    return records


def print_ray_table(records: list[dict]) -> None:
    """One row per trial: its worker, the wait before it ran, its phases, its first step."""
    names = list(dict.fromkeys(name for record in records for name, _ in record["phases"]))
    pids = list(dict.fromkeys(record["pid"] for record in records))
    header = f"{'trial':<6}{'worker':>7}{'wait':>7}" + "".join(f"{name[:11]:>12}" for name in names)
    print(header + f"{'first step':>12}")
    for index, record in enumerate(records, start=1):
        cells = dict(record["phases"])
        row = f"{index:<6}{pids.index(record['pid']) + 1:>7}{record['wait']:>7.2f}"
        row += "".join(f"{cells[n]:>12.2f}" if n in cells else f"{'-':>12}" for n in names)
        print(row + f"{record['first_step_s']:>12.2f}")
    print("wait: from the trial's start (the sweep's start on a running cluster, or the previous trial's end) until")
    print("its trainable ran (the Tuner's set-up, scheduling, the Ray worker's start and imports); first step: from")
    print("the trial's start; worker: which worker process ran it (the same one: the actor was reused)")


def main() -> None:
    """Run part 1 (and part 2 with --ray) and print the tables."""
    args = parse_args()
    if args.child is not None:
        child(args)
        return
    passed = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="negmargin-startup-") as temporary:
        args.work_dir = (args.work_dir or Path(temporary)).resolve()
        args.work_dir.mkdir(parents=True, exist_ok=True)
        child_argv = _without(passed, ("--ray", "--json", "--work-dir"), ("--no-reuse",))
        runs = [run_child(args, child_argv) for _ in range(2)]
        print(
            f"\ntrial start-up on {runs[-1]['device']}: {args.backbone}, {args.image_size} px, batch "
            f"{args.batch_size}, {args.dataset}, {args.epochs} epoch(s); {time.strftime('%Y-%m-%d')}"
        )
        print_process_table(runs)
        records = run_ray(args, args.ray) if args.ray else []
        if records:
            print_ray_table(records)
    if args.json:
        args.json.write_text(json.dumps({"process": runs, "ray": records}, indent=2))


def _without(argv: list[str], flags: tuple[str, ...], switches: tuple[str, ...] = ()) -> list[str]:
    """argv less `flags` (with their values) and `switches`."""
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item in flags:
            skip = True
        elif item not in switches and not any(item.startswith(f + "=") for f in flags):
            kept.append(item)
    return kept


if __name__ == "__main__":
    main()
