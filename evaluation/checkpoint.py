"""Loading a trial checkpoint for evaluation: the backbone, its fine-tuning head settings and its input size.

Checkpoint format (written by sweep.trial): a torch.save'd dict, loaded with weights_only=True, holding
  "model_spec": {"backbone": str (models.list_backbones()), "backbone_kwargs": dict (for models.build_backbone),
                 "loss": str (models.LOSSES), "image_size": int (model input size), ...other keys ignored}
  "backbone_state": the backbone's state_dict
  "config" (optional): the trial config it was trained with; its "dataset" section says how the images were cached
and any other keys (ignored).
"""

import re
import warnings
from pathlib import Path

import torch
from torch import nn

from evaluation.errors import EvaluationError
from evaluation.finetune import finetune_head
from sweep.trial.checkpoints import CHECKPOINT_FILE  # the file inside a checkpoint directory (torch-free)

_SPEC_KEYS = {"backbone": str, "backbone_kwargs": dict, "loss": str, "image_size": int}


_REFUSED_GLOBAL = re.compile(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)")


def _first_line(error: BaseException) -> str:
    """First line of an exception message (torch's unpickling errors span many lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _unreadable_reason(error: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, in one line: the object it asked to build, or torch's own
    first line (never its advice to retry with weights_only=False)."""
    refused = _REFUSED_GLOBAL.search(str(error))
    if refused:
        return f"it asks to build a {refused.group(1)} object, and checkpoints are loaded as tensors only"
    if "Weights only load failed" in str(error):
        return "it holds objects other than tensors and plain containers, and checkpoints are loaded as tensors only"
    return _first_line(error)


def _read_model_spec(checkpoint: object, path: Path) -> dict:
    """The checked "model_spec" entry of a loaded checkpoint."""
    if not isinstance(checkpoint, dict):
        raise EvaluationError(f"checkpoint {path} is not a dict (got {type(checkpoint).__name__})")
    for key in ("model_spec", "backbone_state"):
        if key not in checkpoint:
            raise EvaluationError(f"checkpoint {path} has no key {key!r} (not a negmargin trial checkpoint?)")
    spec = checkpoint["model_spec"]
    if not isinstance(spec, dict):
        raise EvaluationError(f"checkpoint {path}: 'model_spec' must be a dict")
    for key, kind in _SPEC_KEYS.items():
        if not isinstance(spec.get(key), kind):
            raise EvaluationError(
                f"checkpoint {path}: model_spec[{key!r}] must be a {kind.__name__}, got {spec.get(key)!r}"
            )
    if spec["image_size"] < 1:
        raise EvaluationError(f"checkpoint {path}: model_spec['image_size'] must be >= 1, got {spec['image_size']}")
    return spec


def _load(path: str | Path, *, mmap: bool = False) -> tuple[dict, Path]:
    """(the loaded checkpoint, its file) of a checkpoint file or directory; EvaluationError if missing or unreadable."""
    path = Path(path)
    if path.is_dir():  # a checkpoint directory (a run's checkpoints/best, a Tune checkpoint_XXXXXX)
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise EvaluationError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap), path
    except Exception as error:  # not a torch file, or holds objects weights_only refuses
        raise EvaluationError(f"checkpoint {path} cannot be read: {_unreadable_reason(error)}") from None


def training_dataset(path: str | Path) -> dict:
    """The "dataset" section of the trial config a checkpoint was trained with, {} if it carries none (memory-mapped:
    the weights are not read)."""
    checkpoint, _ = _load(path, mmap=True)
    config = checkpoint.get("config") if isinstance(checkpoint, dict) else None
    dataset = config.get("dataset") if isinstance(config, dict) else None
    return dict(dataset) if isinstance(dataset, dict) else {}


def load_backbone_from_checkpoint(path: str | Path, device: torch.device | str) -> tuple[nn.Module, dict, int]:
    """(backbone in eval mode on `device`, fine-tuning head settings of its loss, image size) of a checkpoint."""
    import models  # lazily: building a backbone is this function's job only

    checkpoint, path = _load(path)
    spec = _read_model_spec(checkpoint, path)
    try:
        head = finetune_head(spec["loss"])
    except EvaluationError as error:
        raise EvaluationError(f"checkpoint {path}: model_spec['loss']: {error}") from None
    try:
        backbone = models.build_backbone(spec["backbone"], **spec["backbone_kwargs"])
    except models.ModelConfigError as error:
        raise EvaluationError(f"checkpoint {path}: {error}") from None
    try:
        backbone.load_state_dict(checkpoint["backbone_state"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise EvaluationError(
            f"checkpoint {path}: backbone_state does not fit backbone {spec['backbone']!r}: {_first_line(error)}"
        ) from None
    return backbone.to(device).eval(), head, spec["image_size"]
