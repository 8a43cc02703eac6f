"""What can be trained, by name: the backbones and the losses. Torch-free, so a spec validates without loading torch.

Each loss is written once here, with everything the rest of the code asks of it: the similarity of its head, which
margins it takes, its default temperature β (the published code's), and the head the episodes are fine-tuned with
at test time (the published `metric_params_test`: β = 5, m = 0, no bias; the plain softmax baseline a biased linear
head with β = 1). See docs/protocol.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Similarity = Literal["dot", "cosine"]
MarginRule = Literal["none", "non-positive", "any"]

# Every backbone by name, with the module that builds it (it registers itself there: models/registry.py).
BACKBONE_MODULES = {
    "conv4": "models.conv4",
    "resnet12": "models.resnet12",
    "resnet18": "models.resnet18",
    "wrn28_10": "models.wrn",
}
BACKBONES = tuple(BACKBONE_MODULES)
# How DropBlock grows blocks from its seeds (models/dropblock.py, docs/protocol.md D9): the authors' construction,
# or the full squares of DropBlock's definition.
DROPBLOCK_MASKS = ("published", "exact")


@dataclass(frozen=True)
class Loss:
    """A pretraining loss: its head's similarity, the margins it accepts, its default β, its fine-tuning head."""

    name: str
    similarity: Similarity
    margin_rule: MarginRule
    biased_head: bool  # the plain softmax baseline is nn.Linear with a bias, the others are bias-free margin heads
    default_scale: float
    finetune_scale: float
    margin_span: tuple[float, float] = (0.0, 0.0)  # the margins a margin study spans when the sweep searched none

    def scale_for(self, backbone: str) -> float:
        """The published β of this loss on `backbone` (neg-softmax uses 10 on resnet12, 5 elsewhere)."""
        if self.name == "neg-softmax" and backbone == "resnet12":
            return 10.0
        return self.default_scale

    def margin_problem(self, margin: float) -> str | None:
        """Why this loss cannot take `margin`, or None."""
        if self.margin_rule == "none" and margin != 0.0:
            return f"loss {self.name!r} takes no margin (got margin={margin}); use 'neg-softmax'"
        if self.margin_rule == "non-positive" and margin > 0.0:
            return (
                f"loss {self.name!r} needs margin <= 0 (got margin={margin}); "
                "a positive margin is CosFace: use loss 'cosine'"
            )
        return None

    def finetune_head(self) -> dict:
        """Settings {similarity, scale, bias} of the head fine-tuned on each test episode."""
        return {"similarity": self.similarity, "scale": self.finetune_scale, "bias": self.biased_head}


_COSINE_SPAN = (-0.5, 0.3)  # a cosine head takes either sign (m > 0 is CosFace)
_SOFTMAX_SPAN = (-1.0, 0.0)  # a dot-product head takes m <= 0 only
LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("softmax", "dot", "none", True, default_scale=1.0, finetune_scale=1.0),
        Loss("cosine", "cosine", "any", False, default_scale=30.0, finetune_scale=5.0, margin_span=_COSINE_SPAN),
        Loss(
            "neg-softmax",
            "dot",
            "non-positive",
            False,
            default_scale=5.0,
            finetune_scale=5.0,
            margin_span=_SOFTMAX_SPAN,
        ),
        Loss(
            "neg-cosine",
            "cosine",
            "non-positive",
            False,
            default_scale=30.0,
            finetune_scale=5.0,
            margin_span=_COSINE_SPAN,
        ),
    )
}
LOSS_NAMES = tuple(LOSSES)


def study_margin_problem(loss: str, margin: float) -> str | None:
    """Why a margin study of `loss` cannot train `margin` (its trained loss refuses it), or None."""
    return LOSSES[trained_loss(loss, margin)].margin_problem(margin)


def trained_loss(loss: str, margin: float) -> str:
    """The loss a trial trains: a neg-cosine sweep that samples m > 0 trains the CosFace-style cosine head."""
    if loss == "neg-cosine" and margin > 0:
        return "cosine"
    return loss
