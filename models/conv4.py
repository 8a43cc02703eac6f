"""Conv-4 (CloserLook `Conv4`): 4 x [conv3x3(64, padding 1, bias), BN, ReLU, maxpool 2], flatten. 84 -> 1600."""

import torch
from torch import nn

from models.layers import init_published
from models.registry import register_backbone


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

    def __init__(self, width: int = 64, default_size: int = 84) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*(conv_block(3 if i == 0 else width, width) for i in range(4)))
        self.out_dim = width * (default_size // 16) ** 2
        init_published(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> features [B, D]."""
        return self.trunk(x).flatten(1)


@register_backbone
def conv4(*, drop_rate: float = 0.0, dropblock_size: int = 5, dropblock_ramp_iters: int = 40_000) -> Conv4:
    """Conv-4 (84 -> 1600); the published Conv-4 has no dropout, so the drop options are ignored."""
    return Conv4()
