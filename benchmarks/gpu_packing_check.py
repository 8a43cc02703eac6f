"""What `resources.gpu: auto` would choose for shipped presets on this machine's GPU, without Ray.

For each preset, the GPU probe (sweep.tuning.gpu_probe.probe_trial_step) runs the preset's real trial step here, in this
process (a sweep runs it as a Ray task on a GPU node), and sweep.tuning.gpu_packing.decide turns its figures into GPUs
per trial, as a sweep would with one GPU per node. A preset whose dataset is not on this machine is probed with the
published split's shape (mini-ImageNet: 64 base classes, 38,400 images of 500x375): the probe draws synthetic
images of the stored size anyway; only the split's bytes on the card come from the shape.

    python benchmarks/gpu_packing_check.py                                  # default and resnet12-mini, 5-shot
    python benchmarks/gpu_packing_check.py --preset default --steps 4       # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import DataError  # noqa: E402
from data.geometry import stored_size  # noqa: E402
from sweep.schema import spec as spec_module  # noqa: E402
from sweep.storage.experiment import Experiment  # noqa: E402
from sweep.tuning import gpu_packing  # noqa: E402
from sweep.tuning import space as search_space  # noqa: E402
from sweep.tuning.gpu_probe import probe_trial_step  # noqa: E402

PUBLISHED_SHAPES = {"mini-imagenet": (64, 38_400, 375)}  # base classes, base images, native short side


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", action="append", help="preset name (repeatable)")
    p.add_argument("--steps", type=int, default=8, help="timed (and profiled) steps per probe")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--gpus", type=float, default=None, help="GPUs of the cluster (default: torch's device count)")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def probe_preset(name: str, steps: int, warmup: int, gpus: float, work: Path) -> dict:
    """Probe one preset and decide -> a JSON-ready row."""
    spec = spec_module.with_absolute_paths(spec_module.load(spec_module.preset_path(name)), work)
    experiment = Experiment(work / name)
    d = spec.dataset
    try:
        trial, classes, stored = gpu_packing.probe_arguments(spec, experiment)
        split_bytes = gpu_packing.base_split_bytes(spec)
        shape = "its files"
    except DataError:
        classes, images, native = PUBLISHED_SHAPES[d.name]
        stored = stored_size(d.image_size, d.crop_scale[0], native=native, limit=d.max_stored_size)
        point = {key: parameter.bounds()[1] for key, parameter in spec.searched().items()}
        trial = search_space.trial_config(spec, point, experiment.episodes_dir)
        split_bytes, shape = images * stored * stored * 3, "the published shape"
    started = time.perf_counter()
    figures = probe_trial_step(trial, classes, stored, steps=steps, warmup=warmup)
    decision = gpu_packing.decide(figures, gpus, split_bytes)
    return {
        "preset": name,
        "step": f"{spec.backbone}, batch {spec.batch_size}, {d.image_size} px (S = {stored}), {spec.precision}",
        "split": shape,
        "split_gib": split_bytes / 2**30,
        "probe_s": time.perf_counter() - started,
        "figures": figures.to_dict(),
        "decision": {"gpu": decision.gpu, "trials_per_gpu": decision.trials_per_gpu, "reason": decision.reason},
    }


def main() -> None:
    """Probe, decide, print one block per preset."""
    args = parse_args()
    import torch

    presets = args.preset or ["default", "resnet12-mini-neg-cosine-5shot"]
    gpus = args.gpus if args.gpus is not None else float(torch.cuda.device_count())
    rows = []
    with tempfile.TemporaryDirectory(prefix="negmargin-packing-") as work:
        for name in presets:
            rows.append(probe_preset(name, args.steps, args.warmup, gpus, Path(work)))
            row, f = rows[-1], rows[-1]["figures"]
            busy = "-" if f["busy_fraction"] is None else f"{100 * f['busy_fraction']:.0f}%"
            print(f"\n{row['preset']}: {row['step']}; base split {row['split_gib']:.2f} GiB ({row['split']})")
            print(
                f"  probe on {f['device_name']}: {f['step_seconds'] * 1000:.1f} ms/step, {f['images_per_s']:.0f} "
                f"images/s, peak {f['peak_memory'] / 2**30:.2f} GiB, busy {busy} ({row['probe_s']:.1f} s)"
            )
            print(f"  resources.gpu auto -> {row['decision']['gpu']:g}: {row['decision']['reason']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
