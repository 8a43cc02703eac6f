"""The objectives a sweep can maximise: each one's name, the validation shots it needs, and its value in a report row.

Torch-free: the spec validates the objective with this table and the trainable, the results and the report read
its value with `objective_value`.
"""

from __future__ import annotations

from typing import Any, Literal

ObjectiveName = Literal["val_acc_1shot", "val_acc_5shot", "val_acc_mean"]  # OBJECTIVES' keys, spelled for the checker
OBJECTIVES: dict[str, tuple[int, ...]] = {
    "val_acc_1shot": (1,),
    "val_acc_5shot": (5,),
    "val_acc_mean": (1, 5),  # the mean of the 1- and 5-shot validation accuracies
}


def objective_value(metrics: dict[str, Any], objective: str) -> float | None:
    """The objective of a metrics row: the mean of its shots' `val_acc_<k>shot`; None if one of them is missing."""
    keys = [f"val_acc_{shot}shot" for shot in OBJECTIVES[objective]]
    if any(key not in metrics for key in keys):
        return None
    if len(keys) == 1:
        return metrics[keys[0]]
    return sum(metrics[key] for key in keys) / len(keys)


def validation_score(val: dict[str, float], shot: int | str, objective: str) -> float:
    """What promotion chooses a configuration on at `shot`, from a run's validation metrics at its best checkpoint:
    `val_acc_<shot>shot`, else the objective (a shot promotion tests but validation did not), else -inf."""
    return val.get(f"val_acc_{shot}shot", val.get(objective, float("-inf")))


SELECTION_SCORE = "selection_score"  # the reported column Tune keeps checkpoints by
_INELIGIBLE_OFFSET = 1000.0  # accuracies lie in [0, 100]: an ineligible epoch ranks below every eligible one


def is_eligible(metrics: dict[str, Any], selection_from_epoch: int) -> bool:
    """Whether a validation report's checkpoint may be a trial's best: its epoch is >= selection_from_epoch."""
    return int(metrics.get("epoch", 0)) >= selection_from_epoch


def selection_score(metrics: dict[str, Any], selection: str, selection_from_epoch: int) -> float | None:
    """The value checkpoints are ranked by: the selection metric at an eligible epoch, the same less 1000 before it
    (so a trial stopped before selection_from_epoch still keeps its best), None when the metric is missing."""
    value = objective_value(metrics, selection)
    if value is None:
        return None
    return value if is_eligible(metrics, selection_from_epoch) else value - _INELIGIBLE_OFFSET
