"""Every shipped preset builds its real Tuner (OptunaSearch on its SQLite study, ASHA, the trainable with its
resources, the run config) without fitting it, and Optuna's first suggestions are the setting's starting points,
whole: every searched parameter, and with the fixed ones the whole configuration a trial then runs."""

from pathlib import Path

import pytest

from clusters.session import ray_session
from sweep.schema import spec as spec_module
from sweep.schema.first_points import plan_first_points
from sweep.schema.hyperparameters import SEARCHED_PARAMETERS
from sweep.schema.objectives import OBJECTIVES, SELECTION_SCORE
from sweep.schema.published import STARTING_POINTS, Setting
from sweep.schema.trial_config import TrialConfig
from sweep.storage import experiment as experiments
from sweep.tuning.space import trial_config
from sweep.tuning.tuner import build_tuner

from helpers.specs import full_search_spec_data

PRESETS = spec_module.list_presets()


@pytest.fixture(scope="module")
def local_ray():
    with ray_session():  # a local Ray of this process: tune.with_parameters puts the spec in its object store
        yield


def starting_points_of(spec) -> tuple:
    (shot,) = OBJECTIVES[spec.objective]
    return STARTING_POINTS[Setting(spec.dataset.name, spec.backbone, spec.loss, shot)]


def test_there_is_one_preset_per_paper_setting_and_the_default():
    assert sorted(PRESETS) == sorted(["default", *(_preset_name(setting) for setting in STARTING_POINTS)])


def _preset_name(setting: Setting) -> str:
    dataset = {"mini-imagenet": "mini", "cub": "cub", "mini2cub": "mini2cub"}[setting.dataset]
    return f"{setting.backbone}-{dataset}-{setting.loss}-{setting.shot}shot"


@pytest.mark.parametrize("name", PRESETS)
def test_the_preset_builds_its_tuner_and_first_tries_its_starting_points_whole(name, local_ray, tmp_path):
    spec = spec_module.with_absolute_paths(spec_module.load(spec_module.preset_path(name)), tmp_path)
    experiment = experiments.create(spec, storage=tmp_path / "experiments")
    tuner = build_tuner(spec, experiment)  # Ray's OptunaSearch validates the first points here

    internal = tuner._local_tuner
    tune_config, run_config = internal._tune_config, internal.get_run_config()
    assert (tune_config.metric, tune_config.mode, tune_config.num_samples) == (spec.objective, "max", spec.num_samples)
    scheduler = tune_config.scheduler
    assert (scheduler._time_attr, scheduler._max_t) == ("epoch", spec.epochs)  # its metric: tune_config's
    assert scheduler._reduction_factor == spec.scheduler.reduction_factor
    assert (
        run_config.checkpoint_config.checkpoint_score_attribute == SELECTION_SCORE
    )  # spec.selection, eligible epochs first
    assert Path(run_config.storage_path) == experiment.root
    assert internal.trainable._resources.required_resources == {
        "CPU": spec.resources.cpu,
        **({"GPU": spec.resources.gpu} if spec.resources.gpu else {}),
    }

    planned, skipped = plan_first_points(spec)
    assert skipped == []
    searcher = tune_config.search_alg
    suggested = [searcher.suggest(f"first-{index}") for index in range(len(planned))]
    assert suggested == [point.params for point in planned]  # Optuna's own first trials, from its study
    for point in suggested:
        assert set(point) == set(spec.searched())  # whole: every searched parameter

    if name == "default":
        assert suggested == spec.points_to_evaluate  # m = 0, then the paper's m = -0.3
        return
    expected = starting_points_of(spec)
    assert [point.origin for point in planned] == [point.origin for point in expected]
    for point, start in zip(suggested, expected, strict=True):
        config = TrialConfig.from_dict(trial_config(spec, point, experiment.episodes_dir))  # what the first trials run
        assert {key: getattr(config, key) for key in SEARCHED_PARAMETERS} == start.params
        assert config.dropblock_mask == "published" and spec.selection == "val_acc_5shot"


def test_the_two_resnet18_mini_neg_cosine_1shot_margins_are_both_tried_first():
    spec = spec_module.load(spec_module.preset_path("resnet18-mini-neg-cosine-1shot"))
    planned, _ = plan_first_points(spec)
    assert [(point.origin, point.params["margin"]) for point in planned] == [("script", -0.05), ("paper", -0.3)]
    assert "Table 5" in planned[1].reference


def test_wrn_points_are_ours_not_published():
    for shot in (1, 5):
        (point,) = STARTING_POINTS[Setting("mini-imagenet", "wrn28_10", "neg-cosine", shot)]
        assert point.origin == "ours" and not point.published
        spec = spec_module.load(spec_module.preset_path(f"wrn28_10-mini-neg-cosine-{shot}shot"))
        (first,), _ = plan_first_points(spec)
        assert first.describe().startswith(
            "margin -0.2, scale 30, weight_decay 0: our own starting point (unpublished)"
        )
    published = [p for points in STARTING_POINTS.values() for p in points if p.origin != "ours"]
    assert all(p.published and p.reference for p in published)


@pytest.mark.parametrize(
    ("name", "searched_dropblock"),
    [
        ("resnet18-mini-neg-softmax-1shot", False),
        ("resnet18-mini-neg-softmax-5shot", False),
        ("resnet18-cub-neg-softmax-1shot", False),
        ("resnet18-cub-neg-softmax-5shot", False),
        ("resnet18-mini2cub-neg-cosine-5shot", False),
        ("resnet18-mini2cub-neg-softmax-5shot", False),
        ("resnet18-mini-neg-cosine-1shot", True),
        ("resnet12-mini-neg-softmax-5shot", True),
    ],
)
def test_a_setting_without_dropblock_fixes_it_at_the_published_values(name, searched_dropblock):
    spec = spec_module.load(spec_module.preset_path(name))
    assert ("drop_rate" in spec.searched()) == searched_dropblock
    if not searched_dropblock:
        assert spec.fixed()["drop_rate"] == 0.0 and spec.fixed()["dropblock_size"] == 5


def test_a_starting_point_outside_the_space_is_left_out_with_the_reason():
    data = spec_module.load(spec_module.preset_path("resnet18-mini-neg-cosine-1shot")).model_dump(mode="json")
    data["search"]["margin"] = {"uniform": [-0.2, 0.0]}  # the paper's −0.3 lies outside, the script's −0.05 inside
    data["search"]["scale"] = {"fixed": 10.0}
    planned, skipped = plan_first_points(spec_module.parse(data))
    assert [point.params["margin"] for point in planned] == [-0.05]
    assert "scale" not in planned[0].params and "the spec fixes scale 10 (point: 30)" in planned[0].reference
    assert len(skipped) == 1 and "published (paper)" in skipped[0] and "margin lies outside search.margin" in skipped[0]


def test_a_spec_point_must_name_every_searched_parameter():
    data = full_search_spec_data()
    data["points_to_evaluate"] = [{"margin": 0.0, "scale": 10.0}]
    with pytest.raises(spec_module.SpecError) as error:
        spec_module.parse(data, source="s.yaml")
    assert str(error.value) == (
        "s.yaml: points_to_evaluate[0]: no value for searched parameter(s) weight_decay, drop_rate, dropblock_size "
        "(a first point gives every searched parameter)"
    )
