"""evaluation.compare_to_baseline: paired on the seeds both have, one verdict rule, Holm over a family; and the one
episode scoring (score_episode_sets) that every caller scores through."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import evaluation
from evaluation import BaselineComparison, EvaluationError, compare_family, compare_to_baseline, holm, verdict
from evaluation.baseline_comparison import BEATS, NOT_SIGNIFICANT, WORSE


def _seeded(seeds: list[int], episodes: int = 200, seed: int = 0) -> dict[int, torch.Tensor]:
    """Per-episode accuracies [episodes] in [0, 0.8] per training seed."""
    generator = torch.Generator().manual_seed(seed)
    return {s: torch.rand(episodes, generator=generator) * 0.8 for s in seeds}


def test_the_verdict_needs_both_tests_below_alpha_and_takes_its_sign_from_the_difference() -> None:
    assert evaluation.ALPHA == 0.05
    assert verdict(0.4, 0.2, 0.3) == NOT_SIGNIFICANT == "is not significantly different from the baseline"
    assert verdict(1.0, 0.01, 0.2) == NOT_SIGNIFICANT  # both tests must agree
    assert verdict(1.0, 0.01, 0.02) == BEATS == "beats the baseline"
    assert verdict(-1.0, 0.001, 0.002) == WORSE == "is worse than the baseline"
    assert verdict(1.0, 0.05, 0.01) == NOT_SIGNIFICANT  # strictly below ALPHA


def test_holm_adjusts_in_the_order_given() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([]) == []


def test_over_seeds_each_episode_is_seed_averaged_and_each_seed_listed() -> None:
    base = _seeded([0, 1])
    better = {seed: (acc + 0.05).clamp(max=1.0) for seed, acc in base.items()}
    found = compare_to_baseline(better, base)
    mean_of = lambda runs: torch.stack([runs[0], runs[1]]).double().mean(dim=0) * 100  # noqa: E731
    expected = evaluation.paired_comparison(mean_of(better), mean_of(base))
    assert found.paired() == pytest.approx(expected) and found.seeds == [0, 1] and found.n == 200
    assert found.per_seed_diff == pytest.approx([float((better[s] - base[s]).double().mean() * 100) for s in (0, 1)])
    assert found.per_seed[1]["t_pvalue"] == pytest.approx(
        stats.ttest_rel(better[1].double().numpy() * 100, base[1].double().numpy() * 100).pvalue, rel=1e-9
    )
    assert found.verdict == BEATS and found.beats and found.t_pvalue_holm is None
    assert found.seed_std == pytest.approx(float(np.std(found.per_seed_diff, ddof=1)))


def test_seeds_are_paired_by_id_and_a_seed_only_one_side_has_is_left_out() -> None:
    selected = _seeded([0, 1, 2], seed=1)
    baseline = {0: selected[0] - 0.1, 2: selected[2] - 0.3}  # seed 1 failed for the baseline
    selected[1] = torch.zeros(200)  # if seed 1 were paired (with anything) the difference would turn negative
    found = compare_to_baseline(selected, baseline)
    assert found.seeds == [0, 2] and len(found.per_seed) == 2
    assert found.mean_diff == pytest.approx(20.0) and found.per_seed_diff == pytest.approx([10.0, 30.0])
    assert found == compare_to_baseline({0: selected[0], 2: selected[2]}, baseline)  # as if seed 1 never trained
    with pytest.raises(EvaluationError, match=r"no training seed in common: .* seeds \[5\], the baseline \[0, 2\]"):
        compare_to_baseline({5: selected[0]}, baseline)


def test_a_family_is_holm_adjusted_and_judged_on_the_adjusted_p_value() -> None:
    base = _seeded([0], episodes=40)
    noise = _seeded([0], episodes=40, seed=3)[0] * 0.05
    candidates = {
        "clear": {0: base[0] + 0.2 + noise},
        "small": {0: base[0] + 0.01 + noise},
        "none": {0: base[0] + noise - noise.mean()},
        "no seed in common": {7: base[0]},
    }
    alone = compare_family(candidates, base)
    family = compare_family(candidates, base, holm_adjust=True)
    assert list(family) == ["clear", "small", "none"]  # the one without a common seed is left out
    assert [family[key].t_pvalue_holm for key in family] == pytest.approx(holm([alone[k].t_pvalue for k in family]))
    assert all(family[key].paired() == alone[key].paired() for key in family)
    assert family["clear"].beats and all(found.t_pvalue_holm is None for found in alone.values())
    judged = BaselineComparison(
        seeds=[0], mean_diff=1.0, ci95=0.5, t_pvalue=0.03, wilcoxon_pvalue=0.01, n=40, per_seed={0: {"mean_diff": 1.0}}
    )
    assert judged.verdict == BEATS and judged.adjusted(0.09).verdict == NOT_SIGNIFICANT
    assert judged.adjusted(0.04).verdict == BEATS and judged.adjusted(0.09).t_pvalue == 0.03


def test_score_episode_sets_is_evaluate_per_shot_with_the_given_settings() -> None:
    import data

    generator = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(6), 5)
    features = torch.randn(30, 8, generator=generator) + torch.as_tensor(labels, dtype=torch.float32)[:, None]
    sets = {k: data.EpisodeSet.sample(labels, 3, k, 2, 4, seed=k) for k in (1, 2)}
    head = evaluation.finetune_head("neg-cosine")
    scored = evaluation.score_episode_sets(features, labels, sets, head, seed=5, epochs=3)
    assert sorted(scored) == [1, 2]
    for shot, episodes in sets.items():
        expected = evaluation.evaluate(features, torch.as_tensor(labels), episodes, seed=5, epochs=3, **head)
        assert torch.equal(scored[shot], expected) and scored[shot].shape == (4,)
    summary = evaluation.accuracy_summary(scored[1])
    mean, half_width = evaluation.mean_ci95(scored[1].double() * 100)
    assert summary == {"mean": pytest.approx(mean), "ci95": pytest.approx(half_width), "episodes": 4}
