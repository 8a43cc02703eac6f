"""One line for a pydantic ValidationError, shared by sweep specs, trial configs and command-line dataset options.

The line names the first offending key as a dotted path, then the reason: `budget.grace_period: 99 exceeds
max_epochs 6`, `colour: unknown key`, `budget: required key is missing`, with `(and N more)` when there are others.
A model-level validator names its key itself by starting its message with `key: ` (`margin: neg-cosine needs m <= 0`).
It lives in data/ (torch-free, the lowest layer) so that every package that validates user input may use it.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

_NAMES_A_KEY = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def describe_validation_error(error: ValidationError) -> str:
    """`dotted.key: reason` for the first problem of `error`, on one line."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    for prefix in _PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif _NAMES_A_KEY.match(message):  # the validator of a section (or the whole model) names the key inside it
        location = f"{location}.{message}" if location else message
        message = ""
    line = f"{location}: {message}" if message else location
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return " ".join(f"{line}{more}".split())
