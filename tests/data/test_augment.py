"""Batched augmentation: shapes, ranges, seeding, crop/flip/jitter correctness, eval transform vs torchvision."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

from data import TrainAugment, eval_transform
from data.augment import IMAGENET_MEAN, IMAGENET_STD, crop_resize, jitter, normalize, sample_crop_boxes

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _images(batch: int = 16, size: int = 97, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (batch, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def _unnormalize(x: torch.Tensor) -> torch.Tensor:
    return x * STD + MEAN


def test_shapes_dtype_range() -> None:
    out = TrainAugment(84)(_images(), torch.Generator().manual_seed(1))
    assert out.shape == (16, 3, 84, 84) and out.dtype == torch.float32
    pixels = _unnormalize(out)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert pixels.std() > 0.05  # not collapsed to a constant


def test_seeded_generator_reproduces_and_seeds_differ() -> None:
    augment, images = TrainAugment(84), _images()
    a = augment(images, torch.Generator().manual_seed(7))
    b = augment(images, torch.Generator().manual_seed(7))
    c = augment(images, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    generator = torch.Generator().manual_seed(7)
    augment(images, generator)
    assert not torch.equal(augment(images, generator), a)  # the generator advances between batches


def test_numpy_input_matches_tensor_input() -> None:
    images = _images(4)
    a = TrainAugment(84)(images.numpy(), torch.Generator().manual_seed(3))
    assert torch.equal(a, TrainAugment(84)(images, torch.Generator().manual_seed(3)))


def test_constant_image_stays_constant() -> None:
    images = torch.empty(8, 97, 97, 3, dtype=torch.uint8)
    images[..., 0], images[..., 1], images[..., 2] = 200, 100, 50
    out = TrainAugment(84)(images, torch.Generator().manual_seed(0))
    spread = out.amax(dim=(2, 3)) - out.amin(dim=(2, 3))
    assert spread.max() < 1e-4


def test_crop_of_box_and_flip_are_exact() -> None:
    x = torch.arange(2 * 3 * 9 * 9, dtype=torch.float32).view(2, 3, 9, 9)
    no, yes = torch.tensor([False, False]), torch.tensor([True, True])
    full = torch.tensor([[0, 0, 9, 9]] * 2, dtype=torch.float32)
    assert torch.allclose(crop_resize(x, full, no, 9), x, atol=1e-4)
    assert torch.allclose(crop_resize(x, full, yes, 9), x.flip(-1), atol=1e-4)
    box = torch.tensor([[2, 3, 4, 5]] * 2, dtype=torch.float32)  # top 2, left 3, 4 high, 5 wide
    assert torch.allclose(crop_resize(x, box, no, 5), _resize_rows(x[:, :, 2:6, 3:8], 5), atol=1e-4)
    assert torch.allclose(crop_resize(x, box, yes, 5), _resize_rows(x[:, :, 2:6, 3:8], 5).flip(-1), atol=1e-4)


def _resize_rows(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (align_corners=False, no antialias) resize to size×size: the reference for crop_resize."""
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def test_crop_boxes_valid_and_distributed_like_torchvision() -> None:
    n, height, width = 20000, 97, 97
    g = torch.Generator().manual_seed(0)
    boxes = sample_crop_boxes(torch.rand(n, 10, 2, generator=g), torch.rand(n, 2, generator=g), height, width)
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
    assert torch.equal(boxes, boxes.round())
    area = h * w / (height * width)
    assert area.min() >= 0.08 - 0.02 and area.max() <= 1
    torch.manual_seed(0)  # torchvision's get_params uses global RNG; only this reference does
    ref = torch.tensor(
        [RandomResizedCrop.get_params(torch.empty(3, height, width), [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)],
        dtype=torch.float32,
    )
    ref_area = ref[:, 2] * ref[:, 3] / (height * width)
    assert abs(area.mean() - ref_area.mean()) < 0.01
    assert abs((w / h).log().std() - (ref[:, 3] / ref[:, 2]).log().std()) < 0.01
    assert abs((top / (height - h + 1)).mean() - (ref[:, 0] / (height - ref[:, 2] + 1)).mean()) < 0.01


def test_crop_fallback_is_centre_full_image() -> None:
    tries = torch.zeros(3, 10, 2)
    tries[..., 0], tries[..., 1] = 1.0, 1.0  # full area at ratio 4/3: too wide for a square every time
    boxes = sample_crop_boxes(tries, torch.rand(3, 2), 20, 20)
    assert boxes.tolist() == [[0, 0, 20, 20]] * 3
    tall = sample_crop_boxes(tries, torch.rand(3, 2), 40, 20)  # ratio 1/2 < 3/4: w = 20, h = round(20 / 0.75)
    assert tall.tolist() == [[(40 - 27) // 2, 0, 27, 20]] * 3


def test_jitter_factors() -> None:
    x = torch.rand(4, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(jitter(x, torch.ones(4, 3)), x, atol=1e-6)
    half_brightness = jitter(x, torch.tensor([[0.5, 1.0, 1.0]] * 4))
    assert torch.allclose(half_brightness, x * 0.5, atol=1e-6)
    grey = jitter(x, torch.tensor([[1.0, 1.0, 0.0]] * 4))  # saturation 0: all channels equal the grey level
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(grey, expected.unsqueeze(1).expand_as(x), atol=1e-6)
    flat = jitter(x, torch.tensor([[1.0, 0.0, 1.0]] * 4))  # contrast 0: every pixel the mean grey level
    assert torch.allclose(flat, expected.mean(dim=(1, 2)).view(4, 1, 1, 1).expand_as(x), atol=1e-6)
    assert jitter(x, torch.full((4, 3), 1.4)).max() <= 1


@pytest.mark.parametrize("stored", [97, 120, 60])
def test_eval_transform_matches_torchvision(stored: int) -> None:
    images = _images(3, stored)
    out = eval_transform(images, 84)
    x = images.permute(0, 3, 1, 2).float() / 255
    ref = TF.center_crop(TF.resize(x, [97, 97], antialias=True), [84, 84])
    assert out.shape == (3, 3, 84, 84) and out.dtype == torch.float32
    assert torch.allclose(out, normalize(ref), atol=1e-4)
    if stored == 97:  # no resize: exactly the centre crop
        assert torch.equal(_unnormalize(out).mul(255).round(), x[..., 6:90, 6:90].mul(255).round())


def test_eval_transform_odd_sizes() -> None:
    assert eval_transform(_images(2, 92), 80).shape == (2, 3, 80, 80)
    assert eval_transform(_images(1, 258), 224).shape == (1, 3, 224, 224)
    assert math.isclose(float(normalize(torch.full((1, 3, 1, 1), 0.485))[0, 0]), 0.0, abs_tol=1e-6)


def test_rejects_bad_images() -> None:
    with pytest.raises(ValueError, match="uint8 images"):
        TrainAugment(84)(torch.zeros(2, 3, 97, 97), torch.Generator())
    with pytest.raises(ValueError, match="uint8 images"):
        eval_transform(np.zeros((2, 97, 97), dtype=np.uint8), 84)


def test_crop_scale_and_hflip_options() -> None:
    """hflip=False never mirrors; crop_scale bounds the crop's area fraction."""
    from data.augment import TrainAugment

    images = torch.zeros(64, 20, 20, 3, dtype=torch.uint8)
    images[:, :, :10] = 255  # bright left half
    generator = torch.Generator().manual_seed(0)
    never = TrainAugment(16, crop_scale=(0.9, 1.0), hflip=False)(images, generator)
    assert bool((never[..., :4].mean(dim=(1, 2, 3)) > never[..., -4:].mean(dim=(1, 2, 3))).all())
    sometimes = TrainAugment(16, crop_scale=(0.9, 1.0))(images, generator)
    mirrored = sometimes[..., :4].mean(dim=(1, 2, 3)) < sometimes[..., -4:].mean(dim=(1, 2, 3))
    assert 10 < int(mirrored.sum()) < 54
    with pytest.raises(ValueError, match="crop_scale"):
        TrainAugment(16, crop_scale=(0.5, 1.5))
