"""Every registered backbone: forward/backward on small inputs, published feature dims and parameter counts."""

import pytest
import torch

import models
from models import DropBlock2d, ModelConfigError, build_backbone, feature_dim, list_backbones

# Published input size and feature dim per backbone (docs/protocol.md, 1.1).
DEFAULT_SIZE = {"conv4": 84, "resnet12": 84, "resnet18": 224, "wrn28_10": 80}
PUBLISHED_DIM = {"conv4": 1600, "resnet12": 640, "resnet18": 512, "wrn28_10": 640}
# Feature dim at 32x32: conv4 flattens a 64 x 2 x 2 map; the others pool globally.
DIM_AT_32 = {"conv4": 256, "resnet12": 640, "resnet18": 512, "wrn28_10": 640}

# Exact trainable-parameter counts (weights + BN affine; no classifier), and where they come from:
# - conv4: CloserLook Conv-4 (convs keep their bias): (3*64*9 + 64 + 128) + 3 * (64*64*9 + 64 + 128) = 113,088.
# - resnet12: MetaOptNet ResNet-12 (no conv bias, 1x1 shortcut + BN per block), the "12.4M" usually quoted:
#   76,160 + 564,480 + 2,357,760 + 9,425,920 = 12,424,320.
# - resnet18: torchvision resnet18 (11,689,512) minus its 512x1000 fc (513,000) = 11,176,512; the CloserLook
#   layout has the same convs, BNs and shortcuts.
# - wrn28_10: WRN-28-10 is quoted as 36.5M with a CIFAR-10 classifier: 36,479,194 = 36,472,784 + 640*10 + 10.
PARAM_COUNTS = {"conv4": 113_088, "resnet12": 12_424_320, "resnet18": 11_176_512, "wrn28_10": 36_472_784}


def n_params(module: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_registry_lists_the_published_backbones():
    assert list_backbones() == ["conv4", "resnet12", "resnet18", "wrn28_10"]


@pytest.mark.parametrize("name", list_backbones())
def test_forward_backward_on_small_input(name):
    torch.manual_seed(0)
    backbone = build_backbone(name, drop_rate=0.1, dropblock_size=3, dropblock_ramp_iters=0).train()
    x = torch.randn(2, 3, 32, 32)
    features = backbone(x)
    assert features.shape == (2, DIM_AT_32[name])
    assert torch.isfinite(features).all()
    features.square().mean().backward()
    grads = {n: p.grad for n, p in backbone.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert sum(g.abs().sum().item() for g in grads.values()) > 0


@pytest.mark.parametrize("name", list_backbones())
def test_out_dim_and_parameter_count_match_published(name):
    backbone = build_backbone(name).train()
    assert backbone.out_dim == PUBLISHED_DIM[name]
    assert n_params(backbone) == PARAM_COUNTS[name]
    assert feature_dim(backbone, DEFAULT_SIZE[name]) == PUBLISHED_DIM[name]
    assert backbone.training  # feature_dim restores the mode


@pytest.mark.parametrize("name", list_backbones())
def test_eval_mode_is_deterministic_despite_dropout(name):
    backbone = build_backbone(name, drop_rate=0.5, dropblock_ramp_iters=0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), backbone(x), rtol=0, atol=0)


@pytest.mark.parametrize(("name", "n_dropblocks"), [("resnet12", 2), ("resnet18", 4)])
def test_dropblock_sits_in_the_last_two_stages_and_counts_training_forwards(name, n_dropblocks):
    backbone = build_backbone(name, drop_rate=0.1, dropblock_size=5, dropblock_ramp_iters=100)
    dropblocks = {n: m for n, m in backbone.named_modules() if isinstance(m, DropBlock2d)}
    assert len(dropblocks) == n_dropblocks
    # Names are "blocks.<i>.drop" (resnet12) and "stages.<i>.<j>.drop" (resnet18); i is zero-based.
    assert {int(n.split(".")[1]) for n in dropblocks} == {2, 3}
    assert all(m.drop_rate == 0.1 and m.block_size == 5 and m.ramp_iters == 100 for m in dropblocks.values())
    x = torch.randn(2, 3, 32, 32)
    backbone.train()
    backbone(x)
    backbone(x)
    backbone.eval()
    backbone(x)
    assert [int(m.num_batches_tracked) for m in dropblocks.values()] == [2] * n_dropblocks
    state = backbone.state_dict()
    assert all(state[f"{n}.num_batches_tracked"].item() == 2 for n in dropblocks)
    resumed = build_backbone(name, drop_rate=0.1, dropblock_size=5, dropblock_ramp_iters=100)
    resumed.load_state_dict(state)
    rates = [m.current_rate() for m in resumed.modules() if isinstance(m, DropBlock2d)]
    assert rates == pytest.approx([0.1 * 2 / 100] * n_dropblocks)


def test_state_dict_keys_do_not_depend_on_drop_rate():
    for name in ("conv4", "resnet12", "resnet18"):
        assert build_backbone(name).state_dict().keys() == build_backbone(name, drop_rate=0.2).state_dict().keys()


def test_conv4_is_the_published_network_at_rate_0_and_drops_blocks_3_4_otherwise():
    torch.manual_seed(0)
    plain = build_backbone("conv4").train()
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(plain(x), plain(x), rtol=0, atol=0)  # rate 0: no randomness in training mode
    dropping = build_backbone("conv4", drop_rate=0.5, dropblock_size=1, dropblock_ramp_iters=1).train()
    dropping.load_state_dict(plain.state_dict())
    dropping(x)  # first forward uses the rate before the ramp starts
    assert not torch.equal(dropping(x), dropping(x))
    counters = [
        m.num_batches_tracked.item()
        for m in dropping.modules()
        if hasattr(m, "num_batches_tracked") and m.__class__.__name__ == "DropBlock2d"
    ]
    assert counters == [5, 5]  # 2 forwards of `plain` (loaded with its state) + 3 here


def test_unknown_backbone_names_the_known_ones():
    with pytest.raises(ModelConfigError, match="unknown backbone 'resnet50'.*conv4, resnet12, resnet18, wrn28_10"):
        build_backbone("resnet50")


def test_unknown_option_and_bad_values_are_config_errors():
    with pytest.raises(ModelConfigError, match="'conv4' has no option.*'width'"):
        build_backbone("conv4", width=32)
    with pytest.raises(ModelConfigError, match="drop_rate"):
        build_backbone("resnet12", drop_rate=1.5)
    with pytest.raises(ModelConfigError, match="dropblock_size"):
        build_backbone("resnet18", dropblock_size=0)


def test_feature_dim_on_too_small_input_is_a_config_error():
    with pytest.raises(ModelConfigError, match="image size 8 is too small"):
        feature_dim(build_backbone("conv4"), 8)


def test_public_api_matches_contract():
    assert models.LOSS_NAMES == ("softmax", "cosine", "neg-softmax", "neg-cosine") == tuple(models.LOSSES)
    assert tuple(models.list_backbones()) == models.BACKBONES  # the torch-free catalog names what is registered
    assert issubclass(ModelConfigError, ValueError)
