"""Few-shot accuracy of a checkpoint on fixed episodes of a split: the pipeline behind `negmargin evaluate`.

The split is read from the cache the trial itself used: the checkpoint's recorded dataset section (crop scale, max
stored size) sets the cached size unless the caller overrides it. Features are extracted once; every episode of a shot
is fine-tuned at once (the published protocol, batched) with the seed of the episodes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from data.geometry import CROP_SCALE
from data.paths import checkpoint_file
from data.section import DatasetConfig, checked_dataset_section
from evaluation.checkpoint import Checkpoint, backbone_of
from evaluation.device import resolve_device
from evaluation.episode_scores import accuracy_summary, score_episode_sets
from evaluation.features import extract_features


@dataclass(frozen=True)
class ShotResult:
    """Accuracy of one shot: mean and 95% half-width in percent, the episode count, the fine-tuning seconds, and
    the per-episode accuracies [E] in [0, 1]."""

    shot: int
    accuracy_pct: float
    ci95_pct: float
    episodes: int
    seconds: float
    episode_accuracy: list[float]


@dataclass(frozen=True)
class CheckpointEvaluation:
    """What `evaluate_checkpoint` measured, and on what: the dataset section read, the features [N, D] extracted
    (their shape, the cached side and the seconds it took, on `device`), the fine-tuning head, one result per shot."""

    checkpoint: Path
    dataset: DatasetConfig
    split: str
    way: int
    queries: int
    seed: int
    head: dict[str, Any]
    device: torch.device
    features_shape: tuple[int, ...]
    stored_size: int
    feature_seconds: float
    results: list[ShotResult]

    @property
    def image_size(self) -> int:
        """The model input size the features were extracted at."""
        return self.dataset.image_size

    def to_json(self) -> dict[str, Any]:
        """The JSON layout of `negmargin evaluate --json` (per-episode accuracies included)."""
        return {
            "checkpoint": str(self.checkpoint),
            "dataset": self.dataset.name,
            "split": self.split,
            "image_size": self.image_size,
            "way": self.way,
            "queries": self.queries,
            "seed": self.seed,
            "head": self.head,
            "results": [asdict(result) for result in self.results],
        }


def dataset_section(
    trained_on: dict[str, Any],
    name: str,
    image_size: int,
    *,
    root: str | None = None,
    cache_dir: str | Path | None = None,
    crop_scale_min: float | None = None,
    max_stored_size: int | None = None,
) -> DatasetConfig:
    """The dataset section to read: the checkpoint's recorded cache geometry (`trained_on`: crop scale, max stored
    size), so the trial's cache is read again and not rebuilt, with the dataset, root, cache and any size given;
    DataError (one line) if a value is not valid."""
    crop_scale = tuple(trained_on.get("crop_scale", CROP_SCALE))
    if crop_scale_min is not None:
        crop_scale = (crop_scale_min, crop_scale[1])
    section = {
        "name": name,
        "root": root,
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "image_size": image_size,
        "crop_scale": crop_scale,
        "max_stored_size": max_stored_size or trained_on.get("max_stored_size"),
    }
    return checked_dataset_section(section, "evaluate")


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: str,
    *,
    split: Literal["val", "novel"] = "val",
    shots: Sequence[int] = (1, 5),
    episodes: int = 600,
    way: int = 5,
    queries: int = 16,
    seed: int = 0,
    root: str | None = None,
    cache_dir: str | Path | None = None,
    image_size: int | None = None,
    crop_scale_min: float | None = None,
    max_stored_size: int | None = None,
    batch_size: int = 256,
    device: str | torch.device = "auto",
) -> CheckpointEvaluation:
    """Few-shot accuracy of a checkpoint (file or checkpoint directory) on `episodes` fixed episodes per shot of
    `dataset`'s `split` ("novel" is the test split: final evaluation only), sampled and fine-tuned with `seed`.
    The images are read as the trial cached them unless `image_size`, `crop_scale_min` or `max_stored_size` say
    otherwise. EvaluationError / DataError (one line) for an unusable checkpoint, dataset or device."""
    import data  # lazily: data's public names load on first use

    device = resolve_device(device) if isinstance(device, str) else device
    path = checkpoint_file(checkpoint)
    loaded = Checkpoint.load(path)
    backbone, head = backbone_of(loaded, device, path)
    section = dataset_section(
        loaded.dataset,
        dataset,
        image_size or loaded.model.image_size,
        root=root,
        cache_dir=cache_dir,
        crop_scale_min=crop_scale_min,
        max_stored_size=max_stored_size,
    )
    images = data.load_split(section, split, allow_test=split == "novel")  # novel only when asked for
    started = time.perf_counter()
    features = extract_features(backbone, images.images, batch_size, device, section.image_size)
    feature_seconds = time.perf_counter() - started
    results = []
    for shot in shots:
        episode_set = data.EpisodeSet.sample(
            images.labels, way, shot, queries, episodes, seed, class_names=images.class_names
        )
        started = time.perf_counter()
        scored = score_episode_sets(features, images.labels, {shot: episode_set}, head, seed=seed, device=device)
        accuracy = scored[shot]
        seconds = time.perf_counter() - started
        summary = accuracy_summary(accuracy)
        results.append(ShotResult(shot, summary["mean"], summary["ci95"], len(accuracy), seconds, accuracy.tolist()))
    return CheckpointEvaluation(
        checkpoint=Path(checkpoint),
        dataset=section,
        split=split,
        way=way,
        queries=queries,
        seed=seed,
        head=head,
        device=device,
        features_shape=tuple(features.shape),
        stored_size=images.stored_size,
        feature_seconds=feature_seconds,
        results=results,
    )
