"""How busy GPU 0 is and what memory its processes hold while something runs: nvidia-smi sampled in a thread.

Without nvidia-smi (no NVIDIA GPU, e.g. a CPU machine) the sampler takes no samples and its summary is all None,
which the benchmarks print as "not measured: no GPU".

    with GpuSampler(period=0.5) as sampler:
        run_the_work()
    print(sampler.summary())
"""

from __future__ import annotations

import shutil
import subprocess
import threading

MIB = 2**20


def _query(arguments: list[str]) -> list[list[str]] | None:
    """Rows of an nvidia-smi CSV query (no header, no units), or None when it cannot answer."""
    try:
        output = subprocess.run(
            ["nvidia-smi", "-i", "0", *arguments, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [[cell.strip() for cell in line.split(",")] for line in output.splitlines() if line.strip()]


def _number(cell: str) -> float | None:
    """A cell of nvidia-smi's CSV as a number; None for "[N/A]" and the like."""
    try:
        return float(cell)
    except ValueError:
        return None


class GpuSampler:
    """Every `period` s: GPU 0's utilisation (% of time a kernel ran), its used memory and each compute process's."""

    def __init__(self, period: float = 0.5) -> None:
        self.period = period
        self.busy: list[float] = []  # percent, one per sample
        self.memory: list[int] = []  # bytes used on the card, one per sample
        self.processes: list[dict[str, int]] = []  # pid -> bytes it holds on the card, one dict per sample
        self.available = shutil.which("nvidia-smi") is not None and _query(["--query-gpu=name"]) is not None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while self.available and not self._stop.wait(self.period):
            card = _query(["--query-gpu=utilization.gpu,memory.used"])
            apps = _query(["--query-compute-apps=pid,used_memory"])
            if card:
                busy, used = (_number(cell) for cell in card[0][:2])
                if busy is not None and used is not None:
                    self.busy.append(busy)
                    self.memory.append(int(used * MIB))
            if apps is not None:
                self.processes.append({row[0]: int((_number(row[1]) or 0) * MIB) for row in apps if len(row) > 1})

    def summary(self) -> dict:
        """Mean busy % and peak used memory of the card (GiB); the most compute processes on it at once and the
        largest memory one of them held (GiB); the number of samples. None where nothing was sampled."""
        per_process = [size for sample in self.processes for size in sample.values()]
        return {
            "gpu_busy_percent": sum(self.busy) / len(self.busy) if self.busy else None,
            "gpu_memory_gib": max(self.memory) / 2**30 if self.memory else None,
            "gpu_processes_max": max(len(sample) for sample in self.processes) if self.processes else None,
            "process_memory_peak_gib": max(per_process) / 2**30 if any(per_process) else None,
            "samples": len(self.busy),
        }
