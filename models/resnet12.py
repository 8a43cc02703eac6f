"""ResNet-12 (MetaOptNet layout, as the negative-margin code runs it). 84 -> 640.

Four blocks of 64/160/320/640 channels; each block is 3 x [conv3x3, BN, LeakyReLU(0.1)] (the last LeakyReLU after
the residual sum) with a 1x1 conv + BN shortcut, then maxpool 2. Blocks 3-4 end with DropBlock; blocks 1-2 end with
plain dropout at the same rate, as the published code does (`F.dropout` in blocks built with drop_block=False).
Global average pooling (the published AvgPool2d(5) on the 5x5 map at 84 px) gives 640 features.
"""

import torch
from torch import nn

from models.dropblock import DropBlockMask
from models.layers import block_regularizer, init_published
from models.registry import register_backbone

WIDTHS = (64, 160, 320, 640)


def conv3x3_bn(in_channels: int, out_channels: int) -> list[nn.Module]:
    """conv3x3 (no bias) + BN."""
    return [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(out_channels)]


class ResNet12Block(nn.Module):
    """[B, in, H, W] -> [B, out, H/2, W/2]: three conv-BN(-LeakyReLU), 1x1 shortcut, maxpool 2, then drop."""

    def __init__(self, in_channels: int, out_channels: int, regularizer: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv3x3_bn(in_channels, out_channels),
            nn.LeakyReLU(0.1),
            *conv3x3_bn(out_channels, out_channels),
            nn.LeakyReLU(0.1),
            *conv3x3_bn(out_channels, out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.act = nn.LeakyReLU(0.1)
        self.pool = nn.MaxPool2d(2)
        self.drop = regularizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in, H, W] -> [B, out, H/2, W/2]."""
        return self.drop(self.pool(self.act(self.body(x) + self.shortcut(x))))


class ResNet12(nn.Module):
    """ResNet-12: [B, 3, H, W] -> [B, 640] (H, W >= 16)."""

    def __init__(
        self,
        drop_rate: float = 0.0,
        dropblock_size: int = 5,
        dropblock_ramp_iters: int = 40_000,
        dropblock_mask: DropBlockMask = "exact",
    ) -> None:
        super().__init__()
        blocks = []
        for i, (cin, cout) in enumerate(zip((3, *WIDTHS[:-1]), WIDTHS)):
            reg = block_regularizer(drop_rate, i >= 2, dropblock_size, dropblock_ramp_iters, dropblock_mask)
            blocks.append(ResNet12Block(cin, cout, reg))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = WIDTHS[-1]
        init_published(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> features [B, 640]."""
        return self.pool(self.blocks(x)).flatten(1)


@register_backbone
def resnet12(
    *,
    drop_rate: float = 0.0,
    dropblock_size: int = 5,
    dropblock_ramp_iters: int = 40_000,
    dropblock_mask: DropBlockMask = "exact",
) -> ResNet12:
    """ResNet-12 (84 -> 640), DropBlock in blocks 3-4."""
    return ResNet12(drop_rate, dropblock_size, dropblock_ramp_iters, dropblock_mask)
