"""DropBlock: both masks (exact squares, the published construction) against hand-computed ones and the authors'
code, gamma, drop ratio, rescaling, ramp counter, eval identity, and the backbones that take the mask."""

import math

import pytest
import torch
import torch.nn.functional as F

import models
from models import DropBlock2d, ModelConfigError, drop_block_2d
from models.dropblock import drop_block_mask, dropblock_gamma, exact_blocks, published_blocks


def coverage_counts(size: int, block: int) -> list[int]:
    """How many valid block centres cover each position of a 1-D map of `size`."""
    last = size - block
    return [min(p, last) - max(0, p - block + 1) + 1 for p in range(size)]


def expected_drop_fraction(drop_rate: float, block: int, size: int) -> float:
    """Exact E[fraction dropped] for a size x size map: mean over units of 1 - (1 - gamma)^(#seeds covering it)."""
    gamma = dropblock_gamma(drop_rate, block, size, size)
    counts = coverage_counts(size, block)
    return sum(1 - (1 - gamma) ** (a * b) for a in counts for b in counts) / size**2


def metaoptnet_block_mask(seeds: torch.Tensor, block: int) -> torch.Tensor:
    """MetaOptNet's construction: pad the seeds, set [i, i + bs) x [j, j + bs) for each seed, invert."""
    left, right = (block - 1) // 2, block // 2
    padded = F.pad(seeds, (left, right, left, right))
    for b, c, i, j in seeds.nonzero().tolist():
        padded[b, c, i : i + block, j : j + block] = 1.0
    return 1.0 - padded


def authors_compute_block_mask(mask: torch.Tensor, block_size: int) -> torch.Tensor:
    """bl0/negative-margin.few-shot lib/dropblock.py `DropBlock._compute_block_mask` at 401ee5c, `.cuda()` removed."""
    left_padding = int((block_size - 1) / 2)
    right_padding = int(block_size / 2)
    non_zero_idxs = mask.nonzero()
    nr_blocks = non_zero_idxs.shape[0]
    offsets = torch.stack(
        [
            torch.arange(block_size).view(-1, 1).expand(block_size, block_size).reshape(-1),
            torch.arange(block_size).repeat(block_size),
        ]
    ).t()
    offsets = torch.cat((torch.zeros(block_size**2, 2).long(), offsets.long()), 1)
    if nr_blocks > 0:
        non_zero_idxs = non_zero_idxs.repeat(block_size**2, 1)
        offsets = offsets.repeat(nr_blocks, 1).view(-1, 4)
        offsets = offsets.long()
        block_idxs = non_zero_idxs + offsets
        padded_mask = F.pad(mask, (left_padding, right_padding, left_padding, right_padding))
        padded_mask[block_idxs[:, 0], block_idxs[:, 1], block_idxs[:, 2], block_idxs[:, 3]] = 1.0
    else:
        padded_mask = F.pad(mask, (left_padding, right_padding, left_padding, right_padding))
    return 1 - padded_mask


def seeds_at(shape: tuple[int, int, int, int], *cells: tuple[int, int, int, int]) -> torch.Tensor:
    """A float seed tensor of `shape` with ones at `cells`."""
    seeds = torch.zeros(shape)
    for cell in cells:
        seeds[cell] = 1.0
    return seeds


def grid(*rows: str) -> torch.Tensor:
    """A [1, 1, H, W] float mask from rows of '#' (dropped, 1) and '.' (kept, 0)."""
    return torch.tensor([[[[float(c == "#") for c in row] for row in rows]]])


# Hand-computed masks. bs = 2 on a 4x4 map (3x3 seed grid), seeds at (0, 0) and (1, 2): n = 2, g = gcd(2, 4) = 2,
# so seed 0 gets the offsets k = 0, 2 ((0,0), (1,0)) and seed 1 the offsets k = 1, 3 ((0,1), (1,1)); with
# (bs - 1) // 2 = 0 each seed's own cell is its top-left corner.
TWO_SEEDS_BS2 = seeds_at((1, 1, 3, 3), (0, 0, 0, 0), (0, 0, 1, 2))
TWO_SEEDS_BS2_EXACT = grid("##..", "####", "..##", "....")
TWO_SEEDS_BS2_PUBLISHED = grid("#...", "#.##", "...#", "....")
# bs = 3 on a 5x5 map, three seeds in three channels at (0, 0): n = 3, g = gcd(3, 9) = 3. Seed t gets k ≡ t (mod 3):
# the left, middle and right column of its square, and its own cell, the centre (1, 1).
THREE_SEEDS_BS3 = seeds_at((1, 3, 3, 3), (0, 0, 0, 0), (0, 1, 0, 0), (0, 2, 0, 0))
THREE_SEEDS_BS3_PUBLISHED = torch.cat(
    [
        grid("#....", "##...", "#....", ".....", "....."),
        grid(".#...", ".#...", ".#...", ".....", "....."),
        grid("..#..", ".##..", "..#..", ".....", "....."),
    ],
    dim=1,
)
# bs = 2, three seeds: g = gcd(3, 4) = 1, every seed gets all four offsets: the published mask is the exact one.
THREE_SEEDS_BS2 = seeds_at((1, 1, 3, 3), (0, 0, 0, 0), (0, 0, 0, 2), (0, 0, 2, 1))
THREE_SEEDS_BS2_BOTH = grid("####", "####", ".##.", ".##.")


def test_exact_mask_is_the_full_squares():
    torch.testing.assert_close(exact_blocks(TWO_SEEDS_BS2, 2), TWO_SEEDS_BS2_EXACT, rtol=0, atol=0)
    square = grid("###..", "###..", "###..", ".....", ".....")
    torch.testing.assert_close(exact_blocks(THREE_SEEDS_BS3, 3), torch.cat([square] * 3, dim=1), rtol=0, atol=0)
    torch.testing.assert_close(exact_blocks(THREE_SEEDS_BS2, 2), THREE_SEEDS_BS2_BOTH, rtol=0, atol=0)


def test_published_mask_pairs_seeds_and_offsets_as_the_authors_code():
    torch.testing.assert_close(published_blocks(TWO_SEEDS_BS2, 2), TWO_SEEDS_BS2_PUBLISHED, rtol=0, atol=0)
    torch.testing.assert_close(published_blocks(THREE_SEEDS_BS3, 3), THREE_SEEDS_BS3_PUBLISHED, rtol=0, atol=0)
    torch.testing.assert_close(published_blocks(THREE_SEEDS_BS2, 2), THREE_SEEDS_BS2_BOTH, rtol=0, atol=0)
    for seeds, block in ((TWO_SEEDS_BS2, 2), (THREE_SEEDS_BS3, 3), (THREE_SEEDS_BS2, 2)):
        torch.testing.assert_close(1.0 - published_blocks(seeds, block), authors_compute_block_mask(seeds, block))


@pytest.mark.parametrize("block", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", range(6))
def test_published_mask_equals_the_authors_code_on_random_seeds(block, seed):
    generator = torch.Generator().manual_seed(seed)
    size = 11
    seeds = (torch.rand(3, 4, size - block + 1, size - block + 1, generator=generator) < 0.04 + 0.02 * seed).float()
    expected = authors_compute_block_mask(seeds, block)
    torch.testing.assert_close(1.0 - published_blocks(seeds, block), expected, rtol=0, atol=0)
    if math.gcd(int(seeds.sum()), block * block) == 1:  # then the published blocks are the full squares
        torch.testing.assert_close(published_blocks(seeds, block), exact_blocks(seeds, block), rtol=0, atol=0)


def test_no_seed_drops_nothing_in_either_mask():
    seeds = torch.zeros(2, 3, 4, 4)
    for blocks in (exact_blocks, published_blocks):
        assert blocks(seeds, 3).shape == (2, 3, 6, 6) and blocks(seeds, 3).sum() == 0


def test_both_masks_draw_the_same_seeds_and_differ_exactly_when_the_gcd_is_not_one():
    shape, device = torch.Size((16, 32, 10, 10)), torch.device("cpu")  # ResNet-12 block 3 at 84 px, bs 5
    periods = set()
    for seed in range(20):
        exact = drop_block_mask(shape, 0.1, 5, device, torch.Generator().manual_seed(seed), "exact")
        published = drop_block_mask(shape, 0.1, 5, device, torch.Generator().manual_seed(seed), "published")
        seeds = torch.rand(16, 32, 6, 6, generator=torch.Generator().manual_seed(seed)) < dropblock_gamma(
            0.1, 5, 10, 10
        )
        period = math.gcd(int(seeds.sum()), 25)
        periods.add(period)
        assert bool(((published == 0) <= (exact == 0)).all())  # every cell the published mask drops, exact drops
        assert bool((published == exact).all()) == (period == 1)
    assert periods == {1, 5}  # both cases occur among these 20 draws


@pytest.mark.parametrize("backbone", ["conv4", "resnet12", "resnet18"])
def test_backbones_pass_the_mask_to_every_dropblock(backbone):
    for mask in ("published", "exact"):
        net = models.build_backbone(backbone, drop_rate=0.1, dropblock_size=3, dropblock_mask=mask)
        blocks = [m for m in net.modules() if isinstance(m, DropBlock2d)]
        assert blocks and {block.mask for block in blocks} == {mask}
    with pytest.raises(ModelConfigError, match="dropblock_mask must be one of published, exact"):
        models.build_backbone(backbone, drop_rate=0.1, dropblock_mask="approximate")


def test_published_gamma():
    # (1 - keep) / bs^2 * fs^2 / (fs - bs + 1)^2 with keep = 0.9, bs = 5, fs = 10 (ResNet-12 block 3 at 84 px)
    assert dropblock_gamma(0.1, 5, 10, 10) == pytest.approx(0.1 / 25 * 100 / 36)
    assert dropblock_gamma(0.1, 5, 5, 5) == pytest.approx(0.1)  # block 4: one centre per channel


@pytest.mark.parametrize("block", [3, 4, 5])
def test_mask_equals_metaoptnet_construction(block):
    shape = torch.Size((2, 3, 12, 12))
    gamma = dropblock_gamma(0.3, block, 12, 12)
    seeds = torch.rand(2, 3, 12 - block + 1, 12 - block + 1, generator=torch.Generator().manual_seed(5)) < gamma
    mask = drop_block_mask(shape, 0.3, block, torch.device("cpu"), torch.Generator().manual_seed(5))
    assert seeds.any()
    torch.testing.assert_close(mask, metaoptnet_block_mask(seeds.float(), block), rtol=0, atol=0)


def test_drop_ratio_is_near_the_target():
    x = torch.ones(64, 64, 32, 32)
    y = drop_block_2d(x, 0.1, 5, generator=torch.Generator().manual_seed(0))
    dropped = (y == 0).float().mean().item()
    # The published gamma aims at 0.1 ignoring block overlaps; the exact expectation is 0.0947.
    assert dropped == pytest.approx(expected_drop_fraction(0.1, 5, 32), abs=0.003)
    assert dropped == pytest.approx(0.1, abs=0.01)


def test_rescaling_keeps_the_sum_and_mean():
    ones = torch.ones(8, 16, 20, 20)
    y = drop_block_2d(ones, 0.2, 3, generator=torch.Generator().manual_seed(1))
    kept = (y > 0).sum().item()
    assert 0 < kept < ones.numel()
    torch.testing.assert_close(y[y > 0], torch.full((kept,), ones.numel() / kept))
    assert y.sum().item() == pytest.approx(ones.numel(), rel=1e-5)
    x = torch.rand(8, 16, 20, 20, generator=torch.Generator().manual_seed(2))
    assert drop_block_2d(x, 0.2, 3, generator=torch.Generator().manual_seed(3)).mean().item() == pytest.approx(
        x.mean().item(), rel=0.03
    )


def test_seeded_generator_is_reproducible_and_rate_zero_is_identity():
    x = torch.randn(2, 4, 16, 16)
    a = drop_block_2d(x, 0.3, 5, generator=torch.Generator().manual_seed(7))
    b = drop_block_2d(x, 0.3, 5, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert drop_block_2d(x, 0.0, 5) is x


def test_block_is_clipped_to_small_maps_and_dtype_is_kept():
    x = torch.ones(1000, 1, 2, 2, dtype=torch.bfloat16)
    y = drop_block_2d(x, 0.3, 5, generator=torch.Generator().manual_seed(0))
    assert y.dtype == torch.bfloat16
    zeros_per_map = (y.float() == 0).sum(dim=(1, 2, 3))
    assert set(zeros_per_map.tolist()) == {0, 4}  # the block is clipped to 2x2: a map is dropped whole or kept
    assert (zeros_per_map == 4).float().mean().item() == pytest.approx(0.3, abs=0.05)  # gamma = rate here


def test_module_is_identity_in_eval_and_does_not_count():
    module = DropBlock2d(0.5, 3, ramp_iters=0).eval()
    x = torch.randn(2, 4, 8, 8)
    assert module(x) is x
    assert int(module.num_batches_tracked) == 0


def test_ramp_is_linear_in_training_forwards():
    module = DropBlock2d(0.2, 3, ramp_iters=10).train()
    x = torch.ones(2, 4, 8, 8)
    torch.testing.assert_close(module(x), x)  # the first forward uses k = 0, i.e. rate 0
    for k in range(1, 15):
        assert int(module.num_batches_tracked) == k
        assert module.current_rate() == pytest.approx(0.2 * min(k, 10) / 10)
        module(x)


def test_ramped_rate_is_the_one_applied():
    module = DropBlock2d(0.2, 5, ramp_iters=4).train()
    module.num_batches_tracked.fill_(2)  # halfway: effective rate 0.1
    with torch.random.fork_rng():
        torch.manual_seed(0)
        y = module(torch.ones(64, 64, 32, 32))
    assert (y == 0).float().mean().item() == pytest.approx(expected_drop_fraction(0.1, 5, 32), abs=0.003)


def test_counter_is_in_state_dict_and_restored():
    module = DropBlock2d(0.1, 5).train()
    for _ in range(3):
        module(torch.randn(1, 2, 8, 8))
    state = module.state_dict()
    assert state["num_batches_tracked"].dtype == torch.long and state["num_batches_tracked"].item() == 3
    resumed = DropBlock2d(0.1, 5)
    resumed.load_state_dict(state)
    assert int(resumed.num_batches_tracked) == 3
    assert resumed.current_rate() == pytest.approx(0.1 * 3 / 40_000)


@pytest.mark.parametrize(("rate", "block", "ramp"), [(-0.1, 5, 10), (1.0, 5, 10), (0.1, 0, 10), (0.1, 5, -1)])
def test_bad_arguments_are_config_errors(rate, block, ramp):
    with pytest.raises(ModelConfigError):
        DropBlock2d(rate, block, ramp)
