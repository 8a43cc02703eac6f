"""Batched fine-tuning == the published per-episode loop (nn.Module head + torch.optim.SGD), episode by episode."""

import math

import pytest
import torch

from evaluation import EvaluationError, FinetuneSettings, finetune_episodes, finetune_head
from evaluation.finetune import _finetune_chunk, draw_episode_randomness, episode_seeds, reference_finetune

from helpers.episodes import episode_batch

WAY, QUERY, DIM = 5, 4, 16


def _compare_with_loop(
    settings: FinetuneSettings, n_shot: int, n_episodes: int, dtype: torch.dtype, atol: float
) -> None:
    support, support_labels, query, query_labels = episode_batch(n_episodes, WAY, n_shot, QUERY, DIM, dtype=dtype)
    seeds = episode_seeds(n_episodes, torch.Generator().manual_seed(7))
    weights, bias, acc = _finetune_chunk(support, support_labels, query, query_labels, seeds, settings, WAY)
    assert weights.shape == (n_episodes, WAY, DIM) and acc.shape == (n_episodes,)
    for e in range(n_episodes):
        w_loop, b_loop, acc_loop = reference_finetune(
            support[e], support_labels[e], query[e], query_labels[e], int(seeds[e]), settings, WAY, dtype=dtype
        )
        w0, _, _ = draw_episode_randomness(int(seeds[e]), WAY, DIM, WAY * n_shot, settings.epochs, settings.bias)
        assert (w_loop.double() - w0.double()).abs().max() > 1e-3  # the head did move
        torch.testing.assert_close(weights[e], w_loop.double(), atol=atol, rtol=0)
        if settings.bias:
            torch.testing.assert_close(bias[e], b_loop.double(), atol=atol, rtol=0)
        else:
            assert bias is None and b_loop is None
        assert acc[e].item() == pytest.approx(acc_loop, abs=1e-12)


@pytest.mark.parametrize("n_shot", [1, 5])
@pytest.mark.parametrize(
    "head",
    [
        {"similarity": "cosine", "scale": 5.0, "bias": False},
        {"similarity": "dot", "scale": 5.0, "bias": False},
        {"similarity": "dot", "scale": 1.0, "bias": True},
        {"similarity": "cosine", "scale": 30.0, "bias": False, "margin": -0.2},
        {"similarity": "dot", "scale": 5.0, "bias": False, "margin": 0.3},
    ],
)
def test_batched_equals_loop_float64(head: dict, n_shot: int) -> None:
    _compare_with_loop(FinetuneSettings(epochs=5, **head), n_shot, n_episodes=3, dtype=torch.float64, atol=1e-12)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_batched_equals_loop_default_protocol_100_epochs(similarity: str) -> None:
    """The protocol's defaults (100 epochs, 5-shot: 7 minibatches per epoch, last one of 1) on one episode."""
    settings = FinetuneSettings(similarity=similarity)
    assert settings.epochs == 100 and settings.batch_size == 4 and settings.lr == 0.01
    assert (settings.momentum, settings.dampening, settings.weight_decay, settings.scale) == (0.9, 0.9, 1e-3, 5.0)
    _compare_with_loop(settings, n_shot=5, n_episodes=1, dtype=torch.float64, atol=1e-10)


def test_batched_matches_float32_loop_to_float_tolerance() -> None:
    """The published loop runs in float32; the batched float64 run agrees with it to float32 rounding."""
    _compare_with_loop(
        FinetuneSettings(similarity="cosine", epochs=20), n_shot=5, n_episodes=2, dtype=torch.float32, atol=1e-5
    )


def test_sgd_first_step_has_no_dampening() -> None:
    """One step from W₀: W₁ = W₀ − lr · (g + wd · W₀), the full gradient (torch.optim.SGD's first momentum step)."""
    settings = FinetuneSettings(similarity="dot", epochs=1, batch_size=5)  # 1-shot 5-way: one minibatch per epoch
    support, support_labels, query, query_labels = episode_batch(1, WAY, 1, QUERY, DIM, dtype=torch.float64)
    seeds = torch.tensor([3])
    weights, _, _ = _finetune_chunk(support, support_labels, query, query_labels, seeds, settings, WAY)
    w0, _, _ = draw_episode_randomness(3, WAY, DIM, WAY, 1, False)
    w = w0.double().requires_grad_()
    loss = torch.nn.functional.cross_entropy(5.0 * support[0] @ w.T, support_labels[0])
    (grad,) = torch.autograd.grad(loss, w)
    torch.testing.assert_close(weights[0], w.detach() - 0.01 * (grad + 1e-3 * w.detach()), atol=1e-14, rtol=0)


def test_chunking_gives_identical_results() -> None:
    support, support_labels, query, query_labels = episode_batch(7, WAY, 2, QUERY, DIM)
    kwargs = dict(similarity="cosine", epochs=3)
    whole = finetune_episodes(
        support,
        support_labels,
        query,
        query_labels,
        **kwargs,
        generator=torch.Generator().manual_seed(1),
        chunk_size=1024,
    )
    for chunk_size in (1, 3):
        chunked = finetune_episodes(
            support,
            support_labels,
            query,
            query_labels,
            **kwargs,
            generator=torch.Generator().manual_seed(1),
            chunk_size=chunk_size,
        )
        assert torch.equal(whole, chunked)
    assert whole.shape == (7,)
    correct = whole * WAY * QUERY  # a whole number of each episode's queries answered right
    torch.testing.assert_close(correct, correct.round(), rtol=0, atol=1e-9)


def test_same_generator_seed_same_result_other_seed_other_heads() -> None:
    support, support_labels, query, query_labels = episode_batch(2, WAY, 1, QUERY, DIM, dtype=torch.float64)
    settings = FinetuneSettings(epochs=2)

    def run(seed: int) -> torch.Tensor:
        seeds = episode_seeds(2, torch.Generator().manual_seed(seed))
        return _finetune_chunk(support, support_labels, query, query_labels, seeds, settings, WAY)[0]

    assert torch.equal(run(0), run(0))
    assert not torch.allclose(run(0), run(1))


def test_initial_weights_are_uniform_in_linear_bound_and_permutations_valid() -> None:
    weight, bias, perms = draw_episode_randomness(123, n_way=5, dim=400, n_support=25, epochs=100, bias=True)
    bound = 1 / math.sqrt(400)
    assert weight.shape == (5, 400) and bias.shape == (5,)
    assert weight.abs().max() <= bound and weight.abs().max() > 0.95 * bound
    assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform(−b, b)
    assert perms.shape == (100, 25)
    assert torch.equal(perms.sort(dim=1).values, torch.arange(25).expand(100, -1))
    assert not torch.equal(perms[0], perms[1])


def test_finetune_head_of_each_loss_is_the_published_one() -> None:
    assert finetune_head("neg-cosine") == {"similarity": "cosine", "scale": 5.0, "bias": False}
    assert finetune_head("cosine") == {"similarity": "cosine", "scale": 5.0, "bias": False}
    assert finetune_head("neg-softmax") == {"similarity": "dot", "scale": 5.0, "bias": False}
    assert finetune_head("softmax") == {"similarity": "dot", "scale": 1.0, "bias": True}
    with pytest.raises(EvaluationError, match="arcface"):
        finetune_head("arcface")


def test_bad_inputs_raise_evaluation_error() -> None:
    support, support_labels, query, query_labels = episode_batch(2, WAY, 1, QUERY, DIM)
    with pytest.raises(EvaluationError, match="similarity"):
        finetune_episodes(support, support_labels, query, query_labels, similarity="euclid")
    with pytest.raises(EvaluationError, match="same E and D"):
        finetune_episodes(support, support_labels, query[:1], query_labels[:1])
    with pytest.raises(EvaluationError, match="query labels"):
        finetune_episodes(support, support_labels, query, query_labels + WAY)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU (benchmarks/gpu_check.sh runs this)")
@pytest.mark.parametrize("head", [{"similarity": "cosine"}, {"similarity": "dot", "scale": 1.0, "bias": True}])
def test_cuda_graph_epochs_equal_eager_steps_and_the_loop(head: dict) -> None:
    """On a GPU each epoch after the first is a replayed CUDA graph: the same iterates as launching every step."""
    settings = FinetuneSettings(epochs=6, **head)
    support, support_labels, query, query_labels = episode_batch(3, WAY, 5, QUERY, DIM, dtype=torch.float64)
    seeds = episode_seeds(3, torch.Generator().manual_seed(7))
    args = (support, support_labels, query, query_labels, seeds, settings, WAY, "cuda")
    graphed, eager = _finetune_chunk(*args, cuda_graph=True), _finetune_chunk(*args, cuda_graph=False)
    for part_graphed, part_eager in zip(graphed, eager, strict=True):
        if part_eager is not None:
            torch.testing.assert_close(part_graphed, part_eager, atol=1e-12, rtol=0)
    w_loop, _, _ = reference_finetune(
        support[0], support_labels[0], query[0], query_labels[0], int(seeds[0]), settings, WAY, dtype=torch.float64
    )
    torch.testing.assert_close(graphed[0][0].cpu(), w_loop, atol=1e-10, rtol=0)
