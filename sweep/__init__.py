"""negmargin's sweeps from Python: run, resume, promote and report a sweep, study its margin, calibrate it.

    import sweep
    spec = sweep.read_spec("default", {"num_samples": 2, "epochs": 4})
    outcome = sweep.run_sweep(spec, experiment="experiments/my-sweep")   # trials, promotion, report
    print(sweep.render_report(outcome.report))

One trial without Ray is `sweep.trial` (`train`, `run`, `TrialConfig`); scoring a checkpoint is `evaluation`.
Every name below is imported from its module on first use, so `import sweep` loads neither torch nor Ray.
"""

from data.lazy_exports import lazy_getattr

_EXPORTS = {
    "SweepSpec": "sweep.schema.spec",
    "read_spec": "sweep.workflows.pipelines",
    "Experiment": "sweep.storage.experiment",
    "open_experiment": "sweep.workflows.pipelines",
    "SweepOutcome": "sweep.workflows.pipelines",
    "run_sweep": "sweep.workflows.pipelines",
    "resume_sweep": "sweep.workflows.pipelines",
    "promote": "sweep.workflows.pipelines",
    "read_report": "sweep.workflows.pipelines",
    "render_report": "sweep.workflows.pipelines",
    "prepare_study": "sweep.study.pipeline",
    "run_study": "sweep.study.pipeline",
    "run_calibration": "sweep.workflows.calibration_pipeline",
    "CalibrationOutcome": "sweep.workflows.calibration_pipeline",
    "read_study": "sweep.study.pipeline",
    "Study": "sweep.study.study_file",
    "Selection": "sweep.storage.selections",
    "Progress": "sweep.storage.progress_file",
    "submit_sweep": "sweep.workflows.submission",
    "UserError": "data.errors",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
