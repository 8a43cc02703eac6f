"""The selections file: merges replace entries of the same setting, keep the others, and never lose one to a race."""

import subprocess
import sys
from pathlib import Path

from sweep.storage import selections

FIELDS = {
    "backbone": "conv4",
    "loss": "neg-cosine",
    "params": {"margin": -0.1},
    "val_acc": 60.0,
    "test_ci95": 0.8,
    "test_episodes": 600,
    "experiment": "/x/experiments/e",
    "trial_id": "t1",
    "updated": "2026-11-27T17:02:11",
    "baseline": "no baseline",
}
MERGER = f"""
import sys
from pathlib import Path
from sweep.storage import selections
path, worker = Path(sys.argv[1]), sys.argv[2]
for shot in range(40):
    entry = selections.Selection(dataset=f"d-{{worker}}", shot=shot, test_acc=50.0, **{FIELDS!r})
    selections.merge(path, [entry])
"""


def _entry(dataset: str, shot: int, test_acc: float) -> selections.Selection:
    return selections.Selection(dataset=dataset, shot=shot, test_acc=test_acc, **FIELDS)


def test_merge_replaces_the_same_setting_and_keeps_the_others(tmp_path: Path):
    path = tmp_path / "selections.yaml"
    selections.merge(path, [_entry("glyphs", 1, 50.0), _entry("glyphs", 5, 70.0)])
    table = selections.merge(path, [_entry("glyphs", 1, 55.0), _entry("cub", 1, 60.0)])
    assert [(e.dataset, e.shot, e.test_acc) for e in table] == [
        ("cub", 1, 60.0),
        ("glyphs", 1, 55.0),
        ("glyphs", 5, 70.0),
    ]
    assert selections.read(path) == table
    assert selections.select(path, dataset="glyphs", shot=5) == [table[2]]


def test_two_processes_merging_into_one_file_lose_no_entry(tmp_path: Path):
    """Two promotions sharing a storage directory: each merge reads, merges and writes under the file's lock."""
    path = tmp_path / "selections.yaml"
    workers = [
        subprocess.Popen([sys.executable, "-c", MERGER, str(path), name], stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read()
    entries = selections.read(path)
    assert len(entries) == 80
    assert {(e.dataset, e.shot) for e in entries} == {(f"d-{w}", s) for w in "ab" for s in range(40)}
