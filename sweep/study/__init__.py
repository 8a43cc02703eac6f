"""The margin study: an experiment's selected configuration (or a trial config file) trained at a grid of margins
with everything else fixed, scored on novel and held-out base episodes and by discriminability, every margin
compared with m = 0 (`negmargin sweep study EXP`).

Modules: grid (the margins), request (what is studied, saved for resume), layout (study/ paths), training (the grid
as one Ray Tune experiment), scoring, compare (paired tests, the answer), outputs (study.json, table, figures,
TensorBoard), runner (prepare + run). This package's own import loads neither torch nor Ray.
"""

import importlib

_EXPORTS = {
    "prepare": "sweep.study.runner",
    "run": "sweep.study.runner",
    "StudyDir": "sweep.study.layout",
    "StudyRequest": "sweep.study.request",
    "default_margins": "sweep.study.grid",
    "parse_margins": "sweep.study.grid",
    "render": "sweep.study.outputs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """The exported `name`, imported from its submodule on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
