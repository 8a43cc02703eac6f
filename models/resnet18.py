"""ResNet-18 (CloserLook layout, as the negative-margin code runs it). 224 -> 512.

Stem 7x7/2 conv 64 + BN + ReLU + maxpool 3x3/2; four stages of two basic blocks (64/128/256/512, the first block of
stages 2-4 halves the resolution; 1x1 conv + BN shortcut where the width changes); average pool. Every block of
stages 3-4 ends with DropBlock and every block of stages 1-2 with plain dropout at the same rate, as the published
code does. Global average pooling equals the published AvgPool2d(7) at 224 px and also accepts smaller inputs.
"""

import torch
from torch import nn

from models.dropblock import DropBlockMask
from models.layers import block_regularizer, init_published
from models.registry import register_backbone

WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """[B, in, H, W] -> [B, out, H/s, W/s]: conv3x3/s-BN-ReLU-conv3x3-BN + shortcut, ReLU, then drop."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, regularizer: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        if in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.act = nn.ReLU(inplace=True)
        self.drop = regularizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in, H, W] -> [B, out, H/s, W/s]."""
        return self.drop(self.act(self.body(x) + self.shortcut(x)))


class ResNet18(nn.Module):
    """ResNet-18: [B, 3, H, W] -> [B, 512] (H, W >= 32 keeps a non-empty final map)."""

    def __init__(
        self,
        drop_rate: float = 0.0,
        dropblock_size: int = 5,
        dropblock_ramp_iters: int = 40_000,
        dropblock_mask: DropBlockMask = "exact",
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, WIDTHS[0], kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(WIDTHS[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        stages = []
        for i, (cin, cout) in enumerate(zip((WIDTHS[0], *WIDTHS[:-1]), WIDTHS)):
            stride = 1 if i == 0 else 2
            blocks = []
            for b_in, b_stride in ((cin, stride), (cout, 1)):
                reg = block_regularizer(drop_rate, i >= 2, dropblock_size, dropblock_ramp_iters, dropblock_mask)
                blocks.append(BasicBlock(b_in, cout, b_stride, reg))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = WIDTHS[-1]
        init_published(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> features [B, 512]."""
        return self.pool(self.stages(self.stem(x))).flatten(1)


@register_backbone
def resnet18(
    *,
    drop_rate: float = 0.0,
    dropblock_size: int = 5,
    dropblock_ramp_iters: int = 40_000,
    dropblock_mask: DropBlockMask = "exact",
) -> ResNet18:
    """ResNet-18 (224 -> 512), DropBlock in stages 3-4."""
    return ResNet18(drop_rate, dropblock_size, dropblock_ramp_iters, dropblock_mask)
