"""Heads: logits equal the published formulas; margin only with labels; build_head's rules and errors."""

import pytest
import torch
import torch.nn.functional as F

from models import LOSSES, MarginHead, ModelConfigError, SoftmaxHead, build_head, head_similarity

B, D, C = 6, 16, 5


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, D, generator=g), torch.randint(0, C, (B,), generator=g)


def expected_logits(features, weight, labels, similarity, scale, margin):
    """β · (s(z, W) − m · onehot(y)), computed row by row from the definitions."""
    out = torch.empty(features.shape[0], weight.shape[0])
    for i, z in enumerate(features):
        for c, w in enumerate(weight):
            s = z @ w / (z.norm() * w.norm()) if similarity == "cosine" else z @ w
            m = margin if labels is not None and labels[i] == c else 0.0
            out[i, c] = scale * (s - m)
    return out


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("margin", [-0.3, 0.0, 0.2])
@pytest.mark.parametrize("scale", [1.0, 5.0, 30.0])
def test_logits_follow_the_formula(batch, similarity, margin, scale):
    features, labels = batch
    head = MarginHead(D, C, similarity, scale=scale, margin=margin)
    weight = head.weight.detach()
    torch.testing.assert_close(
        head(features, labels), expected_logits(features, weight, labels, similarity, scale, margin)
    )
    torch.testing.assert_close(head(features), expected_logits(features, weight, None, similarity, scale, margin))


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_margin_only_moves_the_true_class_logit(batch, similarity):
    features, labels = batch
    head = MarginHead(D, C, similarity, scale=10.0, margin=-0.3)
    diff = head(features, labels) - head(features)
    torch.testing.assert_close(diff, 10.0 * 0.3 * F.one_hot(labels, C).float())


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_negative_margin_lowers_the_training_loss(batch, similarity):
    features, labels = batch
    head_0 = MarginHead(D, C, similarity, scale=5.0, margin=0.0)
    head_neg = MarginHead(D, C, similarity, scale=5.0, margin=-0.3)
    head_neg.load_state_dict(head_0.state_dict())
    loss_0 = F.cross_entropy(head_0(features, labels), labels)
    loss_neg = F.cross_entropy(head_neg(features, labels), labels)
    assert loss_neg < loss_0


def test_cosine_head_is_invariant_to_feature_norm(batch):
    features, _ = batch
    head = MarginHead(D, C, "cosine", scale=30.0)
    torch.testing.assert_close(head(features), head(7.0 * features))
    assert head(features).abs().max() <= 30.0 + 1e-4


def test_softmax_head_is_linear_with_bias(batch):
    features, labels = batch
    head = SoftmaxHead(D, C)
    assert head.bias is not None and head.bias.shape == (C,)
    expected = F.linear(features, head.weight, head.bias)
    torch.testing.assert_close(head(features, labels), expected)
    torch.testing.assert_close(head(features), expected)


@pytest.mark.parametrize(
    ("loss", "margin", "similarity"),
    [
        ("cosine", 0.0, "cosine"),
        ("cosine", 0.35, "cosine"),  # CosFace
        ("neg-cosine", -0.05, "cosine"),
        ("neg-softmax", -0.3, "dot"),
    ],
)
def test_build_head_makes_a_margin_head(loss, margin, similarity):
    head = build_head(loss, D, C, scale=5.0, margin=margin)
    assert isinstance(head, MarginHead)
    assert (head.similarity, head.scale, head.margin) == (similarity, 5.0, margin)
    assert head.weight.shape == (C, D)
    assert not any(name.endswith("bias") for name, _ in head.named_parameters())


def test_build_head_softmax_ignores_scale_and_rejects_a_margin():
    head = build_head("softmax", D, C, scale=30.0, margin=0.0)
    assert type(head) is SoftmaxHead
    with pytest.raises(ModelConfigError, match="loss 'softmax' takes no margin"):
        build_head("softmax", D, C, scale=1.0, margin=-0.1)


@pytest.mark.parametrize("loss", ["neg-softmax", "neg-cosine"])
def test_negative_margin_losses_reject_a_positive_margin(loss):
    with pytest.raises(ModelConfigError, match=f"loss '{loss}' needs margin <= 0") as info:
        build_head(loss, D, C, scale=5.0, margin=0.1)
    assert "\n" not in str(info.value)


def test_unknown_loss_and_bad_scale_are_config_errors():
    with pytest.raises(ModelConfigError, match="unknown loss 'arcface'.*softmax, cosine, neg-softmax, neg-cosine"):
        build_head("arcface", D, C, scale=5.0, margin=0.0)
    with pytest.raises(ModelConfigError, match="scale must be > 0"):
        build_head("neg-cosine", D, C, scale=0.0, margin=0.0)
    with pytest.raises(ModelConfigError, match="similarity"):
        MarginHead(D, C, "euclidean")


def test_head_similarity():
    assert {loss: head_similarity(loss) for loss in LOSSES} == {
        "softmax": "dot",
        "cosine": "cosine",
        "neg-softmax": "dot",
        "neg-cosine": "cosine",
    }
