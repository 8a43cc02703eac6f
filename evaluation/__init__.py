"""Feature extraction, batched episode fine-tuning (the published protocol), statistics and discriminability."""

from evaluation.checkpoint import Checkpoint, load_backbone_from_checkpoint
from evaluation.checkpoint_evaluation import CheckpointEvaluation, evaluate_checkpoint
from evaluation.discriminability import discriminability
from evaluation.episode_accuracy import check_episode_labels, evaluate
from evaluation.errors import EvaluationError
from evaluation.features import extract_features
from evaluation.finetune import (
    FinetuneSettings,
    default_chunk_size,
    draw_episode_randomness,
    episode_seeds,
    finetune_episodes,
    finetune_head,
    finetune_seeded,
    reference_finetune,
)
from evaluation.stats import mean_ci95, paired_comparison

__all__ = [
    "Checkpoint",
    "CheckpointEvaluation",
    "EvaluationError",
    "FinetuneSettings",
    "check_episode_labels",
    "default_chunk_size",
    "discriminability",
    "draw_episode_randomness",
    "episode_seeds",
    "evaluate",
    "evaluate_checkpoint",
    "extract_features",
    "finetune_episodes",
    "finetune_head",
    "finetune_seeded",
    "load_backbone_from_checkpoint",
    "mean_ci95",
    "paired_comparison",
    "reference_finetune",
]
