"""sweep.workflows.preflight: the dataset checked against the spec before any cluster work, and the fixed validation
episodes sampled once per experiment."""

from pathlib import Path

import pytest

import data
from sweep.errors import SpecError
from sweep.schema import spec as spec_module
from sweep.storage import experiment as experiments
from sweep.workflows import preflight

from helpers.specs import full_search_spec_data


def _spec(glyph_cache: Path, tmp_path: Path, **sections: dict) -> spec_module.SweepSpec:
    document = full_search_spec_data()
    document["dataset"].update(root=str(glyph_cache), cache_dir=str(tmp_path / "cache"), image_size=16)
    for key, values in sections.items():
        document[key].update(values)
    return spec_module.parse(document)


def test_too_many_validation_classes_is_one_spec_error_naming_the_key(glyph_cache, tmp_path):
    spec = _spec(glyph_cache, tmp_path, validation={"way": 500})
    classes = len(data.build_dataset("glyphs", str(glyph_cache), "val").class_names)
    with pytest.raises(SpecError, match=rf"^validation\.way: 500 exceeds the {classes} classes of the val split"):
        preflight.check_dataset(spec)
    assert not (tmp_path / "cache").exists()  # refused before any image is decoded


def test_the_promotion_episodes_are_checked_only_when_the_sweep_promotes(glyph_cache, tmp_path):
    spec = _spec(glyph_cache, tmp_path, promotion={"way": 500})
    with pytest.raises(SpecError, match=r"^promotion\.way: 500 exceeds"):
        preflight.check_dataset(spec)
    preflight.check_dataset(spec, promote=False)
    cached = data.load_split(spec.dataset, "val", progress=False)  # decoded by the check: read from the cache
    assert cached.images.shape[0] == len(data.build_dataset("glyphs", str(glyph_cache), "val").labels)


def test_validation_episodes_are_sampled_once_per_experiment(glyph_cache, tmp_path):
    spec = _spec(glyph_cache, tmp_path)
    experiment = experiments.create(spec, storage=tmp_path / "experiments")
    preflight.prepare_validation_episodes(spec, experiment)
    files = [experiment.val_episodes(shot) for shot in spec.validation.shots]
    sets = [data.EpisodeSet.load(path) for path in files]
    v = spec.validation
    for shot, episodes in zip(spec.validation.shots, sets):
        assert episodes.indices.shape == (v.episodes, v.way, shot + v.queries)
    stamps = [path.stat().st_mtime_ns for path in files]
    preflight.prepare_validation_episodes(spec, experiment)
    assert [path.stat().st_mtime_ns for path in files] == stamps  # kept, not sampled again
