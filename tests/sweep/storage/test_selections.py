"""The selections file: each shot's answer is the promoted trial best on validation (averaged over its training seeds
with promotion.extra_seeds, never on test); merges replace entries of the same setting, keep the others, and never
lose one to a race."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from sweep.storage import promotion_file, selections
from sweep.storage.promotion_file import AcrossSeeds, PromotedTrial, Promotion, ShotScore

from helpers.specs import full_search_spec

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


SPEC = full_search_spec()  # objective val_acc_mean, promotion at 1 and 5 shots


def _trial(rank: int, trial_id: str, own: dict[int, float], val_runs: dict[int, list[float]] | None) -> PromotedTrial:
    """A promoted trial whose own validation at `shot` is own[shot] and, with `val_runs`, whose configuration's runs
    across seeds have those validation scores (the first its own) and a test mean that favours the other trial."""
    seeds = {}
    for shot, runs in (val_runs or {}).items():
        test = [80.0 - rank] * len(runs)  # test never decides: rank 1 has the better test mean at every shot
        seeds[str(shot)] = AcrossSeeds(
            mean=80.0 - rank, std=0.0, n=len(runs), runs=test, val_mean=sum(runs) / len(runs), val_runs=runs
        )
    return PromotedTrial(
        rank=rank,
        trial_id=trial_id,
        params={"margin": -0.1 * rank},
        val={f"val_acc_{shot}shot": value for shot, value in own.items()},
        epoch=6,
        checkpoint=f"/x/{trial_id}/checkpoint",
        test={str(shot): ShotScore(mean=80.0 - rank, ci95=1.0, episodes=600) for shot in own},
        seeds=seeds,
    )


def _two_seed_promotion() -> Promotion:
    """Trial a ranks first on its own validation at both shots, b on the mean over its configuration's two seeds."""
    a = _trial(1, "a", {1: 60.0, 5: 75.0}, {1: [60.0, 50.0], 5: [75.0, 68.0]})
    b = _trial(2, "b", {1: 58.0, 5: 74.0}, {1: [58.0, 57.0], 5: [74.0, 73.0]})
    return Promotion(
        experiment="/x/experiments/e",
        objective=SPEC.objective,
        selection_metric=SPEC.selection,
        shots=[1, 5],
        test_episodes={},
        trials=[a, b],
    )


def test_with_extra_seeds_the_answer_is_the_best_validation_mean_over_seeds_not_one_seeds():
    entries = selections.entries_from_promotion(SPEC, _two_seed_promotion())
    assert [(e.shot, e.trial_id, e.val_acc, e.val_seeds) for e in entries] == [(1, "b", 57.5, 2), (5, "b", 73.5, 2)]
    assert [e.test_acc for e in entries] == [78.0, 78.0]  # b's own test, though a's is higher: test never chooses


def test_one_seed_the_answer_is_the_best_own_validation_and_the_objective_stands_in_for_an_unvalidated_shot():
    a = _trial(1, "a", {1: 60.0, 5: 75.0}, None)
    b = _trial(2, "b", {1: 58.0, 5: 76.0}, None)
    b = b.model_copy(update={"val": {"val_acc_1shot": 58.0, SPEC.objective: 90.0}})  # no 5-shot validation: objective
    promotion = _two_seed_promotion().model_copy(update={"trials": [a, b]})
    entries = selections.entries_from_promotion(SPEC, promotion)
    assert [(e.shot, e.trial_id, e.val_acc, e.val_seeds) for e in entries] == [(1, "a", 60.0, 1), (5, "b", 90.0, 1)]


def test_a_promotion_file_written_before_seed_validation_was_recorded_reads_and_chooses_on_one_seed(tmp_path: Path):
    path = promotion_file.write(tmp_path / "promotion.json", _two_seed_promotion())
    old = json.loads(path.read_text())
    for trial in old["trials"]:
        for seeds in trial["seeds"].values():
            del seeds["val_mean"], seeds["val_runs"]
    path.write_text(json.dumps(old))
    read = promotion_file.read(path)
    assert read is not None and read.format == 1
    assert read.trials[0].seeds["1"] == AcrossSeeds(mean=79.0, std=0.0, n=2, runs=[79.0, 79.0])  # val_mean None
    entries = selections.entries_from_promotion(SPEC, read)
    assert [(e.shot, e.trial_id, e.val_acc, e.val_seeds) for e in entries] == [(1, "a", 60.0, 1), (5, "a", 75.0, 1)]


def test_the_seed_count_is_written_and_a_file_written_before_it_reads_as_one_seed(tmp_path: Path):
    path = tmp_path / "selections.yaml"
    selections.merge(path, selections.entries_from_promotion(SPEC, _two_seed_promotion()))
    written = yaml.safe_load(path.read_text())
    assert [(entry["val_acc"], entry["val_seeds"]) for entry in written["selections"]] == [(57.5, 2), (73.5, 2)]
    for entry in written["selections"]:
        del entry["val_seeds"]
    path.write_text(yaml.safe_dump(written, sort_keys=False))
    assert [entry.val_seeds for entry in selections.read(path)] == [1, 1]
