"""The head and the loss run in float32 whatever the backbone's precision; `precision` reaches the trial.

CPU bf16 autocast stands in for CUDA's: the backbone's convolutions run in bf16, the margin must still be exact.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import build_head
from sweep import trial
from sweep.schema.trial_config import TrialConfig
from sweep.trial.training import Precision, resolve_precision, train_step, training_logits

from helpers.trials import tiny_config, write_tiny_imagefolder

BF16 = Precision(torch.bfloat16, channels_last=False)
CPU = torch.device("cpu")
B, C, D, S = 32, 5, 24, 8


def small_backbone() -> nn.Module:
    """conv + ReLU + average pool: [B, 3, S, S] -> [B, D]; its conv runs in bf16 under autocast."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, D, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def to_inputs(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The test's augmentation: uint8 [B, S, S, 3] -> float [B, 3, S, S] in [0, 32] (dot products well above 2)."""
    return images.permute(0, 3, 1, 2).float() / 8.0


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (B, S, S, 3), generator=generator, dtype=torch.uint8)
    return images, torch.randint(0, C, (B,), generator=generator)


def exact_logits(features: torch.Tensor, head: nn.Module, labels: torch.Tensor) -> torch.Tensor:
    """β · (s(z, W) − m · onehot(y)) in float64 from the backbone's features."""
    z, w = features.double(), head.weight.detach().double()
    similarity = F.normalize(z, dim=1) @ F.normalize(w, dim=1).T if head.similarity == "cosine" else z @ w.T
    return head.scale * (similarity - head.margin * F.one_hot(labels, C).double())


@pytest.mark.parametrize("margin", [-0.005, -0.01, -0.3])
@pytest.mark.parametrize(("loss", "scale"), [("neg-cosine", 30.0), ("neg-softmax", 5.0)])
def test_training_logits_carry_the_exact_margin_under_bf16_autocast(loss, scale, margin):
    backbone, head = small_backbone(), build_head(loss, D, C, scale=scale, margin=margin)
    images, labels = batch()
    inputs = to_inputs(images, torch.Generator())
    with BF16.autocast(CPU):
        features = backbone(inputs)
    assert features.dtype == torch.bfloat16  # the backbone does run in bf16 here
    if loss == "neg-softmax":
        assert (features.float() @ head.weight.detach().T).abs().max() > 2  # where bf16 rounds −0.005 away

    logits, plain = training_logits(backbone, head, inputs, labels, BF16)
    assert logits.dtype == plain.dtype == torch.float32
    torch.testing.assert_close(logits.double(), exact_logits(features, head, labels), rtol=1e-6, atol=1e-5)
    # the margin itself, to float32 rounding (β·|m| ≥ 0.025 here): β·|m| on the true class, nothing elsewhere
    torch.testing.assert_close(
        (logits - plain).double(), -scale * margin * F.one_hot(labels, C).double(), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("margin", [-0.005, -0.01, -0.3])
def test_train_step_loss_is_the_float32_cross_entropy_of_the_exact_logits(margin):
    backbone, head = small_backbone(), build_head("neg-cosine", D, C, scale=30.0, margin=margin)
    images, labels = batch()
    with BF16.autocast(CPU), torch.no_grad():
        features = backbone(to_inputs(images, torch.Generator()))
    logits = exact_logits(features, head, labels)  # before the step changes the weights
    expected = F.cross_entropy(logits, labels)
    expected_correct = int(((logits + head.scale * margin * F.one_hot(labels, C)).argmax(1) == labels).sum())
    optimizer = torch.optim.SGD([*backbone.parameters(), *head.parameters()], lr=0.1)
    loss, correct = train_step(
        backbone, head, optimizer, images, labels, augment=to_inputs, generator=torch.Generator(), precision=BF16
    )
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert int(correct) == expected_correct


def test_heads_compute_in_float32_inside_autocast():
    features = torch.randn(4, D, dtype=torch.bfloat16)
    for loss in ("softmax", "cosine", "neg-softmax", "neg-cosine"):
        head = build_head(loss, D, C, scale=10.0, margin=0.0)
        with BF16.autocast(CPU):
            assert head(features).dtype == torch.float32, loss


def test_precision_names():
    cuda = torch.device("cuda")
    assert resolve_precision("auto", CPU) == Precision(None, channels_last=False)
    assert resolve_precision("auto", cuda) == Precision(torch.bfloat16, channels_last=True)
    assert resolve_precision("fp32", cuda) == Precision(None, channels_last=False)  # a sweep can turn bf16 off
    assert resolve_precision("bf16", CPU) == Precision(torch.bfloat16, channels_last=False)


class LastReport:
    """Keeps the last validation report."""

    def epoch_end(self, metrics: dict) -> None:
        pass

    def report(self, metrics: dict, checkpoint: dict) -> None:
        self.metrics = metrics


def test_the_trial_trains_at_the_precision_it_is_given(tmp_path):
    """precision: bf16 and fp32 reach the training loop (one epoch each on the CPU: different losses)."""
    root, cache = write_tiny_imagefolder(tmp_path / "tiny"), tmp_path / "cache"
    losses = {}
    for precision in ("fp32", "bf16"):
        config = TrialConfig.from_dict(
            tiny_config(root, cache), {"precision": precision, "epochs": 1, "warmup_epochs": 0}
        )
        reporter = LastReport()
        trial.run(config, reporter)
        losses[precision] = reporter.metrics["train_loss"]
    assert losses["fp32"] != losses["bf16"]
    assert losses["fp32"] == pytest.approx(losses["bf16"], rel=0.05)  # the same training, rounded differently
