"""A margin study from start to end: check the request before any cluster work, train the grid, score, compare,
write. `prepare_study` returns the experiment and the request (a new one, or the saved one a rerun resumes);
`run_study` does the rest and returns what study.json holds (sweep.study.study_file.Study); `read_study` reads it back.

    experiment, request = prepare_study("experiments/demo", margins=[-0.3, 0.0])   # or prepare_study(latest=True)
    study = run_study(experiment, request)                                      # study.json's contents
    study = read_study("experiments/demo")                                      # the same, later
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sweep.errors import SpecError
from sweep.schema.spec import DEFAULT_STORAGE, SweepSpec
from sweep.storage import experiment as experiments
from sweep.storage.experiment import Experiment
from sweep.study.layout import StudyDir
from sweep.study.margins import checked_margins
from sweep.study.request import StudyRequest, build_request, config_point, resolve_request, save_request

if TYPE_CHECKING:
    from sweep.study.study_file import Study


def prepare_study(
    experiment_path: str | Path | None = None,
    config_file: str | Path | None = None,
    *,
    latest: bool = False,
    storage: str = DEFAULT_STORAGE,
    name: str | None = None,
    margins: list[float] | None = None,
    seeds: int | None = None,
    holdout_fraction: float | None = None,
    test_episodes: int | None = None,
    queries: int | None = None,
    restart: bool = False,
    address: str | None = None,
) -> tuple[Experiment, StudyRequest]:
    """The experiment to study (with --config a new one, made once the request is known to be good, its test
    episodes sized by `test_episodes` and `queries`) and the request; every user error is raised here, before any
    training."""
    from sweep.study.scoring import check_holdout, check_novel
    from sweep.workflows import preflight

    if latest:
        if experiment_path is not None or config_file is not None:
            raise SpecError("--latest names the experiment: give no experiment directory and no --config with it")
        experiment_path = experiments.latest(storage).root
    if address:
        from clusters.session import validate_address

        validate_address(address)
    if (experiment_path is None) == (config_file is None):
        raise SpecError("give an experiment directory or --config FILE (one of them)")
    if config_file is None and (test_episodes is not None or queries is not None):
        raise SpecError("--test-episodes and --queries size a --config study's episodes; an experiment has its own")
    options: dict[str, Any] = {"margins": margins, "seeds": seeds, "holdout_fraction": holdout_fraction}
    if config_file is not None:
        promotion = {"test_episodes": test_episodes, "queries": queries}
        spec, params, source = config_point(Path(config_file), storage, name, promotion)
        request = build_request(spec, params, source, **options)
        experiment = None
    else:
        experiment = experiments.open_existing(cast(str | Path, experiment_path))  # given: config_file is None
        spec = experiment.spec()
        if margins is not None:
            checked_margins(spec.loss, margins)  # before reading any trial: the cheapest mistake first
        study = StudyDir.of(experiment)
        request = (
            build_request(spec, *_selected(experiment, spec), **options)
            if restart
            else resolve_request(study, spec, None, **options)
        )
    preflight.check_dataset(spec)
    check_novel(spec)
    check_holdout(spec, request.holdout_fraction, request.holdout_seed)
    if experiment is None:
        experiment = experiments.create(spec, storage=storage)
    study = StudyDir.of(experiment)
    if restart:
        shutil.rmtree(study.root, ignore_errors=True)
    save_request(study, request)
    return experiment, request


def _selected(experiment: Experiment, spec: SweepSpec) -> tuple[dict[str, Any], str]:
    from sweep.study.request import selected_point

    return selected_point(experiment, spec)


def run_study(experiment: Experiment, request: StudyRequest, address: str | None = None) -> Study:
    """Train every margin × seed (resuming what a previous run left), score, compare with m = 0, write study/."""
    from evaluation.device import resolve_device
    from models.catalog import trained_loss
    from sweep.study import compare, outputs, scoring, tune_grid
    from sweep.study.study_file import Study

    spec = experiment.spec()
    study_dir = StudyDir.of(experiment)
    started = time.perf_counter()
    runs = tune_grid.train_grid(spec, experiment, study_dir, request, address)
    domains = scoring.domains(spec, experiment, study_dir, request)
    scores = scoring.scores_of(runs, domains, spec, study_dir, resolve_device(spec.device))
    shots = list(spec.promotion.shots)
    summaries = compare.margin_summaries(scores, request.margins, shots)
    for entry in summaries:
        entry["loss"] = trained_loss(spec.loss, entry["margin"])
    found = compare.comparisons(scores, request.margins, shots)
    setting = f"{spec.dataset.name} / {spec.backbone} / {spec.loss}"
    study = Study.model_validate(
        {
            "experiment": str(experiment.root),
            "setting": setting,
            "objective": spec.objective,
            "shots": shots,
            "request": request.model_dump(mode="json"),
            "episodes": _episodes(domains, experiment, study_dir),
            "held_out_images": int(len(domains["base"].labels)),
            "runs": [_run_row(run, scores.get((run.margin, run.seed))) for run in runs],
            "margins": summaries,
            "comparisons": found,
            "answer": compare.answer(setting, found, shots, summaries),
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    outputs.write_all(study_dir, study)
    return study


def read_study(experiment: Experiment | str | Path) -> Study:
    """The study.json of an experiment's finished study; ExperimentError (one line) if there is none, or it is
    damaged or of a newer format."""
    from sweep.study import study_file

    if not isinstance(experiment, Experiment):
        experiment = experiments.open_existing(experiment)
    return study_file.read(StudyDir.of(experiment).study_file)


def _episodes(domains: dict[str, Any], experiment: Experiment, study: StudyDir) -> dict[str, Any]:
    paths = {"novel": experiment.test_episodes, "base": study.base_episodes}
    return {
        name: {
            str(shot): {
                "path": str(paths[name](shot)),
                "episodes": len(episodes),
                "way": episodes.n_way,
                "queries": episodes.n_query,
            }
            for shot, episodes in domain.episode_sets.items()
        }
        for name, domain in domains.items()
    }


def _run_row(run: Any, scores: Any) -> dict[str, Any]:
    metrics = scores.checkpoint_metrics if scores is not None else {}
    return {
        "margin": run.margin,
        "seed": run.seed,
        "checkpoint": str(run.checkpoint) if run.checkpoint is not None else None,
        "failure": run.failure,
        "epoch": metrics.get("epoch"),
        "train_acc": metrics.get("train_acc"),
        **{key: value for key, value in metrics.items() if key.startswith("val_acc")},
    }
