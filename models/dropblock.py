"""DropBlock (Ghiasi et al. 2018) as MetaOptNet and the negative-margin code run it: a pure function and a module.

The published code samples Bernoulli seeds on the valid block centres of every (sample, channel) map, grows each
seed into a `block_size` x `block_size` square, and rescales the output by (#elements / #kept) over the whole batch.
Here the square is grown with a max-pool (same mask as MetaOptNet's index arithmetic) and nothing is tied to CUDA.
Extension for small inputs: the block size is clipped to the feature map (as timm does), so 32x32 inputs work.
"""

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ModelConfigError


def check_dropblock_args(drop_rate: float, block_size: int, ramp_iters: int = 0) -> None:
    """Raise ModelConfigError unless 0 <= drop_rate < 1, block_size >= 1 and ramp_iters >= 0."""
    if not 0.0 <= drop_rate < 1.0:
        raise ModelConfigError(f"drop_rate must be in [0, 1), got {drop_rate}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ModelConfigError(f"dropblock_size must be an integer >= 1, got {block_size!r}")
    if isinstance(ramp_iters, bool) or not isinstance(ramp_iters, int) or ramp_iters < 0:
        raise ModelConfigError(f"dropblock_ramp_iters must be an integer >= 0, got {ramp_iters!r}")


def dropblock_gamma(drop_rate: float, block_size: int, height: int, width: int) -> float:
    """Seed probability: (1 - keep) / bs² · fs² / (fs - bs + 1)², with fs² = H·W for non-square maps."""
    bs = min(block_size, height, width)
    valid = (height - bs + 1) * (width - bs + 1)
    return min(1.0, drop_rate / bs**2 * (height * width) / valid)


def drop_block_mask(
    shape: torch.Size, drop_rate: float, block_size: int, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Keep-mask float32 [B, C, H, W] (1 = kept) for x of `shape` [B, C, H, W]."""
    batch, channels, height, width = shape
    bs = min(block_size, height, width)
    gamma = dropblock_gamma(drop_rate, bs, height, width)
    seed_shape = (batch, channels, height - bs + 1, width - bs + 1)
    sample_device = generator.device if generator is not None else device
    seeds = (torch.rand(seed_shape, generator=generator, device=sample_device) < gamma).to(device, torch.float32)
    # A seed at valid centre (i, j) drops [i, i + bs) x [j, j + bs): a max-pool over the zero-padded seeds.
    dropped = F.max_pool2d(F.pad(seeds, (bs - 1, bs - 1, bs - 1, bs - 1)), kernel_size=bs, stride=1)
    return 1.0 - dropped


def drop_block_2d(
    x: torch.Tensor, drop_rate: float, block_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """DropBlock on x [B, C, H, W] -> [B, C, H, W]; kept units rescaled by #elements / #kept (identity if rate 0)."""
    if drop_rate <= 0.0:
        return x
    mask = drop_block_mask(x.shape, drop_rate, block_size, x.device, generator)
    scale = mask.numel() / mask.sum().clamp_min(1.0)
    return x * (mask * scale).to(x.dtype)


class DropBlock2d(nn.Module):
    """DropBlock whose rate ramps linearly from 0 to `drop_rate` over `ramp_iters` training forwards.

    The counter `num_batches_tracked` is a buffer (saved in state_dict, so a resumed run continues the ramp) and is
    incremented on every training-mode forward. A forward uses the rate for the count *before* it, as the published
    code (which reads BatchNorm's counter before the block runs): after k training forwards the rate is
    drop_rate · min(1, k / ramp_iters). Identity in eval mode and when the rate is 0.
    """

    num_batches_tracked: torch.Tensor

    def __init__(self, drop_rate: float, block_size: int, ramp_iters: int = 40_000) -> None:
        super().__init__()
        check_dropblock_args(drop_rate, block_size, ramp_iters)
        self.drop_rate = drop_rate
        self.block_size = block_size
        self.ramp_iters = ramp_iters
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def current_rate(self) -> float:
        """Drop rate the next training forward will use."""
        if self.ramp_iters == 0:
            return self.drop_rate
        return self.drop_rate * min(1.0, int(self.num_batches_tracked) / self.ramp_iters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] -> [B, C, H, W]."""
        if not self.training:
            return x
        if self.drop_rate == 0.0:  # no host read of the counter (a GPU sync) when DropBlock is off
            self.num_batches_tracked.add_(1)
            return x
        rate = self.current_rate()
        self.num_batches_tracked.add_(1)
        return drop_block_2d(x, rate, self.block_size)

    def extra_repr(self) -> str:
        """Summary shown by print(module)."""
        return f"drop_rate={self.drop_rate}, block_size={self.block_size}, ramp_iters={self.ramp_iters}"
