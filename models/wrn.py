"""WRN-28-10 (pre-activation wide ResNet of S2M2, as the negative-margin code runs it). 80 -> 640.

conv3x3 16; three groups of 4 pre-activation blocks, widths 160/320/640, strides 1/2/2; final BN + ReLU; global
average pool. Each block is BN-ReLU-conv3x3/s-BN-ReLU-dropout-conv3x3 plus the identity, or a 1x1/s conv of the
pre-activated input where the width changes. Plain dropout at `drop_rate` (no DropBlock).
"""

import torch
from torch import nn

from models.layers import init_published
from models.registry import register_backbone


class PreActBlock(nn.Module):
    """[B, in, H, W] -> [B, out, H/s, W/s], pre-activation wide-ResNet block."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.preact = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True))
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(drop_rate),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        )
        self.equal_in_out = in_channels == out_channels and stride == 1
        self.shortcut = (
            None
            if self.equal_in_out
            else nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in, H, W] -> [B, out, H/s, W/s]."""
        act = self.preact(x)
        short = x if self.shortcut is None else self.shortcut(act)
        return self.body(act) + short


class WideResNet(nn.Module):
    """WRN-depth-k: [B, 3, H, W] -> [B, 64·k]."""

    def __init__(self, depth: int = 28, widen_factor: int = 10, drop_rate: float = 0.0) -> None:
        super().__init__()
        n_blocks = (depth - 4) // 6
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        groups = []
        for cin, cout, stride in zip(widths[:-1], widths[1:], (1, 2, 2)):
            first = PreActBlock(cin, cout, stride, drop_rate)
            groups.append(nn.Sequential(first, *(PreActBlock(cout, cout, 1, drop_rate) for _ in range(n_blocks - 1))))
        self.stem = nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False)
        self.groups = nn.Sequential(*groups)
        self.head = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.out_dim = widths[-1]
        init_published(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, H, W] -> features [B, 640]."""
        return self.head(self.groups(self.stem(x))).flatten(1)


@register_backbone
def wrn28_10(
    *,
    drop_rate: float = 0.0,
    dropblock_size: int = 5,
    dropblock_ramp_iters: int = 40_000,
    dropblock_mask: str = "exact",
) -> WideResNet:
    """WRN-28-10 (80 -> 640) with plain dropout at `drop_rate`; DropBlock options are ignored."""
    return WideResNet(28, 10, drop_rate)
