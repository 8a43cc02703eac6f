"""The torch device a name asks for ("auto", "cpu", "cuda", "cuda:1"), checked against this machine.

Trials, promotion, the margin study, the calibration, the GPU probe and `negmargin evaluate` resolve their device here.
"""

from __future__ import annotations

import torch

from evaluation.errors import EvaluationError


def resolve_device(name: str, *, key: str = "device") -> torch.device:
    """The torch.device of a device name, for trials, promotion and `negmargin evaluate` alike: "auto" -> cuda if
    available else cpu; an unknown name or "cuda[:N]" without that GPU -> EvaluationError naming `key`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EvaluationError(f"{key}: {name!r} is not a device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvaluationError(f"{key}: {name!r} asked for, but no CUDA device is available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise EvaluationError(f"{key}: {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    return device
