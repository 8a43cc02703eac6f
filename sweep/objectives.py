"""The objectives a sweep can maximise: each one's name, the validation shots it needs, and its value in a report row.

Torch-free: the spec validates the objective with this table and the trainable, the results and the report read
its value with `objective_value`.
"""

from __future__ import annotations

from typing import Any, Literal

OBJECTIVES: dict[str, tuple[int, ...]] = {
    "val_acc_1shot": (1,),
    "val_acc_5shot": (5,),
    "val_acc_mean": (1, 5),  # the mean of the 1- and 5-shot validation accuracies
}
ObjectiveName = Literal[tuple(OBJECTIVES)]


def objective_value(metrics: dict[str, Any], objective: str) -> float | None:
    """The objective of a metrics row: the mean of its shots' `val_acc_<k>shot`; None if one of them is missing."""
    keys = [f"val_acc_{shot}shot" for shot in OBJECTIVES[objective]]
    if any(key not in metrics for key in keys):
        return None
    if len(keys) == 1:
        return metrics[keys[0]]
    return sum(metrics[key] for key in keys) / len(keys)
