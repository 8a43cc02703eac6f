"""Batched augmentation: shapes, seeding, and each step against the published torchvision-on-PIL pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import functional as TF

from data import TrainAugment, eval_transform
from data.augment import (
    _DRAWS,
    CROP_TRIES,
    JITTER_ORDERS,
    NORMALIZE_MEAN,
    NORMALIZE_STD,
    jitter,
    normalize,
    resize_boxes,
    sample_crop_boxes,
)

MEAN = torch.tensor(NORMALIZE_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(NORMALIZE_STD).view(1, 3, 1, 1)
PIL_JITTER = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)  # torchvision ColorJitter's PIL ops


def _images(batch: int = 16, size: int = 97, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (batch, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def _photos(batch: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields with texture: uint8 [batch, size, size, 3] (resampling differences show, noise hides)."""
    rng = np.random.default_rng(seed)
    photos = []
    for _ in range(batch):
        coarse = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
        texture = rng.integers(-20, 21, (size, size, 3))
        photos.append(np.clip(np.asarray(coarse, dtype=np.int64) + texture, 0, 255).astype(np.uint8))
    return np.stack(photos)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """Normalised output [B, 3, H, W] -> uint8 levels (float) it came from."""
    return ((x * STD + MEAN) * 255).round()


def test_published_normalisation_constants() -> None:
    """bl0/negative-margin.few-shot lib/dataset.py: Normalize(mean=[0.507, 0.487, 0.441], std=[0.267, 0.257, 0.276])."""
    assert NORMALIZE_MEAN == (0.507, 0.487, 0.441) and NORMALIZE_STD == (0.267, 0.257, 0.276)
    grey = torch.full((1, 3, 1, 1), 0.5)
    expected = torch.tensor([(0.5 - 0.507) / 0.267, (0.5 - 0.487) / 0.257, (0.5 - 0.441) / 0.276])
    torch.testing.assert_close(normalize(grey).flatten(), expected)


def test_shapes_dtype_range() -> None:
    out = TrainAugment(84)(_images(), torch.Generator().manual_seed(1))
    assert out.shape == (16, 3, 84, 84) and out.dtype == torch.float32
    levels = _levels(out)
    assert levels.min() >= 0 and levels.max() <= 255
    assert torch.allclose((out * STD + MEAN) * 255, levels, atol=1e-3)  # whole uint8 levels, as PIL's
    assert levels.std() > 10  # not collapsed to a constant


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


def test_autocast_does_not_reach_the_augmentation() -> None:
    """The resampling and the jitter stay float32 (exact levels) under a caller's bf16 autocast."""
    images, augment = _images(4), TrainAugment(24)
    plain = augment(images, torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = augment(images, torch.Generator().manual_seed(0))
        evaluated = eval_transform(images, 24)
    assert autocast.dtype == torch.float32 and torch.equal(autocast, plain)
    assert torch.equal(evaluated, eval_transform(images, 24))


@pytest.mark.parametrize("size", [84, 24, 5])
def test_crop_resize_is_pil_bilinear_of_the_crop(size: int) -> None:
    """Each box equals PIL's crop(box).resize(size, BILINEAR) (torchvision's RandomResizedCrop on PIL) within one
    level on a few pixels (PIL's fixed-point coefficients): up- and downscaling (antialiased), mirrored or not."""
    photos = _photos(4, 120)
    x = torch.from_numpy(photos).permute(0, 3, 1, 2).float()
    boxes = torch.tensor([[3, 5, 100, 110], [0, 0, 120, 120], [10, 20, 7, 9], [50, 2, 33, 60]], dtype=torch.float32)
    flip = torch.tensor([False, True, False, True])
    out = resize_boxes(x, boxes, flip, size)
    for i, (top, left, h, w) in enumerate(boxes.int().tolist()):
        reference = Image.fromarray(photos[i]).crop((left, top, left + w, top + h)).resize((size, size), Image.BILINEAR)
        if flip[i]:
            reference = reference.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        difference = (out[i].permute(1, 2, 0) - torch.from_numpy(np.array(reference)).float()).abs()
        assert difference.max() <= 1 and (difference > 0).float().mean() < 0.05, (i, difference.max())


def test_crop_of_the_whole_image_at_its_size_is_exact() -> None:
    x = torch.arange(2 * 3 * 9 * 9, dtype=torch.float32).remainder(256).view(2, 3, 9, 9)
    full = torch.tensor([[0, 0, 9, 9]] * 2, dtype=torch.float32)
    assert torch.equal(resize_boxes(x, full, torch.tensor([False, False]), 9), x)
    assert torch.equal(resize_boxes(x, full, torch.tensor([True, True]), 9), x.flip(-1))


def test_downscaling_is_antialiased() -> None:
    """A one-pixel checkerboard shrunk 4x is flat grey (PIL's widened filter), not an aliasing pattern."""
    board = ((torch.arange(96)[:, None] + torch.arange(96)[None, :]) % 2 * 255).float().expand(1, 3, 96, 96)
    out = resize_boxes(board, torch.tensor([[0.0, 0.0, 96.0, 96.0]]), torch.tensor([False]), 24)
    assert (out - 127.5).abs().max() <= 1


@pytest.mark.parametrize("order", JITTER_ORDERS)
def test_jitter_is_torchvision_colorjitter_on_pil_exactly(order: tuple[int, int, int]) -> None:
    """Brightness/contrast/saturation in the given order equal torchvision's PIL functions, level for level."""
    photos = _photos(3, 20, seed=1)
    factors = torch.tensor([[0.7, 1.3, 0.65], [1.2, 0.61, 1.39], [1.0, 1.1, 0.9]])
    out = jitter(torch.from_numpy(photos).permute(0, 3, 1, 2).float(), factors, torch.tensor([order] * 3))
    for i in range(3):
        image = Image.fromarray(photos[i])
        for operation in order:
            image = PIL_JITTER[operation](image, float(factors[i, operation]))
        assert torch.equal(out[i].permute(1, 2, 0), torch.from_numpy(np.array(image)).float())


def test_the_whole_train_transform_is_the_published_pipeline() -> None:
    """TrainAugment = torchvision RandomResizedCrop -> ColorJitter (random order) -> flip -> ToTensor -> Normalize on
    PIL, with the parameters it drew: within a few levels (resize rounding, amplified by the jitter)."""
    photos = _photos(32, 90, seed=2)
    out = TrainAugment(40)(photos, torch.Generator().manual_seed(5))
    u = torch.rand(32, _DRAWS, generator=torch.Generator().manual_seed(5))  # the same draws, read back
    boxes = sample_crop_boxes(u[:, : 2 * CROP_TRIES].reshape(32, CROP_TRIES, 2), u[:, 20:22], 90, 90)
    factors = 1 + 0.4 * (2 * u[:, 22:25] - 1)
    orders = [JITTER_ORDERS[int(v * 6)] for v in u[:, 25]]
    assert {order for order in orders} == set(JITTER_ORDERS)  # every order is drawn
    differences = []
    for i in range(32):
        top, left, h, w = boxes[i].int().tolist()
        image = TF.resized_crop(Image.fromarray(photos[i]), top, left, h, w, [40, 40], TF.InterpolationMode.BILINEAR)
        for operation in orders[i]:
            image = PIL_JITTER[operation](image, float(factors[i, operation]))
        if u[i, 26] < 0.5:
            image = TF.hflip(image)
        reference = TF.normalize(TF.to_tensor(image), NORMALIZE_MEAN, NORMALIZE_STD)
        differences.append((_levels(out[i : i + 1]) - _levels(reference[None])).abs())
    differences = torch.cat(differences)
    assert differences.max() <= 3 and differences.mean() < 0.05


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


@pytest.mark.parametrize("stored", [96, 97, 297, 60])
def test_eval_transform_is_the_published_resize_and_centre_crop(stored: int) -> None:
    """Resize((96, 96)) (int(1.15 · 84)) + CenterCrop(84) on PIL, then ToTensor and the published Normalize."""
    photos = _photos(3, stored)
    out = eval_transform(photos, 84)
    assert out.shape == (3, 3, 84, 84) and out.dtype == torch.float32
    reference = torch.stack(
        [TF.to_tensor(TF.center_crop(Image.fromarray(p).resize((96, 96), Image.BILINEAR), [84, 84])) for p in photos]
    )
    difference = (_levels(out) - (reference * 255).round()).abs()
    assert difference.max() <= 1 and (difference > 0).float().mean() < 0.05
    if stored == 96:  # the cache already holds the eval size: exactly the centre crop, no resampling
        crop = torch.from_numpy(photos[:, 6:90, 6:90]).permute(0, 3, 1, 2).float() / 255
        torch.testing.assert_close(out, normalize(crop), atol=1e-6, rtol=0)


def test_eval_transform_odd_sizes() -> None:
    assert eval_transform(_images(2, 92), 80).shape == (2, 3, 80, 80)
    assert eval_transform(_images(1, 257), 224).shape == (1, 3, 224, 224)
    assert eval_transform(_images(1, 300)[:, :, :200], 84).shape == (1, 3, 84, 84)  # not square: squashed as Resize


def test_rejects_bad_images() -> None:
    with pytest.raises(ValueError, match="uint8 images"):
        TrainAugment(84)(torch.zeros(2, 3, 97, 97), torch.Generator())
    with pytest.raises(ValueError, match="uint8 images"):
        eval_transform(np.zeros((2, 97, 97), dtype=np.uint8), 84)


def test_crop_scale_and_hflip_options() -> None:
    """hflip=False never mirrors; crop_scale bounds the crop's area fraction."""
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
