"""The margin study: an experiment's selected configuration (or a trial config file) trained at a grid of margins
with everything else fixed, scored on novel and held-out base episodes and by discriminability, every margin
compared with m = 0 (`negmargin sweep study EXP`).

Modules: margins (the grid of margins), request (what is studied, saved for resume), layout (study/ paths), tune_grid
(the grid as one Ray Tune experiment), scoring, compare (paired tests, the answer), outputs (study.json, table,
figures, TensorBoard), study_file (study.json's typed definition), pipeline (prepare_study, run_study,
read_study). This package's own import loads neither torch nor Ray.
"""

from data.lazy_exports import lazy_getattr

_EXPORTS = {
    "prepare_study": "sweep.study.pipeline",
    "run_study": "sweep.study.pipeline",
    "read_study": "sweep.study.pipeline",
    "Study": "sweep.study.study_file",
    "StudyDir": "sweep.study.layout",
    "StudyRequest": "sweep.study.request",
    "default_margins": "sweep.study.margins",
    "parse_margins": "sweep.study.margins",
    "render": "sweep.study.outputs",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
