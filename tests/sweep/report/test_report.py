"""The report of a sweep as a person reads it: the text (answer first), TensorBoard (read back by TensorBoard's own
data provider and HParams backend, as the server does), and the accuracy-versus-margin figure.

The trials here are made up (sweep.storage.results.TrialRecord with Tune-like histories), so every value is known; the
real-sweep versions of these checks are in tests/sweep/workflows/test_sweep_end_to_end.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from tensorboard.plugins.hparams import api_pb2

from data.paths import DIVERGED_MARKER
from sweep import report
from sweep.report import figure, tensorboard_files
from sweep.report.text import CALIBRATION_POINTER
from sweep.storage import experiment as experiments
from sweep.storage import promotion_file
from sweep.storage.promotion_file import (
    AcrossSeeds,
    BaselineDifference,
    BaselineSection,
    PromotedTrial,
    Promotion,
    ShotScore,
)
from sweep.storage.results import TrialRecord
from sweep.storage.selections import Selection

from helpers import tensorboard as board
from helpers.specs import full_search_spec

SPEC = full_search_spec()  # 6 epochs, ASHA rungs at 1, 2, 4; val_acc_mean


def _record(trial_id, params, curve, stop):
    """A trial whose val accuracy at epoch e is curve[e-1] = (1-shot, 5-shot); CIs 2.0 / 1.5."""
    rows = []
    for epoch, (one, five) in enumerate(curve, start=1):
        rows.append(
            {
                "epoch": epoch,
                "training_iteration": epoch,
                "timestamp": 1_800_000_000 + 60 * epoch,
                "time_this_iter_s": 60.0,
                "train_loss": 4.0 / epoch,
                "train_acc": 0.1 * epoch,
                "lr": 3e-3,
                "images_per_s": 200.0,
                "val_acc_1shot": one,
                "val_ci_1shot": 2.0,
                "val_acc_5shot": five,
                "val_ci_5shot": 1.5,
                "val_acc_mean": (one + five) / 2,
            }
        )
    history = pd.DataFrame(rows)
    best = history.loc[history["val_acc_mean"].idxmax()].to_dict()
    values = {"weight_decay": 5e-4, "drop_rate": 0.1, "dropblock_size": 2, **params}
    status = "TERMINATED"
    return TrialRecord(
        trial_id, values, status, stop, len(curve), best, best["val_acc_mean"], None, history, error=None
    )


def _trials():
    full = "completed"
    asha = "stopped early (ASHA)"
    return [
        _record(
            "aaaa0001",
            {"margin": 0.0, "scale": 10.0},
            [(30, 40), (40, 55), (45, 60), (47, 63), (49, 66), (50, 68)],
            full,
        ),
        _record("aaaa0002", {"margin": -0.4, "scale": 6.0, "weight_decay": 1e-4}, [(21, 22)], asha),
        _record(
            "aaaa0003",
            {"margin": -0.1, "scale": 12.0, "dropblock_size": 3},
            [(32, 42), (42, 56), (46, 61), (48, 64), (51, 69), (52, 70)],
            full,
        ),
        _record("aaaa0004", {"margin": 0.2, "scale": 8.0}, [(28, 38), (33, 45)], asha),
        _record("aaaa0005", {"margin": 0.25, "scale": 14.0}, [(20, 20), (20, 20)], "diverged"),
        _record("aaaa0006", {"margin": -0.3, "scale": 5.5, "drop_rate": 0.0, "dropblock_size": 1}, [(24, 27)], asha),
    ]


def _promotion(experiment, records, promoted):
    """promotion.json of `promoted` = [(trial id, test 1-shot, CI, test 5-shot, CI)], ranked as given; written before
    baselines were scored (no baseline section), and read back as the report reads it."""
    by_id = {record.trial_id: record for record in records}
    trials = []
    for rank, (trial_id, one, ci1, five, ci5) in enumerate(promoted, start=1):
        record = by_id[trial_id]
        trials.append(
            PromotedTrial(
                rank=rank,
                trial_id=trial_id,
                params=record.params,
                val={k: v for k, v in record.best.items() if k.startswith("val_")},
                epoch=int(record.best["epoch"]),
                checkpoint="unused",
                test={
                    "1": ShotScore(mean=one, ci95=ci1, episodes=600),
                    "5": ShotScore(mean=five, ci95=ci5, episodes=600),
                },
            )
        )
    promotion = Promotion(
        experiment=str(experiment.root),
        objective=SPEC.objective,
        selection_metric=SPEC.selection,
        shots=[1, 5],
        test_episodes={},
        trials=trials,
    )
    promotion_file.write(experiment.promotion_file, promotion)
    return experiment.promotion()


PROMOTED = [("aaaa0003", 48.25, 0.81, 66.5, 0.7), ("aaaa0004", 31.5, 0.75, 43.0, 0.66)]  # not the first trials


@pytest.fixture
def made(tmp_path):
    experiment = experiments.create(SPEC, storage=tmp_path)
    records = _trials()
    (experiment.trial_dir("aaaa0005")).mkdir(parents=True)
    (experiment.trial_dir("aaaa0005") / DIVERGED_MARKER).write_text("training diverged: non-finite loss at epoch 3\n")
    numbers = {record.trial_id: index for index, record in enumerate(records)}
    promotion = _promotion(experiment, records, PROMOTED)
    return experiment, report.assemble(experiment, SPEC, records, promotion, numbers)


def test_the_report_starts_with_the_selected_hyperparameters_and_their_test_accuracy(made):
    experiment, built = made
    lines = report.render(built, "table").splitlines()
    assert lines[1] == str(experiment.root)
    assert lines[3].startswith("Selected hyperparameters (test accuracy on 600 fixed test episodes")
    # both shots select aaaa0003: the promoted trial with the best val accuracy of that shot
    selected = "  1-shot: 48.25 ± 0.81 %   m -0.100, β 12.00, weight decay 5.0e-04, DropBlock 0.100 / 3"
    assert lines[4].startswith(selected)
    assert lines[4].endswith("(trial aaaa0003, val 52.00 %)")
    # chosen on the one training seed every trial trains with (no promotion.extra_seeds), and said so under each shot
    chosen = (
        f"    chosen on one training seed's validation (seed {SPEC.seed}); promotion.extra_seeds retrains the promoted "
        "configurations with more seeds and chooses on their mean"
    )
    assert lines[5] == lines[8] == chosen
    # a promotion.json written before baselines were scored says so under each shot
    assert lines[6] == lines[9] == "    vs the baseline: no baseline (promoted before baselines were scored)"
    assert lines[7].startswith("  5-shot: 66.50 ± 0.70 %") and lines[7].endswith("(trial aaaa0003, val 70.00 %)")
    assert lines[11].startswith("Trials (best val_acc_mean first")
    text = "\n".join(lines)
    assert text.index("Selected hyperparameters") < text.index("Trials (") < text.index("Promoted (")


def test_each_stopped_trial_says_at_which_epoch_it_stopped_and_why(made):
    _, built = made
    text = report.render(built, "table")
    rule = "ASHA lets a trial go on only if it is in the top 1/2 of the trials that reached the rung before it"
    section = text.split(f"Trials that stopped before epoch 6 ({rule})\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section == [
        "  aaaa0002: stopped by ASHA after epoch 1 of 6: val_acc_mean 21.5 at the epoch-1 rung, 5th of the 6 trials "
        "that reported there",
        "  aaaa0004: stopped by ASHA after epoch 2 of 6: val_acc_mean 39.0 at the epoch-2 rung, 3rd of the 4 trials "
        "that reported there",
        "  aaaa0005: diverged after its last good report at epoch 2: training diverged: non-finite loss at epoch 3",
        "  aaaa0006: stopped by ASHA after epoch 1 of 6: val_acc_mean 25.5 at the epoch-1 rung, 4th of the 6 trials "
        "that reported there",
    ]


def test_json_and_markdown_carry_the_answer_the_stops_and_the_optuna_numbers(made):
    _, built = made
    data = json.loads(report.render(built, "json"))
    assert data["format"] == 1
    assert [(entry.shot, entry.trial_id, entry.test_acc) for entry in built.selected] == [
        (1, "aaaa0003", 48.25),
        (5, "aaaa0003", 66.5),
    ]
    assert [Selection.model_validate(entry) for entry in data["selected"]] == built.selected  # the typed rows
    assert [stop["trial"] for stop in data["stops"]] == ["aaaa0002", "aaaa0004", "aaaa0005", "aaaa0006"]
    assert {row["trial"]: row["optuna"] for row in data["trials"]}["aaaa0004"] == 3
    assert data["trials"][0]["trial"] == "aaaa0003"  # best objective first
    markdown = report.render(built, "md")
    assert markdown.index("Selected hyperparameters") < markdown.index("## Trials")
    assert "- 1-shot: 48.25 ± 0.81 %" in markdown


def test_before_promotion_the_report_names_the_best_trial_by_validation(tmp_path):
    experiment = experiments.create(SPEC, storage=tmp_path)
    built = report.assemble(experiment, SPEC, _trials(), None)
    lines = report.render(built, "table").splitlines()
    assert lines[3].startswith("Not promoted yet. Best by validation: trial aaaa0003 (val_acc_mean 61.00 after 6")
    assert f"negmargin sweep promote {experiment.root}" in lines[4]


def _with_baseline(experiment, promotion, seed_ids, per_seed):
    """`promotion` with m = 0 (aaaa0001) as its baseline and aaaa0003's difference to it at both shots, paired over
    `seed_ids` with those per-seed differences (the pooled one is their mean), written and read back."""
    mean = sum(per_seed) / len(per_seed)
    difference = BaselineDifference(
        mean_diff=mean,
        ci95=0.7,
        t_pvalue=1.2e-8,
        wilcoxon_pvalue=3e-8,
        n=600,
        seeds=len(seed_ids),
        seed_ids=seed_ids,
        per_seed=per_seed,
        verdict="beats the baseline",
    )
    section = BaselineSection(
        note="baseline: m = 0 (trial aaaa0001)",
        label="m = 0",
        trial_id="aaaa0001",
        differences={"aaaa0003": {"1": difference, "5": difference}},
    )
    promotion_file.write(experiment.promotion_file, promotion.model_copy(update={"baseline": section}))
    return experiment.promotion()


def test_the_answer_from_one_sweep_says_it_is_one_training_seed_and_points_at_the_calibrations_spread(tmp_path):
    experiment = experiments.create(SPEC, storage=tmp_path)
    records = _trials()
    promotion = _with_baseline(experiment, _promotion(experiment, records, PROMOTED), [SPEC.seed], [2.1])
    built = report.assemble(experiment, SPEC, records, promotion)
    lines = report.render(built, "table").splitlines()
    assert lines[5].startswith(f"    chosen on one training seed's validation (seed {SPEC.seed}); ")
    assert lines[6] == (
        "    vs the baseline, m = 0 (trial aaaa0001): +2.10 ± 0.70 points (paired t p = 1.2e-08, Wilcoxon p = 3e-08): "
        "beats the baseline"
    )
    assert lines[7] == (
        f"    from one training seed (seed {SPEC.seed}): another seed can move this difference; by how much is the "
        'calibration\'s per-seed spread (README, "Calibration"; benchmarks/RESULTS.md)'
    )
    assert lines[8].startswith("  5-shot: 66.50 ± 0.70 %") and lines[9:12] == lines[5:8]  # under each shot
    assert f"- {lines[7].strip()}" in report.render(built, "md").splitlines()
    # the places it points at exist: README's Calibration section and RESULTS.md's calibration table
    root = Path(__file__).resolve().parents[3]
    assert "### Calibration: `negmargin calibrate`" in (root / "README.md").read_text()
    assert "<!-- calibration:default -->" in (root / "benchmarks" / "RESULTS.md").read_text()
    assert CALIBRATION_POINTER == 'README, "Calibration"; benchmarks/RESULTS.md'


def _with_seeds(promotion, val_runs):
    """`promotion` with every trial's runs across seeds: {trial id: {shot: validation of each run}} (its test means
    made up), as promotion.extra_seeds records them."""
    trials = []
    for trial in promotion.trials:
        seeds = {
            shot: AcrossSeeds(
                mean=40.0, std=1.0, n=len(runs), runs=[40.0] * len(runs), val_mean=sum(runs) / len(runs), val_runs=runs
            )
            for shot, runs in val_runs[trial.trial_id].items()
        }
        trials.append(trial.model_copy(update={"seeds": seeds}))
    return promotion.model_copy(update={"trials": trials})


def test_with_extra_seeds_the_answer_is_chosen_on_the_seeds_validation_and_lists_each_seeds_difference(tmp_path):
    experiment = experiments.create(SPEC, storage=tmp_path)
    records = _trials()
    val_runs = {
        "aaaa0003": {"1": [52.0, 50.0, 51.0], "5": [70.0, 68.0, 69.5]},
        "aaaa0004": {"1": [33.0, 30.0, 31.0], "5": [45.0, 44.0, 43.0]},
    }
    promotion = _with_seeds(_promotion(experiment, records, PROMOTED), val_runs)
    promotion = _with_baseline(experiment, promotion, [0, 1, 2], [1.5, 2.9, -0.4])
    built = report.assemble(experiment, SPEC, records, promotion)
    lines = report.render(built, "table").splitlines()
    assert lines[4].endswith("(trial aaaa0003, val 51.00 %)")  # the mean over the seeds, not its own 52.00
    chosen = "chosen on validation averaged over 3 training seeds (promotion.extra_seeds; the val above is that mean)"
    assert lines[5] == lines[9] == f"    {chosen}"
    assert lines[6] == (
        "    vs the baseline, m = 0 (trial aaaa0001): +1.33 ± 0.70 points (paired t p = 1.2e-08, Wilcoxon p = 3e-08) "
        "over 3 seeds (seed 0 +1.50, seed 1 +2.90, seed 2 -0.40): beats the baseline"
    )
    assert lines[7] == "    from 3 training seeds (promotion.extra_seeds): the per-seed differences are listed above"
    assert lines[8].endswith("(trial aaaa0003, val 69.17 %)")
    assert not any("one training seed" in line for line in lines)
    assert [(entry.val_acc, entry.val_seeds) for entry in built.selected] == [(51.0, 3), (69.167, 3)]
    # the promoted table shows the validation mean the answer was chosen on beside the test mean across seeds
    assert list(built.promoted["seeds_val_1shot"]) == ["51.00 (n=3)", "31.33 (n=3)"]
    assert "seeds val 5shot" in report.render(built, "md").split("## Promoted", 1)[1]


def test_a_selected_baseline_makes_no_claim_about_seeds(tmp_path):
    experiment = experiments.create(SPEC, storage=tmp_path)
    records = _trials()
    promotion = _promotion(experiment, records, PROMOTED)
    difference = _with_baseline(experiment, promotion, [SPEC.seed], [2.1]).baseline.differences["aaaa0003"]
    section = BaselineSection(label="m = 0", trial_id="aaaa0003", differences={"aaaa0003": difference})
    promotion_file.write(experiment.promotion_file, promotion.model_copy(update={"baseline": section}))
    lines = report.render(report.assemble(experiment, SPEC, records, experiment.promotion()), "table").splitlines()
    assert lines[4].endswith("(trial aaaa0003, val 52.00 %)")  # selected, and the baseline itself
    assert lines[5].startswith("    chosen on one training seed's validation")  # how it was chosen is said still
    assert lines[6] == "    vs the baseline, m = 0 (trial aaaa0003): the selected configuration is the baseline (m = 0)"
    assert lines[7].startswith("  5-shot: ")


# ---------------------------------------------------------------- TensorBoard, as the server reads it


@pytest.mark.parametrize("logdir", ["experiment", "tensorboard"])
def test_tensorboard_holds_one_hparams_experiment_with_every_parameter_metric_and_promoted_test(made, logdir):
    experiment, built = made
    report.write_tensorboard(experiment, built)
    loaded = board.load(experiment.root if logdir == "experiment" else experiment.tensorboard_dir)
    prefix = "tensorboard/" if logdir == "experiment" else ""

    declared = loaded.experiment()
    infos = {info.name: info for info in declared.hparam_infos}
    # the HParams tab ticks the first five: the searched parameters (they differ between trials), then the outcome
    assert list(infos) == ["drop_rate", "dropblock_size", "margin", "scale", "weight_decay", "stop"]
    assert [info.differs for info in infos.values()] == [True] * 5 + [False]
    assert (infos["margin"].domain_interval.min_value, infos["margin"].domain_interval.max_value) == (-0.5, 0.3)
    # integers as their values: TensorBoard prints numbers with 5 digits (2.0000), so a few ints are listed as text
    assert infos["dropblock_size"].type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in infos["dropblock_size"].domain_discrete.values] == ["1", "2", "3"]
    assert infos["stop"].type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in infos["stop"].domain_discrete.values] == [
        "ASHA at epoch 1",
        "ASHA at epoch 2",
        "ASHA at epoch 4",
        "completed",
        "diverged",
        "error",
    ]
    metric_tags = [info.name.tag for info in declared.metric_infos]
    assert metric_tags == [  # the HParams table shows the first five
        "whole_trial/test_acc_1shot",
        "whole_trial/test_acc_5shot",
        "whole_trial/test_vs_baseline_1shot",  # the answer's paired difference to the baseline (m = 0)
        "whole_trial/test_vs_baseline_5shot",
        "whole_trial/val_acc_1shot",
        "whole_trial/val_acc_5shot",
        "whole_trial/epochs_run",
        "whole_trial/test_ci95_1shot",
        "whole_trial/test_ci95_5shot",
        "whole_trial/test_vs_baseline_p_1shot",
        "whole_trial/test_vs_baseline_p_5shot",
        "whole_trial/val_ci95_1shot",
        "whole_trial/val_ci95_5shot",
        "whole_trial/val_acc_mean",
    ]

    groups = loaded.session_groups()
    assert sorted(group.name for group in groups) == sorted(record.trial_id for record in built.records)
    assert all(len(group.sessions) == 1 for group in groups)
    by_trial = {group.name: group for group in groups}
    for record in built.records:
        group = by_trial[record.trial_id]
        assert group.sessions[0].name == f"{prefix}trial_{record.trial_id}"
        values = {name: board.hparam_value(value) for name, value in group.hparams.items()}
        assert values["margin"] == pytest.approx(record.params["margin"])
        assert values["dropblock_size"] == str(record.params["dropblock_size"])
        asha = record.stop_reason == "stopped early (ASHA)"
        assert values["stop"] == (f"ASHA at epoch {record.epochs_run}" if asha else record.stop_reason)
        metrics = {value.name.tag: value.value for value in group.metric_values}
        assert metrics["whole_trial/val_acc_1shot"] == pytest.approx(record.best["val_acc_1shot"])
        assert metrics["whole_trial/val_ci95_5shot"] == pytest.approx(1.5)
        assert metrics["whole_trial/epochs_run"] == record.epochs_run
        promoted = {trial_id: values for trial_id, *values in PROMOTED}
        if record.trial_id in promoted:
            one, ci1, five, ci5 = promoted[record.trial_id]
            assert metrics["whole_trial/test_acc_1shot"] == pytest.approx(one)
            assert metrics["whole_trial/test_ci95_1shot"] == pytest.approx(ci1)
            assert metrics["whole_trial/test_acc_5shot"] == pytest.approx(five)
            assert metrics["whole_trial/test_ci95_5shot"] == pytest.approx(ci5)
        else:
            assert not any(tag.startswith("whole_trial/test_") for tag in metrics)
    status = {group.name: group.sessions[0].status for group in groups}
    assert status["aaaa0001"] == api_pb2.STATUS_SUCCESS and status["aaaa0005"] == api_pb2.STATUS_FAILURE


def test_tensorboard_curves_have_readable_tags_per_epoch_and_the_figure_is_an_image(made):
    experiment, built = made
    report.write_tensorboard(experiment, built)
    loaded = board.load(experiment.tensorboard_dir)
    run = "trial_aaaa0003"
    assert {"train/loss", "train/acc", "train/lr", "val/acc_1shot", "val/ci95_1shot", "val/acc_mean"} <= set(
        loaded.tags("scalars")[run]
    )
    assert loaded.scalars(run, "val/acc_5shot") == [(e, float(v)) for e, v in enumerate([42, 56, 61, 64, 69, 70], 1)]
    assert loaded.scalars(run, "train/loss") == [(e, pytest.approx(4.0 / e)) for e in range(1, 7)]
    assert not any(tag.startswith(("ray/", "hparam/")) for tags in loaded.tags("scalars").values() for tag in tags)
    assert loaded.tags("images") == {".": [tensorboard_files.FIGURE_TAG]}
    png = experiment.margin_figure.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


# ---------------------------------------------------------------- the figure


def test_margin_figure_separates_budgets_shots_and_val_from_test(made):
    _, built = made
    drawn = figure.margin_figure(built)
    panels = [axes for axes in drawn.axes if axes.get_title() in ("1-shot", "5-shot")]
    assert [axes.get_title() for axes in panels] == ["1-shot", "5-shot"]
    full_budget = sorted(r.params["margin"] for r in built.records if r.stop_reason == "completed")
    for panel in panels:
        markers = [line for line in panel.lines if line.get_marker() in ("o", "D")]
        circles = [line for line in markers if line.get_marker() == "o"]
        diamonds = [line for line in markers if line.get_marker() == "D"]
        assert len(circles) == len(built.records) and len(diamonds) == len(PROMOTED)
        hollow = {float(line.get_xdata()[0]) for line in circles if line.get_markerfacecolor() == "white"}
        assert hollow == {r.params["margin"] for r in built.records if r.stop_reason != "completed"}
        (trend,) = [line for line in panel.lines if line.get_linestyle() == "--"]
        assert sorted(trend.get_xdata()) == full_budget  # the curve joins same-budget points only
        assert {text.get_text().split(" · ")[1] for text in panel.texts} == {"6 ep", "2 ep", "1 ep"}
        assert len(panel.collections) >= len(built.records)  # error bars (val CIs and test CIs)
    # the β colour of two trials differs, and the hyperparameter table lists every trial
    side = next(axes for axes in drawn.axes if axes.get_title(loc="left").startswith("trials"))
    table = side.texts[0].get_text().splitlines()
    assert len(table) == 1 + len(built.records) and "DropBlock" in table[0]
    assert not math.isclose(*[built.records[i].params["scale"] for i in (0, 1)])


def test_labels_of_neighbouring_points_are_stacked_apart_and_lone_ones_stay_put():
    # the demo's 1-shot panel: m = 0 and m = 0.001 a fraction of a point apart, -0.116 and -0.078 close, -0.3 alone
    xy = [(-0.3, 64.2), (-0.116, 63.5), (0.0, 62.5), (-0.078, 62.1), (0.001, 61.9)]
    places = figure.label_places(xy, x_near=0.05, y_near=3.0)
    assert places[0] == (0.0, "left")
    assert places[2][0] - places[4][0] == figure.LABEL_SPACING_PT  # the higher point's label on top
    assert places[1][0] - places[3][0] == figure.LABEL_SPACING_PT
    assert [side for _, side in places] == ["left", "left", "left", "right", "right"]  # a group's leftmost: left
    far_apart = figure.label_places([(0.0, 60.0), (0.0, 70.0)], x_near=0.05, y_near=3.0)
    assert far_apart == [(0.0, "left"), (0.0, "left")]
