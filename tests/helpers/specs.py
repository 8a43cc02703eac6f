"""A CPU-sized sweep spec that searches all five hyperparameters: the shape of the former default preset, for tests
that need a searched β, weight decay and DropBlock, or a short budget with early rungs."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from sweep.schema import spec as spec_module

FULL_SEARCH = {
    "margin": {"uniform": [-0.5, 0.3]},
    "scale": {"loguniform": [5.0, 15.0]},
    "weight_decay": {"loguniform": [1.0e-5, 1.0e-3]},
    "drop_rate": {"uniform": [0.0, 0.3]},
    "dropblock_size": {"int": [1, 3]},
}


def full_search_spec_data() -> dict[str, Any]:
    """The default preset as a dict, on `glyphs`, 6 epochs validated every epoch, ASHA rungs at 1, 2, 4, and every
    hyperparameter searched (first point m = 0, β = 10, wd 5e-4, no DropBlock)."""
    data = yaml.safe_load(spec_module.preset_path("default").read_text())
    data["dataset"]["name"] = "glyphs"
    data.update(epochs=6, val_every=1, batch_size=32, num_samples=8, search=copy.deepcopy(FULL_SEARCH))
    data["scheduler"] = {"grace_period": 1, "reduction_factor": 2}
    data["selection_from_epoch"] = 1
    data["points_to_evaluate"] = [
        {"margin": 0.0, "scale": 10.0, "weight_decay": 5.0e-4, "drop_rate": 0.0, "dropblock_size": 1}
    ]
    return data


def full_search_spec() -> spec_module.SweepSpec:
    """full_search_spec_data(), validated."""
    return spec_module.parse(full_search_spec_data())
