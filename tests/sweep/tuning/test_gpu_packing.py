"""resources.gpu: auto — the packing decision (a pure function of the probe's figures), its record in the
experiment and the report, and the probe itself: the spec's real trial step as a task on a real local Ray cluster."""

import pytest

from clusters.session import ray_session
from sweep.report.text import pointer_lines
from sweep.schema import spec as spec_module
from sweep.storage import experiment as experiments
from sweep.storage import gpu_packing_file
from sweep.storage.gpu_packing_file import PackingDecision
from sweep.tuning import gpu_packing
from sweep.tuning.gpu_packing import CUDA_CONTEXT_BYTES, decide
from sweep.tuning.gpu_probe import ProbeFigures, busy_microseconds

GIB = 2**30
H200 = 141 * GIB  # bytes a 141 GB card reports


def figures(peak_gib: float, busy: float | None, card: int = H200, device: str = "cuda") -> ProbeFigures:
    return ProbeFigures(device, "NVIDIA H200", card, int(peak_gib * GIB), busy, 0.05, 5000.0, 8)


def test_a_busy_large_backbone_gets_a_whole_gpu():
    decision = decide(figures(peak_gib=30, busy=0.9), cluster_gpus=8)  # resnet12, 84 px, batch 256, bf16
    assert (decision.gpu, decision.trials_per_gpu) == (1.0, 1)
    assert decision.reason.startswith("a whole GPU (it keeps the card busy on its own")
    assert "90% busy" in decision.reason


def test_a_small_backbone_shares_the_card_as_far_as_compute_allows():
    decision = decide(figures(peak_gib=1.0, busy=0.14), cluster_gpus=1)  # conv4, 9 % to 14 % busy alone
    assert decision.trials_per_gpu == 10 and decision.gpu == 0.1  # floor(1.5 / 0.14)
    assert "limited by compute" in decision.reason
    assert decision.trial_memory == GIB + CUDA_CONTEXT_BYTES


def test_memory_limits_the_packing_with_headroom_and_the_split_on_the_card_counts():
    card = 24 * GIB
    alone = decide(figures(peak_gib=4.0, busy=0.1, card=card), cluster_gpus=2)
    assert alone.trials_per_gpu == 4 and alone.gpu == 0.25  # floor(0.8 · 24 / 4.59)
    assert "limited by memory" in alone.reason
    with_split = decide(figures(peak_gib=4.0, busy=0.1, card=card), cluster_gpus=2, split_bytes=6 * GIB)
    assert with_split.trials_per_gpu == 1 and with_split.gpu == 1.0  # 10.6 GiB per trial: two do not fit in 19.2
    too_big_to_keep = decide(figures(peak_gib=4.0, busy=0.1, card=card), cluster_gpus=2, split_bytes=7 * GIB)
    assert too_big_to_keep.trials_per_gpu == 4  # > a quarter of the card: the trial reads it from host memory


def test_fractions_fit_ray_and_the_pack_is_capped():
    three = decide(figures(peak_gib=1.0, busy=0.45), cluster_gpus=1)
    assert three.trials_per_gpu == 3 and three.gpu == 0.3333 and 3 * three.gpu <= 1
    capped = decide(figures(peak_gib=0.5, busy=0.01), cluster_gpus=1)
    assert capped.trials_per_gpu == gpu_packing.MAX_TRIALS_PER_GPU and capped.gpu == 0.0625


@pytest.mark.parametrize("probe", [None, figures(1.0, None, card=0, device="cpu")])
def test_without_gpus_auto_means_zero_and_says_so(probe):
    decision = decide(probe, cluster_gpus=0)
    assert (decision.gpu, decision.trials_per_gpu) == (0.0, 0) and "no GPU" in decision.reason


def test_busy_time_is_the_union_of_kernel_intervals():
    assert busy_microseconds([(0, 10), (5, 12), (20, 25), (21, 22)]) == 17
    assert busy_microseconds([]) == 0


def _spec(gpu, tmp_path) -> spec_module.SweepSpec:
    data = spec_module.load(spec_module.preset_path("default")).model_dump(mode="json")
    data["dataset"].update(name="glyphs", image_size=16)
    data.update(batch_size=8, resources={"cpu": 1, "gpu": gpu})
    return spec_module.with_absolute_paths(spec_module.parse(data), tmp_path)


def test_an_explicit_number_wins_and_records_nothing(tmp_path):
    spec = _spec(0.5, tmp_path)
    experiment = experiments.create(spec, storage=tmp_path / "experiments")
    assert gpu_packing.trial_gpus(spec, experiment) == 0.5  # no Ray session: nothing probed
    assert gpu_packing_file.load(experiment) is None and not any("GPUs" in line for line in pointer_lines(experiment))


def test_the_probe_runs_the_trial_step_as_a_ray_task_and_auto_is_zero_without_gpus(tmp_path, glyph_cache):
    spec = _spec("auto", tmp_path)
    spec = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"cache_dir": str(glyph_cache)})})
    experiment = experiments.create(spec, storage=tmp_path / "experiments")
    with ray_session():  # a real local cluster of this machine's CPUs, no GPU
        probed = gpu_packing.run_probe(spec, experiment, num_gpus=0, steps=2, warmup=1)
        gpus = gpu_packing.trial_gpus(spec, experiment)
    assert probed.device == "cpu" and probed.steps == 2 and probed.busy_fraction is None
    assert probed.step_seconds > 0 and probed.images_per_s == pytest.approx(spec.batch_size / probed.step_seconds)
    assert probed.peak_memory > 0
    assert gpus == 0.0
    recorded = gpu_packing_file.load(experiment)
    assert recorded == PackingDecision(0.0, 0, "the cluster has no GPU: trials run on CPUs")
    assert gpu_packing.trial_gpus(spec, experiment) == 0.0  # read back (a resume): no Ray session needed
    (line,) = [line for line in pointer_lines(experiment) if line.startswith("GPUs:")]
    assert "gpu_packing.json" in line and "auto -> 0 per trial: the cluster has no GPU" in line


def test_the_packing_check_wants_ninety_percent_of_the_best_throughput_without_failures():
    right = gpu_packing.check_packing({1: 1000.0, 10: 6000.0, 20: 6300.0}, decided=10)
    assert (right.right, right.best, right.share) == (True, 20, pytest.approx(6000 / 6300))
    assert right.reason.startswith("right: 10 trials at once give 95% of the best throughput (20 at once")
    too_few = gpu_packing.check_packing({1: 1000.0, 4: 3000.0, 8: 5000.0}, decided=4)
    assert (too_few.right, too_few.best, too_few.share) == (False, 8, 0.6) and too_few.reason.startswith("wrong")
    oom_above = gpu_packing.check_packing({1: 1000.0, 10: 6000.0, 20: None}, decided=10)
    assert (oom_above.right, oom_above.share) == (True, 1.0) and oom_above.reason.endswith("failed: 20 at once")
    oom_decided = gpu_packing.check_packing({1: 1000.0, 10: None, 20: None}, decided=10)
    assert (oom_decided.right, oom_decided.best, oom_decided.share) == (False, 1, None)
    with pytest.raises(ValueError, match="was not timed"):
        gpu_packing.check_packing({1: 1000.0}, decided=4)
