"""Errors of the evaluation package: user-caused ones (one clear line, exit 2)."""


class EvaluationError(ValueError):
    """An evaluation input that cannot be used (checkpoint, episode set, labels, shapes): names it and the reason."""
