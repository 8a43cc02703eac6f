"""Discriminability (Eq. 2-4) against a direct numpy computation."""

import numpy as np
import pytest
import torch

from evaluation import EvaluationError, discriminability


def _direct(features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    z = features / np.linalg.norm(features, axis=1, keepdims=True)
    classes = np.unique(labels)
    centres = {c: z[labels == c].mean(axis=0) for c in classes}
    inter = np.mean([np.sum((centres[j] - centres[k]) ** 2) for j in classes for k in classes if j != k])
    intra = np.mean([np.mean(np.sum((z[labels == c] - centres[c]) ** 2, axis=1)) for c in classes])
    return inter, intra


def test_matches_direct_numpy_computation_with_unequal_class_sizes() -> None:
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.full(n, c) for c, n in zip([3, 7, 8, 11], [5, 9, 2, 14])])
    features = rng.normal(size=(labels.size, 12)) + labels[:, None] * 0.3
    result = discriminability(torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels))
    inter, intra = _direct(features, labels)
    assert result["inter"] == pytest.approx(inter, rel=1e-5)
    assert result["intra"] == pytest.approx(intra, rel=1e-5)
    assert result["phi"] == pytest.approx(inter / intra, rel=1e-5)


def test_scale_invariant_and_tighter_clusters_are_more_discriminative() -> None:
    rng = np.random.default_rng(1)
    means = rng.normal(size=(5, 8))
    labels = np.repeat(np.arange(5), 20)
    loose = means[labels] + rng.normal(size=(100, 8))
    tight = means[labels] + 0.1 * rng.normal(size=(100, 8))
    assert discriminability(tight, labels)["phi"] > 10 * discriminability(loose, labels)["phi"]
    assert discriminability(3 * loose, labels)["phi"] == pytest.approx(discriminability(loose, labels)["phi"])
    with pytest.raises(EvaluationError, match="2 classes"):
        discriminability(loose, np.zeros(100, dtype=int))
