"""Every size of the data pipeline, defined once in data.geometry: the published eval resize, the stored size."""

import pytest

from data import DataError
from data.geometry import centre_crop_offset, check_crop_scale, crop_source_size, eval_resize_size, stored_size


def test_eval_resize_is_the_published_int_of_115_percent():
    """lib/dataset.py: size = int(image_size * 1.15), not round or ceil (84 -> 96, where round gives 97)."""
    assert [eval_resize_size(s) for s in (84, 80, 224, 24, 16)] == [96, 92, 257, 27, 18]
    assert [centre_crop_offset(eval_resize_size(s), s) for s in (84, 80, 224)] == [6, 6, 16]  # torchvision's


def test_smallest_crop_is_not_upsampled_from_the_stored_size():
    assert crop_source_size(84, 0.08) == 297  # 84 / √0.08 = 296.98
    assert [crop_source_size(224, 0.08), crop_source_size(80, 0.08), crop_source_size(84, 0.25)] == [792, 283, 168]
    assert crop_source_size(24, 0.8) == 27
    for size in (16, 24, 80, 84, 224):  # at that side the smallest crop (area fraction a, aspect 1) is >= size wide
        stored = stored_size(size)
        assert stored >= 297 * size / 84 - 1 and (stored**2 * 0.08) ** 0.5 >= size


def test_stored_size_caps_and_floor():
    assert stored_size(84) == 297 and stored_size(84, 0.08, native=375) == 297
    assert stored_size(84, 0.08, native=200) == 200 and stored_size(84, 0.08, native=500, limit=150) == 150
    assert stored_size(84, 1.0) == 96  # no smaller crop than the image: the eval resize is the larger
    assert stored_size(24, 0.8, native=32) == 27  # the glyph demo
    assert stored_size(224, 0.08, native=32) == 32  # never above what the source has
    with pytest.raises(DataError):
        stored_size(0)
    with pytest.raises(DataError):
        stored_size(84, 0.08, limit=0)


def test_crop_scale_must_be_an_increasing_range_in_0_1():
    assert check_crop_scale((0.08, 1)) == (0.08, 1.0)
    for bad in ((0.0, 1.0), (0.5, 0.4), (0.5, 1.2)):
        with pytest.raises(ValueError, match="crop_scale"):
            check_crop_scale(bad)
