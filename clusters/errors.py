"""Errors a user can cause when starting, stopping or reaching a cluster (one clear line, exit 2)."""

from data.errors import UserError


class ClusterError(UserError):
    """A cluster that cannot be started, found or reached: names the file, port or address and the reason."""
