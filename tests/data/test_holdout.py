"""Held-out base images: one seeded split per class, shared by the trial (trains without it) and the study."""

import numpy as np
import pytest

import data
from data.errors import DataError
from data.holdout import holdout_indices
from sweep.schema.trial_config import TrialConfig
from sweep.trial.runner import training_base

from helpers.trials import tiny_config, write_tiny_imagefolder

LABELS = np.repeat(np.arange(4), [20, 10, 31, 2])  # unequal classes


def test_holdout_partitions_each_class_by_the_fraction():
    kept, held = holdout_indices(LABELS, 0.1, seed=3)
    assert np.array_equal(np.sort(np.concatenate([kept, held])), np.arange(LABELS.size))
    assert np.intersect1d(kept, held).size == 0
    assert np.bincount(LABELS[held]).tolist() == [2, 1, 3, 1]  # round(0.1 n), at least one, at least one kept
    assert np.bincount(LABELS[kept]).tolist() == [18, 9, 28, 1]


def test_holdout_is_seeded_and_depends_on_the_seed_only():
    first, again = holdout_indices(LABELS, 0.25, seed=1)[1], holdout_indices(LABELS.copy(), 0.25, seed=1)[1]
    other = holdout_indices(LABELS, 0.25, seed=2)[1]
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_no_holdout_keeps_everything_and_bad_input_is_a_data_error():
    kept, held = holdout_indices(LABELS, 0.0, seed=0)
    assert kept.tolist() == list(range(LABELS.size)) and held.size == 0
    with pytest.raises(DataError, match="holdout_fraction"):
        holdout_indices(LABELS, 1.0, seed=0)
    with pytest.raises(DataError, match="at least 2"):
        holdout_indices(np.array([0, 0, 1]), 0.5, seed=0)


def test_the_trial_trains_on_the_kept_part_and_the_study_sees_the_same_held_out_part(tmp_path):
    root = write_tiny_imagefolder(tmp_path / "tiny", base_per_class=20)
    config = TrialConfig.from_dict(
        tiny_config(root, tmp_path / "cache", **{"dataset.holdout_fraction": 0.2, "dataset.holdout_seed": 5})
    )
    whole = data.load_split(config.dataset, "base", progress=False)  # the trial's own section: its cache geometry
    kept, held = data.split_base(whole, 0.2, 5)
    trained = training_base(config)
    assert len(trained) == len(kept) == 6 * 16 and len(held) == 6 * 4
    assert np.array_equal(trained.images, kept.images) and np.array_equal(trained.labels, kept.labels)
    _, held_indices = holdout_indices(whole.labels, 0.2, 5)
    assert np.array_equal(held.images, whole.images[held_indices])
    assert trained.class_names == whole.class_names
    study_kept, study_held = data.load_base_parts(config.dataset, progress=False)  # what the margin study scores on
    assert np.array_equal(study_held.images, held.images) and np.array_equal(study_kept.labels, kept.labels)
    assert len(training_base(TrialConfig.from_dict(tiny_config(root, tmp_path / "cache")))) == len(whole)
