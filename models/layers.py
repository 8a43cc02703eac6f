"""Pieces shared by the backbones: the published weight init and the per-block regulariser."""

from torch import nn

from models.dropblock import DropBlock2d, DropBlockMask


def init_published(module: nn.Module) -> None:
    """Init as the published code: convs N(0, 2 / (k·k·out)) (kaiming fan-out), BatchNorm weight 1 / bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def block_regularizer(
    drop_rate: float, use_dropblock: bool, block_size: int, ramp_iters: int, mask: DropBlockMask = "exact"
) -> nn.Module:
    """DropBlock2d for DropBlock blocks, otherwise plain dropout at `drop_rate` (as the published ResNets).

    DropBlock2d is built even at rate 0 so that the state_dict keys do not depend on the drop rate.
    """
    if use_dropblock:
        return DropBlock2d(drop_rate, block_size, ramp_iters, mask)
    return nn.Dropout(drop_rate)
