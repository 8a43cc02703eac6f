"""Errors of the models package: user-caused configuration errors (one clear line, exit 2)."""

from data.errors import UserError


class ModelConfigError(UserError):
    """A backbone, head or DropBlock configuration that cannot be built: names the option and the reason."""
