"""One stored image size: the cache, the eval transform and feature extraction agree for every input size."""

import pytest
import torch

from data import DataError, eval_transform, image_size_for, stored_size
from data.geometry import check_crop_scale


def test_stored_size_is_ceil_of_115_percent_and_its_inverse_is_exact():
    assert [stored_size(s) for s in (16, 24, 80, 84, 224)] == [19, 28, 92, 97, 258]
    for size in range(8, 257):
        assert image_size_for(stored_size(size)) == size
    with pytest.raises(DataError):
        image_size_for(1)


@pytest.mark.parametrize("size", [8, 16, 23, 24, 84, 100])
def test_eval_transform_reads_a_cached_image_without_resizing_it(size):
    """A cached image is already S = stored_size(size): the eval transform only centre-crops it."""
    stored = stored_size(size)
    images = torch.randint(0, 256, (2, stored, stored, 3), dtype=torch.uint8)
    out = eval_transform(images, size)
    top = int(round((stored - size) / 2.0))
    crop = images[:, top : top + size, top : top + size].permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(out, (crop - mean) / std, atol=1e-6)


def test_crop_scale_must_be_an_increasing_range_in_0_1():
    assert check_crop_scale((0.08, 1)) == (0.08, 1.0)
    for bad in ((0.0, 1.0), (0.5, 0.4), (0.5, 1.2)):
        with pytest.raises(ValueError, match="crop_scale"):
            check_crop_scale(bad)
