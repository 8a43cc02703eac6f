"""The epoch's augmented batches: the same inputs, in the same order, from the same generator draws as augmenting
each batch in turn (the CUDA path overlaps them on a side stream; it must draw exactly as this one)."""

import numpy as np
import pytest
import torch

import data
from sweep.trial.training import BatchSource, Precision, augmented_batches

IMAGES, SIZE, BATCH = 10, 12, 4


def _source() -> BatchSource:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(IMAGES, SIZE, SIZE, 3), dtype=np.uint8)
    return BatchSource(images, np.arange(IMAGES) % 3, torch.device("cpu"))


def _batches(max_steps: int | None) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Generator]:
    augment_generator = torch.Generator().manual_seed(2)
    batches = augmented_batches(
        _source(),
        augment=data.TrainAugment(8, "cpu"),
        shuffle_generator=torch.Generator().manual_seed(1),
        augment_generator=augment_generator,
        precision=Precision(None, channels_last=False),
        batch_size=BATCH,
        max_steps=max_steps,
    )
    return list(batches), augment_generator


@pytest.mark.parametrize("max_steps", [None, 2])
def test_batches_are_the_sequentially_augmented_ones_and_draw_no_further(max_steps):
    got, augment_generator = _batches(max_steps)
    source, augment = _source(), data.TrainAugment(8, "cpu")
    expected_generator = torch.Generator().manual_seed(2)
    expected = []
    for images, labels in source.batches(torch.Generator().manual_seed(1), BATCH):
        if max_steps is not None and len(expected) == max_steps:
            break
        expected.append((augment(images, expected_generator), labels))
    assert len(got) == len(expected) == (max_steps or 3)
    for (inputs, labels), (want_inputs, want_labels) in zip(got, expected, strict=True):
        assert inputs.shape == (labels.shape[0], 3, 8, 8)
        assert torch.equal(inputs, want_inputs) and torch.equal(labels, want_labels)
    # the augmentation generator advanced for the batches trained on only (a checkpoint stores its state)
    assert torch.equal(augment_generator.get_state(), expected_generator.get_state())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the side-stream overlap runs on CUDA only")
def test_on_cuda_the_overlapped_batches_equal_the_sequential_ones():
    device = torch.device("cuda")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(IMAGES, SIZE, SIZE, 3), dtype=np.uint8)
    source = BatchSource(images, np.arange(IMAGES) % 3, device)
    augment = data.TrainAugment(8, device)
    generator = torch.Generator(device=device).manual_seed(2)
    got = list(
        augmented_batches(
            source,
            augment=augment,
            shuffle_generator=torch.Generator().manual_seed(1),
            augment_generator=generator,
            precision=Precision(torch.bfloat16, channels_last=True),
            batch_size=BATCH,
        )
    )
    expected_generator = torch.Generator(device=device).manual_seed(2)
    expected = [
        (augment(images, expected_generator), labels)
        for images, labels in source.batches(torch.Generator().manual_seed(1), BATCH)
    ]
    assert len(got) == len(expected) == 3
    for (inputs, labels), (want_inputs, want_labels) in zip(got, expected, strict=True):
        assert inputs.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(inputs, want_inputs) and torch.equal(labels, want_labels)
    assert torch.equal(generator.get_state(), expected_generator.get_state())
