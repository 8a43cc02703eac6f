"""One trial: pretrain a backbone with a margin head on the base classes, scored on fixed validation episodes.

Knows nothing of Ray: results go to a `reporter`. Report cadence: ONLY at validation epochs (every `val_every`
epochs and the last one), each report carrying every metric and a checkpoint, so that ASHA (time_attr=epoch,
objective = a val metric) always compares trials on validation results at the same epochs.
Resuming from any reported checkpoint continues exactly as if never interrupted (same device type).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

import data
import evaluation
import models
from data.paths import episode_file_name
from evaluation.checkpoint import Checkpoint, ModelSpec, TrainingState
from evaluation.device import resolve_device
from sweep.errors import DivergenceError, TrialConfigError
from sweep.schema.trial_config import TrialConfig, ValidationConfig
from sweep.trial import phases
from sweep.trial.training import (
    BatchSource,
    EpochResult,
    Precision,
    build_optimizer,
    build_scheduler,
    resolve_precision,
    train_epoch,
)

# Keys of the config that may differ between a checkpoint and the run resuming it (locations, not the experiment).
_RELOCATABLE_KEYS = {"dataset.root", "dataset.cache_dir", "validation.episodes_dir", "device"}


class Reporter(Protocol):
    """Receives what a trial measures: training metrics after every epoch, validation reports with checkpoints."""

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        """Called after every epoch with the epoch's training metrics (epoch, train_loss, train_acc, lr, …)."""

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint) -> None:
        """Called every `val_every` epochs and at the end, with the checkpoint of that epoch (CPU tensors)."""


def metric_names(config: TrialConfig) -> list[str]:
    """Keys of every report of this config."""
    names = ["epoch", "train_loss", "train_acc", "lr", "images_per_s"]
    for shot in config.validation.shots:
        names += [f"val_acc_{shot}shot", f"val_ci_{shot}shot"]
    return names


@dataclass
class _Generators:
    """The trial's own random streams: batch order (CPU) and augmentation (training device)."""

    shuffle: torch.Generator
    augment: torch.Generator

    @classmethod
    def seeded(cls, seed: int, device: torch.device) -> _Generators:
        """Two streams derived from `seed` (numpy SeedSequence), independent of torch's global one."""
        shuffle_seed, augment_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
        shuffle = torch.Generator().manual_seed(shuffle_seed)
        augment = torch.Generator(device=device).manual_seed(augment_seed)
        return cls(shuffle, augment)


def run(config: TrialConfig, reporter: Reporter, checkpoint: Checkpoint | None = None) -> dict[str, Any]:
    """Pretrain and validate as `config` says, reporting at validation epochs; returns the final metrics."""
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ds = config.dataset
    base = training_base(config)
    val = data.load_split(ds, "val", progress=False)
    phases.mark("cache open")
    episode_sets = {shot: validation_episodes(config, val, shot) for shot in config.validation.shots}
    phases.mark("episode sets")

    num_classes = len(base.class_names)
    backbone, head = build_model(config, num_classes, device, precision)
    phases.mark("model build")
    source = BatchSource(base.images, base.labels, device)
    phases.mark("batch source")
    iters_per_epoch = source.iters_per_epoch(config.batch_size)
    optimizer = build_optimizer([*backbone.parameters(), *head.parameters()], config.lr, config.weight_decay, device)
    scheduler = build_scheduler(optimizer, iters_per_epoch, config.epochs, config.warmup_epochs, config.lr)
    generators = _Generators.seeded(config.seed, device)
    augment = data.TrainAugment(ds.image_size, device, crop_scale=ds.crop_scale, hflip=ds.hflip)

    epoch, iteration = 0, 0
    metrics: dict[str, Any] = {}
    if checkpoint is not None:
        parts = (backbone, head, optimizer, scheduler, generators)
        epoch, iteration, metrics = restore(checkpoint, config, *parts, device)

    while epoch < config.epochs:
        epoch += 1
        result = train_epoch(
            backbone,
            head,
            optimizer,
            scheduler,
            source,
            augment=augment,
            shuffle_generator=generators.shuffle,
            augment_generator=generators.augment,
            precision=precision,
            batch_size=config.batch_size,
            epoch=epoch,
            iteration=iteration,
        )
        iteration = result.iteration
        train_metrics = _train_metrics(epoch, result)
        reporter.epoch_end(train_metrics)
        if epoch % config.val_every == 0 or epoch == config.epochs:
            check_finite_state(backbone, head, epoch, iteration)
            phases.mark("training")
            metrics = {**train_metrics, **validate(config, backbone, val, episode_sets, device)}
            phases.mark("validation" if epoch < config.epochs else "final validation")
            state = TrainingState(
                head.state_dict(),
                optimizer.state_dict(),
                scheduler.state_dict(),
                iteration,
                rng_state(generators, device),
            )
            checkpoint_now = Checkpoint(
                model_spec(config, num_classes),
                backbone.state_dict(),
                epoch=epoch,
                metrics=dict(metrics),
                config=config.model_dump(),
                training=state,
            )
            reporter.report(dict(metrics), detached_copy(checkpoint_now))
            phases.mark("checkpoint + report" if epoch == config.epochs else "checkpoints + reports")
    return metrics


def training_base(config: TrialConfig) -> data.CachedSplit:
    """The base images a trial trains on: the whole base split, less its held-out part when
    dataset.holdout_fraction > 0 (data.load_base_parts, the same split the margin study scores on)."""
    return data.load_base_parts(config.dataset, progress=False)[0]


def check_finite_state(backbone: nn.Module, head: nn.Module, epoch: int, iteration: int) -> None:
    """DivergenceError if a weight or BatchNorm statistic went non-finite (a last step can, with a finite loss)."""
    tensors = [t for m in (backbone, head) for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    if not torch.stack([torch.isfinite(t).all() for t in tensors]).all():
        raise DivergenceError(
            f"training diverged: non-finite weights after epoch {epoch}, iteration {iteration}", epoch=epoch
        )


def model_spec(config: TrialConfig, num_classes: int) -> ModelSpec:
    """What evaluation and promotion need to rebuild the trained network from a checkpoint."""
    return ModelSpec(
        backbone=config.backbone,
        backbone_kwargs=config.backbone_kwargs,
        loss=config.loss,
        image_size=config.dataset.image_size,
        num_classes=num_classes,
        scale=float(config.scale),  # type: ignore[arg-type]  # never None once validated (_head_takes_margin)
        margin=float(config.margin),
    )


def build_model(
    config: TrialConfig, num_classes: int, device: torch.device, precision: Precision
) -> tuple[nn.Module, nn.Module]:
    """Backbone and head, initialised from torch.manual_seed(config.seed) (global RNG is seeded here only)."""
    torch.manual_seed(config.seed)
    backbone = models.build_backbone(config.backbone, **config.backbone_kwargs)
    in_dim = models.feature_dim(backbone, config.dataset.image_size)
    head = models.build_head(config.loss, in_dim, num_classes, config.scale, config.margin)
    backbone.to(device)
    head.to(device)
    if precision.channels_last:
        backbone.to(memory_format=torch.channels_last)
    return backbone, head


def validation_episodes(config: TrialConfig, val: data.CachedSplit, shot: int) -> data.EpisodeSet:
    """The fixed episode set of `shot`: episodes_dir/val_<shot>shot.pt when episodes_dir is set (sampled with
    validation.seed and saved there the first time), else sampled with validation.seed."""
    v = config.validation
    path = Path(v.episodes_dir) / episode_file_name("val", shot) if v.episodes_dir is not None else None
    return sample_validation_episodes(v, val.labels, val.class_names, shot, path)


def sample_validation_episodes(
    validation: ValidationConfig, labels: np.ndarray, class_names: Sequence[str], shot: int, path: Path | None
) -> data.EpisodeSet:
    """The validation episodes of `shot` for labels [N]: loaded from `path` when it exists, else sampled with
    validation.seed (way, queries, count of the section) and saved there; the sweep samples them once up front
    (sweep.workflows.preflight) and every trial loads the same ones."""
    return data.EpisodeSet.load_or_sample(
        path,
        labels,
        n_way=validation.way,
        n_shot=shot,
        n_query=validation.queries,
        n_episodes=validation.episodes,
        seed=validation.seed,
        class_names=class_names,
    )


def validate(
    config: TrialConfig, backbone: nn.Module, val, episode_sets: dict[int, data.EpisodeSet], device: torch.device
) -> dict[str, float]:
    """Val features once, then each shot's episode set fine-tuned as the protocol (β=5, m=0): percent acc and CI."""
    features = evaluation.extract_features(
        backbone, val.images, config.batch_size, device, image_size=config.dataset.image_size
    )
    head = evaluation.finetune_head(config.loss)  # the published fine-tuning head of this loss (β = 5, m = 0)
    accuracies = evaluation.score_episode_sets(
        features,
        val.labels,
        episode_sets,
        head,
        seed=config.validation.seed,
        epochs=config.validation.finetune_epochs,
        device=device,
    )
    metrics: dict[str, float] = {}
    for shot, accuracy in accuracies.items():
        summary = evaluation.accuracy_summary(accuracy)
        metrics[f"val_acc_{shot}shot"] = summary["mean"]
        metrics[f"val_ci_{shot}shot"] = summary["ci95"]
    return metrics


def _train_metrics(epoch: int, result: EpochResult) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "train_loss": result.loss,
        "train_acc": result.accuracy,
        "lr": result.lr,
        "images_per_s": result.images_per_s,
    }


def rng_state(generators: _Generators, device: torch.device) -> dict[str, Any]:
    """Every random stream of the trial: its generators, torch's CPU RNG (DropBlock/dropout), CUDA's if used."""
    state: dict[str, Any] = {
        "device_type": device.type,
        "shuffle": generators.shuffle.get_state(),
        "augment": generators.augment.get_state(),
        "torch_cpu": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["torch_cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore(
    checkpoint: Checkpoint,
    config: TrialConfig,
    backbone: nn.Module,
    head: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generators: _Generators,
    device: torch.device,
) -> tuple[int, int, dict[str, Any]]:
    """Load every state of `checkpoint` into the freshly built trial; returns (epoch, iteration, metrics)."""
    differing = _differing_keys(checkpoint.config, config.model_dump())
    if differing:
        raise TrialConfigError(f"checkpoint was written by another config (differs in: {', '.join(differing)})")
    training = checkpoint.training
    if training is None:
        raise TrialConfigError("checkpoint holds no training state (evaluation only): a trial cannot resume from it")
    rng = training.rng_state
    if rng["device_type"] != device.type:
        raise TrialConfigError(
            f"device: checkpoint was written on {rng['device_type']}, resuming on {device.type} "
            "cannot continue it exactly; resume on the same device type"
        )
    backbone.load_state_dict(checkpoint.backbone_state)
    head.load_state_dict(training.head_state)
    optimizer.load_state_dict(training.optimizer_state)
    scheduler.load_state_dict(training.scheduler_state)
    generators.shuffle.set_state(rng["shuffle"])
    generators.augment.set_state(rng["augment"])
    torch.set_rng_state(rng["torch_cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(rng["torch_cuda"], device)
    return checkpoint.epoch, training.iteration, dict(checkpoint.metrics)


def _differing_keys(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(saved) | set(current)):
        name = f"{prefix}{key}"
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _differing_keys(a, b, f"{name}.")
        elif a != b and name not in _RELOCATABLE_KEYS:
            keys.append(name)
    return keys


def detached_copy(obj: Any) -> Any:
    """Deep copy of a state tree (or a Checkpoint's) with every tensor copied to CPU (the live model keeps training
    after a report)."""
    if isinstance(obj, (Checkpoint, TrainingState)):
        return dataclasses.replace(
            obj, **{f.name: detached_copy(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        )
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {key: detached_copy(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [detached_copy(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(detached_copy(value) for value in obj)
    return obj
