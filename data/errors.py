"""The data package's user-error class."""


class DataError(ValueError):
    """A dataset, path, cache or episode request the user can fix; the message is one line naming the file or class."""
