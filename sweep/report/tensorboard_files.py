"""The TensorBoard view of a sweep: <exp>/tensorboard, rewritten whole from the report each time.

    tensorboard/                 the HParams experiment: every swept parameter with its domain (integers as their
                                 values), how each trial stopped, every metric; the accuracy-versus-margin figure
    tensorboard/trial_<id>/      one HParams session per Ray trial (group name = the trial id), its curves per
                                 epoch (train/loss, train/acc, train/lr, val/acc_1shot, val/ci95_1shot, …) and its
                                 one-value metrics under whole_trial/ (best val accuracy and CI per shot, epochs run,
                                 test accuracy, CI and difference to the baseline per shot for promoted trials and
                                 the baseline only: others leave those empty)

Everything is written with TensorBoard's own protos and event writer (the hparams plugin's summary_v2 for the
experiment and session starts), so no TensorFlow or torch is needed. Ray Tune writes no TensorBoard files of its
own (sweep.tuning.tune_loggers): this directory is the only one TensorBoard finds under the experiment.
"""

from __future__ import annotations

import math
import shutil
import struct
import time
from pathlib import Path
from typing import Any, TypeGuard

import pandas as pd
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from sweep.report.stops import ASHA_STOP
from sweep.report.tables import Report
from sweep.schema.hyperparameters import HYPERPARAMETER
from sweep.schema.objectives import OBJECTIVES
from sweep.schema.spec import ParameterSpace
from sweep.storage.experiment import trial_dirname
from sweep.storage.results import TrialRecord

FIGURE_TAG = "sweep/accuracy_vs_margin"
METRIC_GROUP = "whole_trial"  # tag prefix of the one-value metrics: the Scalars page sorts it after train/, val/
STOP_HPARAM = "stop"
TRAIN_CURVES = {
    "train_loss": "train/loss",
    "train_acc": "train/acc",
    "lr": "train/lr",
    "images_per_s": "train/images_per_s",
}


# ---------------------------------------------------------------- what is declared


def _listed_ints(space: ParameterSpace) -> list[int] | None:
    """The values of an integer parameter when it has few (at most 16, in the same order as numbers and as text).

    TensorBoard's HParams table prints every number with 5 significant digits (a DropBlock size of 2 as 2.0000)
    and its hparams API has no integer type (IntInterval is declared as float64), so such a parameter is declared
    as the discrete set of its values' decimal strings, "1", "2", "3": shown as written, filtered by ticking values.
    """
    if space.int is not None:
        values = list(range(int(space.int[0]), int(space.int[1]) + 1))
    elif space.choice is not None and all(float(v).is_integer() for v in space.choice):
        values = sorted({int(v) for v in space.choice})
    else:
        return None
    as_text = [str(v) for v in values]
    return values if len(values) <= 16 and sorted(as_text) == as_text else None


def _domain(space: ParameterSpace) -> hp.Domain:
    listed = _listed_ints(space)
    if listed is not None:
        return hp.Discrete([str(v) for v in listed])
    if space.int is not None:
        return hp.IntInterval(int(space.int[0]), int(space.int[1]))
    if space.choice is not None:
        return hp.Discrete([float(v) for v in space.choice])
    low, high = space.bounds()
    return hp.RealInterval(float(low), float(high))


def _session_value(space: ParameterSpace, value: Any) -> Any:
    if _listed_ints(space) is not None:
        return str(int(value))
    return int(value) if space.int is not None else float(value)


def _asha_rungs(report: Report) -> list[int]:
    """The epochs at which ASHA compares trials: grace_period · reduction_factor^k below the budget."""
    rungs, epoch = [], float(report.spec.scheduler.grace_period)
    while epoch < report.spec.epochs:
        rungs.append(math.ceil(epoch))
        epoch *= report.spec.scheduler.reduction_factor
    return rungs


def stop_label(record: TrialRecord) -> str:
    """How a trial stopped, short enough for a table cell: completed, ASHA at epoch 2, diverged, error."""
    if record.stop_reason == ASHA_STOP:
        return f"ASHA at epoch {record.epochs_run}"
    return record.stop_reason


def hparams(report: Report) -> list[hp.HParam]:
    """The declared hyperparameters: every swept parameter with its domain, then how the trial stopped."""
    searched = report.spec.searched()
    declared = [
        hp.HParam(name, _domain(space), display_name=HYPERPARAMETER[name].display_name, description=_describe(space))
        for name, space in searched.items()
    ]
    asha_epochs = sorted(
        set(_asha_rungs(report)) | {r.epochs_run for r in report.records if r.stop_reason == ASHA_STOP}
    )
    labels = ["completed", *(f"ASHA at epoch {epoch}" for epoch in asha_epochs), "diverged", "error"]
    labels += sorted({stop_label(r) for r in report.records} - set(labels))
    declared.append(
        hp.HParam(
            STOP_HPARAM,
            hp.Discrete(labels),
            display_name="how it stopped",
            description="completed its epochs, stopped early by ASHA at a rung, diverged, or failed",
        )
    )
    return declared


def _describe(space: ParameterSpace) -> str:
    if space.choice is not None:
        return f"searched over {space.choice}"
    low, high = space.bounds()
    return f"searched {space.kind} in [{low:g}, {high:g}]"


def _metric(tag: str, display: str, description: str, dataset: int | None = None) -> hp.Metric:
    return hp.Metric(f"{METRIC_GROUP}/{tag}", display_name=display, description=description, dataset_type=dataset)


def metrics(report: Report) -> list[hp.Metric]:
    """The declared metrics, in the order the HParams table shows them (it ticks the first five): test accuracy per
    promoted shot, best val accuracy per shot, epochs run; then the 95% CIs and the objective."""
    spec = report.spec
    test_episodes, val_episodes = spec.promotion.test_episodes, spec.validation.episodes
    validation = hp.Metric.VALIDATION
    first, then = [], []
    for shot in spec.promotion.shots:
        first.append(_metric(f"test_acc_{shot}shot", f"test {shot}-shot %", f"promoted only, {test_episodes} episodes"))
        then.append(_metric(f"test_ci95_{shot}shot", f"test {shot}-shot CI", "95% CI half-width of the test accuracy"))
    for shot in spec.promotion.shots:
        first.append(
            _metric(
                f"test_vs_baseline_{shot}shot",
                f"test {shot}-shot vs baseline",
                "points: test accuracy minus the baseline's (m = 0) on the same episodes; promoted and baseline only",
            )
        )
        then.append(_metric(f"test_vs_baseline_p_{shot}shot", f"vs baseline {shot}-shot p", "paired t-test p-value"))
    for shot in spec.validation.shots:
        first.append(_metric(f"val_acc_{shot}shot", f"val {shot}-shot %", f"best, {val_episodes} episodes", validation))
        then.append(_metric(f"val_ci95_{shot}shot", f"val {shot}-shot CI", "95% CI half-width, same epoch", validation))
    first.append(_metric("epochs_run", "epochs run", f"of a budget of {spec.epochs}"))
    if len(OBJECTIVES[spec.objective]) > 1:
        then.append(_metric(spec.objective, spec.objective, "the sweep's objective, best", validation))
    return first + then


# ---------------------------------------------------------------- what each trial holds


def _is_value(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def curve_tag(column: str, objective: str) -> str | None:
    """The TensorBoard tag of a result column (train_loss -> train/loss, val_acc_1shot -> val/acc_1shot,
    val_ci_1shot -> val/ci95_1shot), or None for Tune's bookkeeping."""
    if column in TRAIN_CURVES:
        return TRAIN_CURVES[column]
    if column.startswith("val_ci_"):
        return "val/ci95_" + column.removeprefix("val_ci_")
    if column.startswith("val_acc_"):
        return "val/" + column.removeprefix("val_")
    if column == objective:
        return f"val/{objective.removeprefix('val_')}"
    return None


def _session_values(record: TrialRecord, report: Report) -> dict[str, Any]:
    searched = report.spec.searched()
    values: dict[str, Any] = {name: _session_value(space, record.params[name]) for name, space in searched.items()}
    values[STOP_HPARAM] = stop_label(record)
    return values


def _final_values(record: TrialRecord, report: Report) -> dict[str, tuple[float, int]]:
    """tag -> (value, step) of a trial's one-value metrics; a test metric only for a promoted trial."""
    spec, best = report.spec, record.best
    best_epoch = int(best.get("epoch", record.epochs_run) or 0)
    values: dict[str, tuple[float, int]] = {}
    for shot in spec.validation.shots:
        for key, tag in (
            (f"val_acc_{shot}shot", f"val_acc_{shot}shot"),
            (f"val_ci_{shot}shot", f"val_ci95_{shot}shot"),
        ):
            if _is_value(best.get(key)):
                values[f"{METRIC_GROUP}/{tag}"] = (float(best[key]), best_epoch)
    if len(OBJECTIVES[spec.objective]) > 1 and _is_value(record.best_objective):
        values[f"{METRIC_GROUP}/{spec.objective}"] = (float(record.best_objective), best_epoch)
    values[f"{METRIC_GROUP}/epochs_run"] = (float(record.epochs_run), record.epochs_run)
    promoted = report.promoted[report.promoted["trial"] == record.trial_id] if not report.promoted.empty else None
    if promoted is not None and len(promoted):
        row = promoted.iloc[0]
        step = int(row["epoch"]) if _is_value(row.get("epoch")) else best_epoch
        for shot in spec.promotion.shots:
            for column, tag in (
                (f"test_{shot}shot", f"test_acc_{shot}shot"),
                (f"ci95_{shot}shot", f"test_ci95_{shot}shot"),
                (f"vs_baseline_{shot}shot", f"test_vs_baseline_{shot}shot"),
                (f"vs_baseline_p_{shot}shot", f"test_vs_baseline_p_{shot}shot"),
            ):
                if column in row and _is_value(row[column]):
                    values[f"{METRIC_GROUP}/{tag}"] = (float(row[column]), step)
    return values


_STATUS = {"completed": api_pb2.STATUS_SUCCESS, ASHA_STOP: api_pb2.STATUS_SUCCESS}


def _session_status(record: TrialRecord) -> int:
    if record.stop_reason in _STATUS:
        return _STATUS[record.stop_reason]
    if record.stop_reason in ("diverged", "error"):
        return api_pb2.STATUS_FAILURE
    return api_pb2.STATUS_RUNNING


# ---------------------------------------------------------------- writing


class _Run:
    """One TensorBoard run directory, written with TensorBoard's event file writer."""

    def __init__(self, directory: Path) -> None:
        self._writer = EventFileWriter(str(directory), max_queue_size=1000, flush_secs=3600)

    def write(self, summary: summary_pb2.Summary, step: int = 0, wall_time: float | None = None) -> None:
        self._writer.add_event(event_pb2.Event(wall_time=wall_time or time.time(), step=step, summary=summary))

    def scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        self.write(summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]), step, wall_time)

    def png(self, tag: str, png: bytes) -> None:
        width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
        self.write(summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)]))

    def close(self) -> None:
        self._writer.close()


def experiment_summary(report: Report) -> summary_pb2.Summary:
    """The HParams experiment (hparams_config_pb of `hparams` and `metrics`), with `differs` set on the searched
    parameters whose values vary between trials. The HParams tab lists parameters that differ first and ticks the
    first five, so those are the searched ones; "how it stopped", an outcome, comes after them."""
    summary = hp.hparams_config_pb(hparams(report), metrics(report), time_created_secs=time.time())
    value = summary.value[0]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    varying = {name for name in report.spec.searched() if len({repr(r.params[name]) for r in report.records}) > 1}
    for info in data.experiment.hparam_infos:
        info.differs = info.name in varying
    value.metadata.CopyFrom(hparams_metadata.create_summary_metadata(data))
    return summary


def _session_end(status: int, end_time: float) -> summary_pb2.Summary:
    data = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end_time)
    )
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=hparams_metadata.SESSION_END_INFO_TAG,
        metadata=hparams_metadata.create_summary_metadata(data),
        tensor=hparams_metadata.NULL_TENSOR,
    )
    return summary


def _times(history: pd.DataFrame) -> list[float | None]:
    if "timestamp" not in history:
        return [None] * len(history)
    return [float(t) if _is_value(t) else None for t in history["timestamp"]]


def _write_trial(run: _Run, record: TrialRecord, report: Report) -> None:
    history, objective = record.history, report.spec.objective
    times = _times(history)
    start = next((t for t in times if t is not None), time.time())
    run.write(hp.hparams_pb(_session_values(record, report), trial_id=record.trial_id, start_time_secs=start), 0, start)
    tags = {column: tag for column in history.columns if (tag := curve_tag(str(column), objective)) is not None}
    for (_, row), wall_time in zip(history.iterrows(), times):
        if not _is_value(row.get("epoch")):
            continue
        for column, tag in tags.items():
            if _is_value(row[column]):
                run.scalar(tag, float(row[column]), int(row["epoch"]), wall_time)
    end = next((t for t in reversed(times) if t is not None), start)
    for tag, (value, step) in _final_values(record, report).items():
        run.scalar(tag, value, step, end)
    run.write(_session_end(_session_status(record), end), record.epochs_run, end)


def write(report: Report, figure_png: bytes) -> Path:
    """Rewrite <exp>/tensorboard from `report`: the HParams experiment and the figure, then one run per trial."""
    root = report.experiment.tensorboard_dir
    shutil.rmtree(root, ignore_errors=True)
    experiment_run = _Run(root)
    experiment_run.write(experiment_summary(report))
    experiment_run.png(FIGURE_TAG, figure_png)
    experiment_run.close()
    for record in report.records:
        run = _Run(root / trial_dirname(record.trial_id))
        _write_trial(run, record, report)
        run.close()
    return root
