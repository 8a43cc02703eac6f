"""Conv-4 (CloserLook `Conv4`): 4 x [conv3x3(64, padding 1, bias), BN, ReLU, maxpool 2], flatten. 84 -> 1600.

The published Conv-4 has no regulariser. So that a sweep can search DropBlock on the small CPU backbone too, blocks 3
and 4 end with a DropBlock2d (as ResNet-12's blocks 3–4); at the default rate 0 it is the identity and the network is
exactly the published one (same parameters, same outputs).
"""

import torch
from torch import nn

from models.dropblock import DropBlock2d, DropBlockMask
from models.layers import init_published
from models.registry import register_backbone

DROPBLOCK_BLOCKS = (2, 3)  # zero-based: blocks 3 and 4


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv3x3 (with bias, as CloserLook) + BN + ReLU + maxpool 2: [B, in, H, W] -> [B, out, H/2, W/2]."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """Four conv blocks of 64 channels and a flatten: [B, 3, H, W] -> [B, 64 · (H/16) · (W/16)]."""

    def __init__(
        self,
        width: int = 64,
        default_size: int = 84,
        drop_rate: float = 0.0,
        dropblock_size: int = 5,
        dropblock_ramp_iters: int = 40_000,
        dropblock_mask: DropBlockMask = "exact",
    ) -> None:
        super().__init__()
        blocks = []
        for index in range(4):
            block = conv_block(3 if index == 0 else width, width)
            if index in DROPBLOCK_BLOCKS:
                block.append(DropBlock2d(drop_rate, dropblock_size, dropblock_ramp_iters, dropblock_mask))
            blocks.append(block)
        self.trunk = nn.Sequential(*blocks)
        self.out_dim = width * (default_size // 16) ** 2
        init_published(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> features [B, D]."""
        return self.trunk(x).flatten(1)


@register_backbone
def conv4(
    *,
    drop_rate: float = 0.0,
    dropblock_size: int = 5,
    dropblock_ramp_iters: int = 40_000,
    dropblock_mask: DropBlockMask = "exact",
) -> Conv4:
    """Conv-4 (84 -> 1600); optional DropBlock after blocks 3–4 (off at the default rate 0, as published)."""
    return Conv4(
        drop_rate=drop_rate,
        dropblock_size=dropblock_size,
        dropblock_ramp_iters=dropblock_ramp_iters,
        dropblock_mask=dropblock_mask,
    )
