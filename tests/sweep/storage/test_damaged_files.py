"""Every file an experiment keeps is one typed, versioned definition: written with its `format`, read back equal, read
as format 1 when written before the field existed; a truncated, garbage or newer-format file is one line naming the
file and what to do, exit code 2, and nothing in the storage directory changes (progress.json, selections.yaml,
study.json, and promotion.json, which the report's selected rows come from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sweep.cli import main
from sweep.errors import ExperimentError
from sweep.storage import experiment as experiments
from sweep.storage import progress_file, selections
from sweep.storage.progress_file import Attempt, Progress
from sweep.storage.selections import BaselineTrial, Selection, VersusBaseline
from sweep.study import study_file
from sweep.study.layout import StudyDir
from sweep.study.request import StudyRequest
from sweep.study.study_file import (
    Accuracy,
    EpisodeSetInfo,
    MarginComparison,
    MarginSummary,
    RunRow,
    Spread,
    Study,
)
from sweep.workflows import sweep_run

from helpers.specs import full_search_spec, full_search_spec_data

DAMAGED = {
    "truncated": ('{"done": {"trials": "2026-11-27T1', "not valid JSON (Unterminated string"),
    "garbage": ("\x00\x17PK\x03\x04 not json at all", "not valid JSON (Expecting value"),
    "newer": ('{"format": 99, "done": {}}', "of format 99, newer than this negmargin reads (1); upgrade negmargin"),
}
YAML_DAMAGED = {
    "truncated": ("format: 1\nselections:\n  - {dataset: glyphs, shot: 1", "not valid YAML ("),
    "garbage": ("- just\n- a list\n", "not a selections file (got list)"),
    "newer": ("format: 2\nselections: []\n", "of format 2, newer than this negmargin reads (1); upgrade negmargin"),
}


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root`: a file's bytes, None for a directory."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def _selection(shot: int = 1) -> Selection:
    return Selection(
        dataset="glyphs",
        backbone="conv4",
        loss="neg-cosine",
        shot=shot,
        params={"margin": -0.1, "scale": 10.0},
        val_acc=61.3,
        test_acc=58.9,
        test_ci95=0.81,
        test_episodes=600,
        experiment="/x/experiments/e",
        trial_id="3b1c",
        updated="2026-11-27T17:02:11",
        baseline=BaselineTrial(label="m = 0", trial_id="9a0e"),
        vs_baseline=VersusBaseline(
            mean_diff=2.1, ci95=0.7, t_pvalue=1e-8, wilcoxon_pvalue=3e-8, seeds=1, verdict="beats", text="+2.10"
        ),
    )


def _study(experiment_root: Path) -> Study:
    request = StudyRequest(margins=[-0.2, 0.0], params={"scale": 10.0}, source="test")
    accuracy = {"novel": {"1": Accuracy(mean=50.0, ci95=1.0, per_seed=[50.0])}}
    spread = {"novel": {"phi": Spread(mean=1.5, std=0.0, runs=[1.5])}}
    return Study(
        experiment=str(experiment_root),
        setting="glyphs / conv4 / neg-cosine",
        objective="val_acc_mean",
        shots=[1],
        request=request,
        episodes={"novel": {"1": EpisodeSetInfo(path="/x/test_1shot.pt", episodes=20, way=5, queries=4)}},
        held_out_images=90,
        runs=[RunRow(margin=-0.2, seed=0, checkpoint="/x/c", epoch=3, train_acc=0.5, val_acc_1shot=48.0)],
        margins=[
            MarginSummary(margin=-0.2, loss="neg-cosine", seeds=[0], accuracy=accuracy, discriminability=spread),
            MarginSummary(margin=0.0, loss="cosine", seeds=[]),
        ],
        comparisons=[
            MarginComparison(
                domain="novel",
                shot=1,
                margin=-0.2,
                seeds=[0],
                mean_diff=1.0,
                ci95=0.5,
                t_pvalue=0.01,
                wilcoxon_pvalue=float("nan"),
                n=20,
                per_seed_diff=[1.0],
                t_pvalue_holm=0.01,
                significant=True,
            )
        ],
        answer="glyphs / conv4 / neg-cosine: 1-shot: m = -0.2 beats m = 0",
        seconds=1.5,
    )


# ---------------------------------------------------------------- written, read back, older files


def test_each_format_is_written_with_its_version_and_read_back_equal(tmp_path: Path) -> None:
    progress = Progress().with_attempt(Attempt(started="t0", host="h", pid=1, resumed=False)).with_done("trials", "t1")
    path = progress_file.write(tmp_path / "progress.json", progress)
    assert json.loads(path.read_text()) == {
        "format": 1,
        "done": {"trials": "t1"},
        "attempts": [{"started": "t0", "host": "h", "pid": 1, "resumed": False}],
    }
    assert progress_file.read(path) == progress
    table = selections.merge(tmp_path / "selections.yaml", [_selection(5), _selection(1)])
    on_disk = yaml.safe_load((tmp_path / "selections.yaml").read_text())
    assert on_disk["format"] == 1 and [entry["shot"] for entry in on_disk["selections"]] == [1, 5]
    assert selections.read(tmp_path / "selections.yaml") == table == [_selection(1), _selection(5)]
    study = _study(tmp_path)
    study_file.write(tmp_path / "study.json", study)
    assert json.loads((tmp_path / "study.json").read_text())["format"] == 1
    read = study_file.read(tmp_path / "study.json")
    assert read.model_dump_json() == study.model_dump_json()  # NaN included
    assert read.runs[0].model_dump()["val_acc_1shot"] == 48.0 and read.scored_margins() == [study.margins[0]]


def test_files_written_before_the_format_field_read_as_format_1(tmp_path: Path) -> None:
    (tmp_path / "progress.json").write_text('{"done": {"trials": "t1"}, "attempts": []}')
    assert progress_file.read(tmp_path / "progress.json") == Progress(done={"trials": "t1"})
    old = {"selections": [_selection(1).model_dump(exclude_none=True)]}
    (tmp_path / "selections.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    assert selections.read(tmp_path / "selections.yaml") == [_selection(1)]
    unversioned = json.loads(study_file.write(tmp_path / "study.json", _study(tmp_path)).read_text())
    del unversioned["format"]
    (tmp_path / "study.json").write_text(json.dumps(unversioned))
    assert study_file.read(tmp_path / "study.json").model_dump_json() == _study(tmp_path).model_dump_json()


# ---------------------------------------------------------------- damaged: one line, exit 2, nothing touched


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_progress_file_stops_sweep_run_in_one_line(tmp_path, capsys, damage: str) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(full_search_spec_data()))
    root = experiments.create_at(full_search_spec(), tmp_path / "exp").root
    text, reason = DAMAGED[damage]
    (root / "progress.json").write_text(text)
    before = _snapshot(tmp_path)
    assert main(["sweep", "run", str(spec_file), "--experiment", str(root)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"negmargin: error: {root / 'progress.json'}: ") and reason in line
    if damage != "newer":
        assert line.endswith("delete it and run the same command again: every stage is then redone from what the "
                             "experiment holds (finished trials are kept)")  # fmt: skip
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("damage", sorted(YAML_DAMAGED))
def test_a_damaged_selections_file_stops_select_and_promote_in_one_line(tmp_path, capsys, damage: str) -> None:
    root = experiments.create_at(full_search_spec(), tmp_path / "exp").root
    path = tmp_path / "selections.yaml"
    text, reason = YAML_DAMAGED[damage]
    path.write_text(text)
    before = _snapshot(tmp_path)
    assert main(["sweep", "select", "--selections", str(path)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"negmargin: error: {path}: ") and reason in line
    if damage != "newer":
        assert line.endswith("fix or delete it: `negmargin sweep promote EXPERIMENT` writes an experiment's entries "
                             "again")  # fmt: skip
    assert main(["sweep", "promote", str(root), "--selections", str(path)]) == 2  # before anything is scored
    assert _one_line(capsys) == line
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_study_file_stops_study_show_in_one_line(tmp_path, capsys, damage: str) -> None:
    experiment = experiments.create_at(full_search_spec(), tmp_path / "exp")
    path = StudyDir.of(experiment).study_file
    path.parent.mkdir()
    text, reason = DAMAGED[damage]
    path.write_text(text.replace('"done"', '"answer"'))
    before = _snapshot(tmp_path)
    assert main(["sweep", "study", str(experiment.root), "--show"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"negmargin: error: {path}: ") and reason in line
    if damage != "newer":
        assert line.endswith(f"run `negmargin sweep study {experiment.root}` again to rewrite it (what it trained is "
                             "kept)")  # fmt: skip
    assert _snapshot(tmp_path) == before


def test_study_show_prints_the_saved_study(tmp_path, capsys) -> None:
    experiment = experiments.create_at(full_search_spec(), tmp_path / "exp")
    StudyDir.of(experiment).root.mkdir()
    study_file.write(StudyDir.of(experiment).study_file, _study(experiment.root))
    assert main(["sweep", "study", str(experiment.root), "--show", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("margin,loss,seeds,best_epoch,train_acc,novel_1shot,novel_1shot_ci95,")
    assert out[1].startswith("-0.2,neg-cosine,1,3.0,0.5,50.0,1.0,,,1.0,0.5,0.01,True,")  # m = 0: no run, no epoch
    assert out[-1] == "glyphs / conv4 / neg-cosine: 1-shot: m = -0.2 beats m = 0"


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_promotion_file_stops_the_report_in_one_line(tmp_path, capsys, damage: str) -> None:
    """The report's selected rows come from promotion.json: a damaged one is one line, before Tune's state is read."""
    experiment = experiments.create_at(full_search_spec(), tmp_path / "exp")
    text, reason = DAMAGED[damage]
    experiment.promotion_file.write_text(text.replace('"done"', '"trials"'))
    before = _snapshot(tmp_path)
    assert main(["sweep", "report", str(experiment.root)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"negmargin: error: {experiment.promotion_file}: ") and reason in line
    if damage != "newer":
        assert line.endswith("run `negmargin sweep promote EXPERIMENT` again to rewrite it")
    assert _snapshot(tmp_path) == before


def test_the_python_api_raises_the_same_line(tmp_path: Path) -> None:
    import sweep

    experiment = experiments.create_at(full_search_spec(), tmp_path / "exp")
    (experiment.root / "progress.json").write_text('{"format": 1, "done": []}')
    with pytest.raises(ExperimentError, match=r"progress.json: not a progress file \(done: Input should be a valid"):
        sweep_run.read_progress(experiment)
    with pytest.raises(ExperimentError, match="study.json: no study here yet; run `negmargin sweep study .*` first"):
        sweep.read_study(experiment.root)
