"""extract_features: eval transform, eval mode (restored per module), no grad, deterministic, float32 on the device."""

import numpy as np
import pytest
import torch
from torch import nn

import data
from evaluation import EvaluationError, extract_features


def _tiny_backbone() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


def _images(n: int, size: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def test_features_shape_determinism_and_eval_mode_restored() -> None:
    backbone = _tiny_backbone()
    backbone.train()
    backbone[3].eval()  # a submodule in its own mode must keep it
    images = _images(10, 297)  # stored size of image_size 84 at crop scale 0.08
    first = extract_features(backbone, images, batch_size=4, device="cpu", image_size=84)
    second = extract_features(backbone, torch.from_numpy(images), batch_size=3, device="cpu", image_size=84)
    assert first.shape == (10, 4) and first.dtype == torch.float32 and first.device.type == "cpu"
    assert not first.requires_grad
    torch.testing.assert_close(first, second, atol=1e-6, rtol=0)  # batches of 4 or 3: same features
    assert backbone.training and backbone[1].training and not backbone[3].training
    with torch.no_grad():
        expected = backbone.eval()(data.eval_transform(torch.from_numpy(images), 84))
    torch.testing.assert_close(first, expected, atol=1e-6, rtol=0)  # eval mode: BN running stats, no dropout


def test_eval_transform_gets_the_image_size(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def fake_transform(images: torch.Tensor, image_size: int) -> torch.Tensor:
        seen.append((tuple(images.shape), image_size))
        return images.permute(0, 3, 1, 2).float()[:, :, :image_size, :image_size] / 255

    monkeypatch.setattr(data, "eval_transform", fake_transform)
    features = extract_features(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), _images(5, 283), 2, "cpu", 80)
    assert seen == [((2, 283, 283, 3), 80), ((2, 283, 283, 3), 80), ((1, 283, 283, 3), 80)]
    expected = torch.from_numpy(_images(5, 283)[:, :80, :80]).float().mean(dim=(1, 2)) / 255
    torch.testing.assert_close(features, expected)


def test_features_stay_on_the_device_they_are_computed_on() -> None:
    """No copy back to the CPU: on the meta device (a stand-in for a GPU in a CPU-only test) the features are meta."""
    backbone = _tiny_backbone().to("meta")
    features = extract_features(backbone, _images(6, 96), batch_size=4, device="meta", image_size=84)
    assert features.device.type == "meta" and features.shape == (6, 4) and features.dtype == torch.float32


def test_bad_image_arrays_raise() -> None:
    with pytest.raises(EvaluationError, match="uint8"):
        extract_features(_tiny_backbone(), np.zeros((4, 8, 8), dtype=np.uint8), 2, "cpu", 8)
