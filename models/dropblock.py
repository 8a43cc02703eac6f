"""DropBlock (Ghiasi et al. 2018) as MetaOptNet and the negative-margin code run it: a pure function and a module.

The published code (bl0/negative-margin.few-shot `lib/dropblock.py`, from MetaOptNet) samples Bernoulli(γ) seeds on
the valid block positions of every (sample, channel) map, grows each seed into a block, and rescales the output by
(#elements / #kept) over the whole batch. Two ways of growing the blocks are offered (`mask`, docs/protocol.md D9):

- "exact": every seed at (i, j) drops the full square [i, i + bs) x [j, j + bs) (a max-pool over the padded seeds):
  the DropBlock of the paper it cites.
- "published": the authors' index arithmetic, reproduced as it runs. `_compute_block_mask` lists the n seeds of the
  whole batch tensor (row-major) and pairs the seed list repeated bs² times with the bs² offsets repeated n times,
  row by row, so seed t only gets the offsets k ≡ t (mod g), g = gcd(n, bs²), k = bs·di + dj, plus its own cell
  (i + (bs − 1) // 2, j + (bs − 1) // 2). When g = 1 that is the full square and both masks agree; otherwise the
  blocks are incomplete: on average 0.79× (bs 3) / 0.84× (bs 5) of what the exact mask drops, measured by
  benchmarks/dropblock_mask.py (benchmarks/RESULTS.md). Counting the seeds needs one host sync per forward
  (`nonzero`), as the published code.

Both draw the same seeds from the same random stream. Extension for small inputs: the block size is clipped to the
feature map (as timm does), so 32x32 inputs work.
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.catalog import DROPBLOCK_MASKS
from models.errors import ModelConfigError

DropBlockMask = Literal["published", "exact"]


def check_dropblock_args(drop_rate: float, block_size: int, ramp_iters: int = 0, mask: str = "exact") -> None:
    """Raise ModelConfigError unless 0 <= drop_rate < 1, block_size >= 1, ramp_iters >= 0 and mask is known."""
    if not 0.0 <= drop_rate < 1.0:
        raise ModelConfigError(f"drop_rate must be in [0, 1), got {drop_rate}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ModelConfigError(f"dropblock_size must be an integer >= 1, got {block_size!r}")
    if isinstance(ramp_iters, bool) or not isinstance(ramp_iters, int) or ramp_iters < 0:
        raise ModelConfigError(f"dropblock_ramp_iters must be an integer >= 0, got {ramp_iters!r}")
    if mask not in DROPBLOCK_MASKS:
        raise ModelConfigError(f"dropblock_mask must be one of {', '.join(DROPBLOCK_MASKS)}, got {mask!r}")


def dropblock_gamma(drop_rate: float, block_size: int, height: int, width: int) -> float:
    """Seed probability: (1 - keep) / bs² · fs² / (fs - bs + 1)², with fs² = H·W for non-square maps."""
    bs = min(block_size, height, width)
    valid = (height - bs + 1) * (width - bs + 1)
    return min(1.0, drop_rate / bs**2 * (height * width) / valid)


def exact_blocks(seeds: torch.Tensor, block_size: int) -> torch.Tensor:
    """Dropped cells float [B, C, H, W] of seeds [B, C, H - bs + 1, W - bs + 1]: a seed at (i, j) drops the full
    square [i, i + bs) x [j, j + bs) (a max-pool over the zero-padded seeds)."""
    bs = block_size
    return F.max_pool2d(F.pad(seeds, (bs - 1, bs - 1, bs - 1, bs - 1)), kernel_size=bs, stride=1)


def published_blocks(seeds: torch.Tensor, block_size: int) -> torch.Tensor:
    """Dropped cells float [B, C, H, W] of seeds [B, C, H - bs + 1, W - bs + 1] as the published
    `_compute_block_mask` makes them: seed t of the n (row-major over the whole tensor) drops its own cell
    (i + (bs - 1) // 2, j + (bs - 1) // 2) and (i + k // bs, j + k % bs) for the offsets k ≡ t (mod gcd(n, bs²))."""
    bs = block_size
    low, high = (bs - 1) // 2, bs // 2
    dropped = F.pad(seeds, (low, high, low, high))  # each seed's own cell, as the published padded seed mask
    index = seeds.nonzero()  # [n, 4] (sample, channel, i, j), row-major like the published code
    count = index.shape[0]
    if count == 0:
        return dropped
    period = math.gcd(count, bs * bs)
    # Row r of the published pairing joins seed r mod n with offset r mod bs²: seed t meets the offsets ≡ t (mod g).
    seed_order = torch.arange(count, device=seeds.device)
    offsets = (seed_order % period)[:, None] + period * torch.arange(bs * bs // period, device=seeds.device)
    rows = index[:, 2:3] + offsets // bs
    cols = index[:, 3:4] + offsets % bs
    dropped[index[:, 0:1].expand_as(rows), index[:, 1:2].expand_as(rows), rows, cols] = 1.0
    return dropped


_BLOCKS = {"exact": exact_blocks, "published": published_blocks}


def drop_block_mask(
    shape: torch.Size,
    drop_rate: float,
    block_size: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    mask: DropBlockMask = "exact",
) -> torch.Tensor:
    """Keep-mask float32 [B, C, H, W] (1 = kept) for x of `shape` [B, C, H, W], blocks grown as `mask` says."""
    batch, channels, height, width = shape
    bs = min(block_size, height, width)
    gamma = dropblock_gamma(drop_rate, bs, height, width)
    seed_shape = (batch, channels, height - bs + 1, width - bs + 1)
    sample_device = generator.device if generator is not None else device
    seeds = (torch.rand(seed_shape, generator=generator, device=sample_device) < gamma).to(device, torch.float32)
    return 1.0 - _BLOCKS[mask](seeds, bs)


def drop_block_2d(
    x: torch.Tensor,
    drop_rate: float,
    block_size: int,
    generator: torch.Generator | None = None,
    mask: DropBlockMask = "exact",
) -> torch.Tensor:
    """DropBlock on x [B, C, H, W] -> [B, C, H, W]; kept units rescaled by #elements / #kept (identity if rate 0)."""
    if drop_rate <= 0.0:
        return x
    keep = drop_block_mask(x.shape, drop_rate, block_size, x.device, generator, mask)
    scale = keep.numel() / keep.sum().clamp_min(1.0)
    return x * (keep * scale).to(x.dtype)


class DropBlock2d(nn.Module):
    """DropBlock whose rate ramps linearly from 0 to `drop_rate` over `ramp_iters` training forwards.

    The counter `num_batches_tracked` is a buffer (saved in state_dict, so a resumed run continues the ramp) and is
    incremented on every training-mode forward. A forward uses the rate for the count *before* it, as the published
    code (which reads BatchNorm's counter before the block runs): after k training forwards the rate is
    drop_rate · min(1, k / ramp_iters). Identity in eval mode and when the rate is 0. `mask` chooses how blocks
    grow from their seeds ("exact" squares or the "published" construction, see the module docstring).
    """

    num_batches_tracked: torch.Tensor

    def __init__(
        self, drop_rate: float, block_size: int, ramp_iters: int = 40_000, mask: DropBlockMask = "exact"
    ) -> None:
        super().__init__()
        check_dropblock_args(drop_rate, block_size, ramp_iters, mask)
        self.drop_rate = drop_rate
        self.block_size = block_size
        self.ramp_iters = ramp_iters
        self.mask = mask
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
        return drop_block_2d(x, rate, self.block_size, mask=self.mask)

    def extra_repr(self) -> str:
        """Summary shown by print(module)."""
        return (
            f"drop_rate={self.drop_rate}, block_size={self.block_size}, ramp_iters={self.ramp_iters}, mask={self.mask}"
        )
