"""The selections file: merges replace entries of the same setting, keep the others, and never lose one to a race."""

import subprocess
import sys
from pathlib import Path

from sweep.storage import selections

MERGER = """
import sys
from pathlib import Path
from sweep.storage import selections
path, worker = Path(sys.argv[1]), sys.argv[2]
for shot in range(40):
    entry = {"dataset": f"d-{worker}", "backbone": "conv4", "loss": "neg-cosine", "shot": shot, "params": {}}
    selections.merge(path, [entry])
"""


def _entry(dataset: str, shot: int, test_acc: float) -> dict:
    return {"dataset": dataset, "backbone": "conv4", "loss": "neg-cosine", "shot": shot, "test_acc": test_acc}


def test_merge_replaces_the_same_setting_and_keeps_the_others(tmp_path: Path):
    path = tmp_path / "selections.yaml"
    selections.merge(path, [_entry("glyphs", 1, 50.0), _entry("glyphs", 5, 70.0)])
    table = selections.merge(path, [_entry("glyphs", 1, 55.0), _entry("cub", 1, 60.0)])
    assert [(e["dataset"], e["shot"], e["test_acc"]) for e in table] == [
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
    assert {(e["dataset"], e["shot"]) for e in entries} == {(f"d-{w}", s) for w in "ab" for s in range(40)}
