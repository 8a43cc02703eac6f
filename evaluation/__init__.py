"""Scoring pretrained backbones on few-shot episodes: a checkpoint end to end (`evaluate_checkpoint`), or its parts —
feature extraction, batched episode fine-tuning (the published protocol), episode scoring, statistics,
discriminability, and the one paired, seed-keyed comparison with the baseline (`compare_to_baseline`).

The test oracle of the fine-tuning (`evaluation.finetune.reference_finetune`, the per-episode loop) and the seeding
helpers are imported from their module; they are not the package's API.
"""

from evaluation.baseline_comparison import (
    ALPHA,
    BaselineComparison,
    SeedAccuracies,
    compare_family,
    compare_to_baseline,
    holm,
    verdict,
)
from evaluation.checkpoint import Checkpoint, load_backbone_from_checkpoint
from evaluation.checkpoint_evaluation import CheckpointEvaluation, ShotResult, evaluate_checkpoint
from evaluation.device import resolve_device
from evaluation.discriminability import discriminability
from evaluation.episode_accuracy import evaluate
from evaluation.episode_scores import accuracy_summary, score_episode_sets
from evaluation.errors import EvaluationError
from evaluation.features import extract_features
from evaluation.finetune import FinetuneSettings, finetune_episodes, finetune_head
from evaluation.stats import mean_ci95, paired_comparison

__all__ = [
    "ALPHA",
    "BaselineComparison",
    "Checkpoint",
    "CheckpointEvaluation",
    "EvaluationError",
    "FinetuneSettings",
    "SeedAccuracies",
    "ShotResult",
    "accuracy_summary",
    "compare_family",
    "compare_to_baseline",
    "discriminability",
    "evaluate",
    "evaluate_checkpoint",
    "extract_features",
    "finetune_episodes",
    "finetune_head",
    "holm",
    "load_backbone_from_checkpoint",
    "mean_ci95",
    "paired_comparison",
    "resolve_device",
    "score_episode_sets",
    "verdict",
]
