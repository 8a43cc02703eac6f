"""Errors of the evaluation package: user-caused ones (one clear line, exit 2)."""

from data.errors import UserError


class EvaluationError(UserError):
    """An evaluation input that cannot be used (checkpoint, episode set, labels, shapes): names it and the reason."""
