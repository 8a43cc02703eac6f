"""gpu_check.sh's sweep stage on CPU, as `make test` keeps it working: `negmargin sweep run` with resources.gpu: auto
through a real local Ray (auto -> 0 here), then the packing check's concurrent trials, then the summary table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_sweep_check  # noqa: E402


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory, glyph_cache: Path) -> tuple[Path, str]:
    """The sweep stage's conv4 sweep and packing check, smoke-sized, run by gpu_check.sh -> (LOG_DIR, its output)."""
    logs = tmp_path_factory.mktemp("gpu-check")
    cache = tmp_path_factory.mktemp("gpu-check-cache")  # its split caches stay out of the suite's shared glyph cache
    for generated in glyph_cache.glob("*.npz"):
        shutil.copy2(generated, cache / generated.name)
    env = {
        **os.environ,
        "QUICK": "1",
        "STAGES": "sweep_conv4,packing_check",
        "PYTHON": sys.executable,
        "LOG_DIR": str(logs),
        "NEGMARGIN_CACHE": str(cache),  # the suite's generated glyph set (glyphs-mini is a part of it)
    }
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return logs, run.stdout


def test_the_sweep_ran_end_to_end_through_ray_and_auto_chose_no_gpu(stage):
    logs, _ = stage
    conv4 = json.loads((logs / "sweep.json").read_text())["conv4"]
    assert conv4["returncode"] == 0
    assert conv4["decision"]["gpu"] == 0.0 and conv4["decision"]["trials_per_gpu"] == 0
    assert conv4["decision"]["reason"] == "the cluster has no GPU: trials run on CPUs"
    assert conv4["trials"] == 2 and conv4["epochs"] == 2  # 2 trials of 1 epoch each
    assert 1 <= conv4["trials_at_once"] <= 2  # max_concurrent 2 on this machine's CPUs
    assert conv4["card"] == {
        "gpu_busy_percent": None,
        "gpu_memory_gib": None,
        "gpu_processes_max": None,
        "process_memory_peak_gib": None,
        "samples": 0,
    }
    head = conv4["report_head"]
    assert head[0] == (
        "# gpu-check-conv4: glyphs-mini / conv4 / neg-cosine, 2 trials of up to 1 epochs, selected by val_acc_mean"
    )
    assert head[1].startswith("Selected hyperparameters (test accuracy on 20 fixed test episodes")  # promoted
    assert conv4["resources"] == {"cpu": 1, "gpu": "auto"} and conv4["image_size"] == 16


def test_the_packing_check_timed_one_and_two_trials_and_judged_the_share(stage):
    logs, _ = stage
    packing = json.loads((logs / "sweep.json").read_text())["packing"]
    assert packing["decided"] == 1 and packing["on_gpu"] is False  # auto -> 0 on CPUs: N taken as 1
    assert [row["trials"] for row in packing["rows"]] == [1, 2]
    assert all(row["failed"] == 0 and row["images_per_s"] > 0 for row in packing["rows"])
    rates = [row["images_per_s"] for row in packing["rows"]]
    check = packing["check"]
    assert check["share"] == pytest.approx(rates[0] / max(rates))
    assert check["right"] == (check["share"] >= 0.9) and check["best"] == 1 + rates.index(max(rates))


def test_the_summary_table_says_what_a_cpu_cannot_measure_and_the_files_stay_few(stage):
    logs, out = stage
    table = out[out.index("figure ") :].splitlines()
    rows = {line[:46].strip(): line[46:] for line in table}
    for target in (
        "first step after start, warm cache (s)",
        "600 5-shot episodes, CUDA graphs (s)",
        "resnet12 trial step / raw backbone",
    ):
        assert rows[target].endswith("not measured: no GPU")
    assert rows["card busy over the sweep (%)"].endswith("not measured: no GPU")
    assert rows["trials run / most at once (Tune)"].split()[:3][0] == "2"
    assert rows["decided N = 1: share of the best"].split()[1:3] == [">=", "0.9"]
    assert "== summary (cpu)" in out and "sweep_conv4        ok" in out and "packing_check      ok" in out
    assert sorted(p.name for p in logs.iterdir()) == ["gpu_check.log", "sweep.json"]


def test_the_gpu_sweeps_are_valid_specs_with_the_issues_settings(tmp_path):
    """What gpu_check.sh runs on a card (not runnable here): the default preset with 12 trials, resnet12 at 84 px."""
    conv4 = yaml.safe_load(gpu_sweep_check.sweep_spec("conv4", smoke=False, work=tmp_path).read_text())
    assert (conv4["backbone"], conv4["dataset"]["name"], conv4["dataset"]["image_size"]) == ("conv4", "glyphs-mini", 24)
    assert conv4["num_samples"] == conv4["max_concurrent"] == 12 and conv4["resources"] == {"cpu": 1, "gpu": "auto"}
    resnet = yaml.safe_load(gpu_sweep_check.sweep_spec("resnet12", smoke=False, work=tmp_path).read_text())
    assert (resnet["backbone"], resnet["dataset"]["name"], resnet["dataset"]["image_size"]) == (
        "resnet12",
        "glyphs-mini",
        84,
    )
    assert resnet["num_samples"] == 4 and resnet["epochs"] == 4 and resnet["resources"]["gpu"] == "auto"
