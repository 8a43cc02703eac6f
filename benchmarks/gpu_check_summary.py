"""gpu_check.sh's last table: every figure its stages wrote to LOG_DIR, with PASS/FAIL against each GPU target.

Reads trial_startup.json, episodes.json, trial_throughput.json and sweep.json (benchmarks/gpu_sweep_check.py) where
they exist. A target is judged only on a GPU; on a CPU its row reads "not measured: no GPU", and so do the sweep's
figures that only nvidia-smi gives (the card's busy share, processes and memory on the card).

    python benchmarks/gpu_check_summary.py LOG_DIR cuda|cpu
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep.tuning.gpu_packing import PACKING_THROUGHPUT_SHARE  # noqa: E402

NO_GPU = "not measured: no GPU"
FIRST_STEP_S, EPISODES_5SHOT_S, TRIAL_VS_RAW = 5.0, 0.1, 0.95  # the targets (issue 23)

Row = tuple[str, str, str, str]  # figure, value, goal, verdict


def _read(folder: Path, name: str) -> Any:
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


def _cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _target(label: str, value: float | None, goal: float, sense: str, gpu: bool, digits: int = 2) -> Row:
    """A target row: PASS/FAIL on a GPU, NO_GPU on a CPU, "not measured" when its stage wrote nothing."""
    if not gpu:
        return (label, "-", f"{sense} {goal:g}", NO_GPU)
    if value is None:
        return (label, "-", f"{sense} {goal:g}", "not measured: the stage failed or did not run")
    met = value <= goal if sense == "<=" else value >= goal
    return (label, _cell(value, digits), f"{sense} {goal:g}", "PASS" if met else "FAIL")


def target_rows(folder: Path, gpu: bool) -> list[Row]:
    """The GPU targets: a trial's first step, 600 5-shot episodes with CUDA graphs (and == eager), trial vs raw."""
    startup, episodes, throughput = (
        _read(folder, name) for name in ("trial_startup.json", "episodes.json", "trial_throughput.json")
    )
    first_step = startup["process"][-1]["first_step_s"] if startup else None
    graph_s = (episodes or {}).get("graph_s")
    equal = (episodes or {}).get("graphs_equal_eager")
    rows = [
        _target("first step after start, warm cache (s)", first_step, FIRST_STEP_S, "<=", gpu),
        _target("600 5-shot episodes, CUDA graphs (s)", graph_s, EPISODES_5SHOT_S, "<=", gpu, digits=3),
    ]
    if not gpu or equal is None:
        rows.append(("CUDA graphs == eager (accuracies)", "-", "equal", rows[-1][3]))
    else:
        rows.append(
            ("CUDA graphs == eager (accuracies)", "yes" if equal else "no", "equal", "PASS" if equal else "FAIL")
        )
    ratio = (throughput or {}).get("trial_vs_raw")
    rows.append(_target("resnet12 trial step / raw backbone", ratio, TRIAL_VS_RAW, ">=", gpu))
    return rows


def _gpu_only(label: str, value: float | None, digits: int = 1) -> Row:
    return (label, "-", "", NO_GPU) if value is None else (label, _cell(value, digits), "", "")


def sweep_rows(part: str, sweep: dict[str, Any]) -> list[Row]:
    """One sweep's figures: the packing decision and its probe, trials at once, the card, wall time."""
    decision, card = sweep.get("decision") or {}, sweep["card"]
    figures = decision.get("figures")
    rows: list[Row] = [(f"sweep {part}", "", "", "ok" if sweep["returncode"] == 0 else "FAIL (see its log above)")]
    rows.append(("  GPUs per trial (gpu: auto)", f"{decision.get('gpu', 0):g}", "", decision.get("reason", "")[:60]))
    if figures:
        rows.append(("  probe: ms per step", _cell(1000 * figures["step_seconds"], 1), "", figures["device_name"]))
        busy = figures["busy_fraction"]
        rows.append(("  probe: card busy alone (%)", _cell(None if busy is None else 100 * busy, 0), "", ""))
        rows.append(("  probe: peak memory (GiB)", _cell(figures["peak_memory"] / 2**30), "", ""))
    else:
        rows.append(("  probe", "-", "", "none: the cluster has no GPU"))
    rows.append(("  trials run / most at once (Tune)", f"{sweep['trials']} / {sweep['trials_at_once']}", "", ""))
    rows.append(_gpu_only("  processes on the card at once", card["gpu_processes_max"], 0))
    rows.append(_gpu_only("  card busy over the sweep (%)", card["gpu_busy_percent"], 0))
    rows.append(_gpu_only("  peak memory per trial process (GiB)", card["process_memory_peak_gib"], 2))
    rows.append(("  sweep wall time (s)", _cell(sweep["wall_s"], 1), "", "trials, promotion, report"))
    return rows


def packing_rows(packing: dict[str, Any], gpu: bool) -> list[Row]:
    """The packing check: images/s at each count, and the decided count's share of the best."""
    rows: list[Row] = [("packing check (trials of sweep conv4 at once)", "", "", "")]
    for row in packing["rows"]:
        why = "out of memory" if row.get("out_of_memory") else "failed" if row["failed"] else ""
        rows.append((f"  {row['trials']} at once: images/s", _cell(row["images_per_s"], 0), "", why))
    check, goal = packing["check"], f">= {PACKING_THROUGHPUT_SHARE:g}"
    label = f"  decided N = {packing['decided']}: share of the best"
    if not gpu or not packing["on_gpu"]:
        rows.append((label, _cell(check["share"]), goal, NO_GPU))
    else:
        rows.append((label, _cell(check["share"]), goal, "PASS" if check["right"] else "FAIL"))
    return rows


def table(folder: Path, device: str) -> list[Row]:
    """Every row of the summary."""
    gpu = device == "cuda"
    rows = [("GPU targets", "", "", "")] + [(f"  {a}", b, c, d) for a, b, c, d in target_rows(folder, gpu)]
    sweep = _read(folder, "sweep.json") or {}
    for part in ("conv4", "resnet12"):
        if part in sweep:
            rows += sweep_rows(part, sweep[part])
    if "packing" in sweep:
        rows += packing_rows(sweep["packing"], gpu)
    return rows


def main() -> None:
    """Print the table."""
    folder, device = Path(sys.argv[1]), sys.argv[2]
    print(f"\n{'figure':<46} {'value':>9} {'goal':>8}  verdict")
    for label, value, goal, verdict in table(folder, device):
        print(f"{label:<46} {value:>9} {goal:>8}  {verdict}".rstrip())


if __name__ == "__main__":
    main()
