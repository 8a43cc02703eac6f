"""mean_ci95 (published formula) and paired_comparison (scipy's paired tests)."""

import numpy as np
import pytest
import torch
from scipy import stats

from evaluation import EvaluationError, mean_ci95, paired_comparison


def test_mean_ci95_is_the_published_formula() -> None:
    acc = np.random.default_rng(0).uniform(0.4, 0.9, size=600)
    mean, half_width = mean_ci95(torch.as_tensor(acc))
    assert mean == pytest.approx(acc.mean(), abs=1e-12)
    assert half_width == pytest.approx(1.96 * np.std(acc) / np.sqrt(600), abs=1e-12)  # np.std: ddof = 0
    assert mean_ci95([0.5, 0.5, 0.5]) == (0.5, 0.0)
    with pytest.raises(EvaluationError):
        mean_ci95([])


def test_paired_comparison_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 0.9, size=200)
    b = a - 0.01 + rng.normal(0, 0.03, size=200)
    result = paired_comparison(torch.as_tensor(a), b)
    assert result["n"] == 200
    assert result["mean_diff"] == pytest.approx(np.mean(a - b), abs=1e-12)
    assert result["ci95"] == pytest.approx(1.96 * np.std(a - b) / np.sqrt(200), abs=1e-12)
    assert result["t_pvalue"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    assert result["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-9)
    assert result["t_pvalue"] < 0.01


def test_float_noise_of_seed_averages_is_a_tie_not_a_difference() -> None:
    # seed-averaged accuracies: 0.1 + 0.2 != 0.3 in floats; the differences are exactly 0, .1, .1, .15, .15, .2, .2, .25
    a = np.array([0.1 + 0.2, 0.7, 0.5, 0.9, 0.45, 0.8, 0.65, 0.55])
    b = np.array([0.3, 0.6, 0.4, 0.75, 0.3, 0.6, 0.45, 0.3])
    assert (a - b)[0] != 0  # the noise the comparison must not rank as a difference
    exact = np.array([0.0, 0.1, 0.1, 0.15, 0.15, 0.2, 0.2, 0.25])
    result = paired_comparison(a, b)
    assert result["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(exact).pvalue, rel=1e-12)
    assert result["wilcoxon_pvalue"] != pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-6)


def test_identical_scores_give_p_one_and_mismatched_lengths_raise() -> None:
    a = np.linspace(0.2, 0.9, 50)
    assert paired_comparison(a, a.copy()) == {
        "mean_diff": 0.0,
        "ci95": 0.0,
        "t_pvalue": 1.0,
        "wilcoxon_pvalue": 1.0,
        "n": 50,
    }
    with pytest.raises(EvaluationError, match="50 values, acc_b 49"):
        paired_comparison(a, a[:-1])
