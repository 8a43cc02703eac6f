"""Benchmark: how much the published DropBlock mask drops compared with the exact one, at the published layer shapes.

Both masks (models.dropblock.drop_block_mask, `mask="published" | "exact"`) draw the same seeds from one seeded
generator per draw, at the full rate (after the ramp). Whether the published blocks are whole depends only on
g = gcd(#seeds, bs²): each draw's ratio (published / exact dropped cells) is grouped by g, and the expected ratio
weighs each group by P(g) for a seed count uniform modulo bs² (bs 3: P(1) = 6/9, P(3) = 2/9, P(9) = 1/9; bs 5: 20/25,
4/25, 1/25). The channel count only sets the seed count's size, so `--channels` keeps the run short; the batch and
map sizes, block sizes and rates are the published ones. Not a test: docs/protocol.md D9 and benchmarks/RESULTS.md
quote it.

    python benchmarks/dropblock_mask.py [--draws 300] [--batch 256] [--channels 16] [--device auto|cpu|cuda]
"""

import argparse
import math
import statistics
from collections import defaultdict

import torch

from models.dropblock import drop_block_mask, dropblock_gamma

# (what, map size, block size, rate): the DropBlock layers of the published presets (docs/protocol.md).
LAYERS = (
    ("ResNet-12 block 3 (84 px)", 10, 5, 0.1),
    ("ResNet-12 block 4 (84 px)", 5, 5, 0.1),
    ("ResNet-18 stage 3, mini (224 px)", 14, 3, 0.2),
    ("ResNet-18 stage 4, mini (224 px)", 7, 3, 0.2),
    ("ResNet-18 stage 3, CUB (224 px)", 14, 5, 0.1),
    ("ResNet-18 stage 4, CUB (224 px)", 7, 5, 0.1),
)


def gcd_probabilities(block: int) -> dict[int, float]:
    """P(gcd(n, bs²) = g) for n uniform modulo bs²."""
    cells = block * block
    counts: dict[int, int] = defaultdict(int)
    for residue in range(cells):
        counts[math.gcd(residue, cells)] += 1
    return {g: count / cells for g, count in counts.items()}


def measure(size: int, block: int, rate: float, draws: int, batch: int, channels: int, device: torch.device) -> dict:
    """Per-g mean ratio of published to exact dropped cells over `draws` seeded batches, and the expected ratio."""
    shape = torch.Size((batch, channels, size, size))
    gamma = dropblock_gamma(rate, block, size, size)
    ratios: dict[int, list[float]] = defaultdict(list)
    exact_fraction = []
    for draw in range(draws):
        keep = {
            mask: drop_block_mask(shape, rate, block, device, torch.Generator(device=device).manual_seed(draw), mask)
            for mask in ("exact", "published")
        }
        seeds = torch.rand(
            batch,
            channels,
            size - block + 1,
            size - block + 1,
            generator=torch.Generator(device=device).manual_seed(draw),
            device=device,
        )
        period = math.gcd(int((seeds < gamma).sum()), block * block)
        dropped_exact = float((keep["exact"] == 0).sum())
        ratios[period].append(float((keep["published"] == 0).sum()) / dropped_exact)
        exact_fraction.append(dropped_exact / keep["exact"].numel())
    by_period = {g: statistics.fmean(values) for g, values in sorted(ratios.items())}
    probabilities = gcd_probabilities(block)
    expected = sum(p * by_period[g] for g, p in probabilities.items()) if set(probabilities) <= set(by_period) else None
    return {"exact": statistics.fmean(exact_fraction), "by_period": by_period, "counts": ratios, "expected": expected}


def main() -> None:
    """Print one row per published DropBlock layer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    print(f"device {device}, batch {args.batch}, {args.channels} channels, {args.draws} draws per layer, full rate")
    print(f"{'layer':<34} {'bs':>2} {'rate':>4} {'exact drops':>11}  published/exact by g (draws)  expected")
    for what, size, block, rate in LAYERS:
        row = measure(size, block, rate, args.draws, args.batch, args.channels, device)
        groups = "  ".join(f"g={g}: {ratio:.3f} ({len(row['counts'][g])})" for g, ratio in row["by_period"].items())
        expected = f"{row['expected']:.3f}" if row["expected"] is not None else "(a g not drawn)"
        print(f"{what:<34} {block:>2} {rate:>4} {row['exact']:>11.4f}  {groups}  {expected}")


if __name__ == "__main__":
    main()
