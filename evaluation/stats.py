"""Episode statistics: mean with its 95% interval (as published), and paired tests of two configurations."""

import warnings

import numpy as np
import torch

from evaluation.errors import EvaluationError

DIFFERENCE_DECIMALS = 9  # per-episode accuracies are k / queries: far coarser than 1e-9, far finer float noise


def _as_array(values: torch.Tensor | np.ndarray | list[float], name: str) -> np.ndarray:
    """1-D float64 numpy copy of per-episode values; EvaluationError if empty or not 1-D."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise EvaluationError(f"{name} must be a non-empty 1-D sequence of per-episode values, got shape {array.shape}")
    return array


def mean_ci95(acc: torch.Tensor | np.ndarray | list[float]) -> tuple[float, float]:
    """(mean, half-width) of per-episode values [E]; half-width = 1.96 · std / √E, std with ddof = 0 (published)."""
    values = _as_array(acc, "acc")
    return float(values.mean()), float(1.96 * values.std(ddof=0) / np.sqrt(values.size))


def paired_comparison(
    acc_a: torch.Tensor | np.ndarray | list[float], acc_b: torch.Tensor | np.ndarray | list[float]
) -> dict:
    """Compare two configurations scored on the same episodes [E]: mean of a − b, its 95% half-width, p-values."""
    a, b = _as_array(acc_a, "acc_a"), _as_array(acc_b, "acc_b")
    if a.shape != b.shape:
        raise EvaluationError(f"paired comparison needs the same episodes: acc_a has {a.size} values, acc_b {b.size}")
    mean_diff, ci95 = mean_ci95(a - b)
    from scipy import stats  # lazily: the rest of the package (and the GPU benchmark) needs only torch and numpy

    # Accuracies averaged over seeds carry float noise (0.1 + 0.2 - 0.3 = 5.6e-17): rounded, an episode the two
    # configurations tie on is a zero difference (dropped by Wilcoxon) and equal differences share their rank.
    differences = np.round(a - b, DIFFERENCE_DECIMALS)
    if np.all(differences == 0):
        t_pvalue = wilcoxon_pvalue = 1.0
    else:
        with warnings.catch_warnings():  # a constant non-zero difference: scipy warns and returns p = 0
            warnings.simplefilter("ignore", RuntimeWarning)
            t_pvalue = float(stats.ttest_rel(a, b).pvalue)
            wilcoxon_pvalue = float(stats.wilcoxon(differences).pvalue)
    return {
        "mean_diff": mean_diff,
        "ci95": ci95,
        "t_pvalue": t_pvalue,
        "wilcoxon_pvalue": wilcoxon_pvalue,
        "n": int(a.size),
    }
