"""The one base of every error a user can cause, and the data package's own.

Every package's user errors (data, models, evaluation, clusters, sweep) derive from `UserError`; the `negmargin`
command catches it and prints one line with exit code 2. It lives here because data/ is the package every other one
may import (the lowest layer), and importing it loads neither torch nor numpy.
"""


class UserError(ValueError):
    """Something the user can fix (a spec, dataset, path, checkpoint, cluster address): the message is one line naming
    it and the reason."""


class DataError(UserError):
    """A dataset, path, cache or episode request the user can fix; the message is one line naming the file or class."""
