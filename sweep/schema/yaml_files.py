"""Reading a YAML document a user gives (a sweep spec, a trial config) so that no file can escape as a traceback.

yaml.safe_load alone lets a binary file raise UnicodeDecodeError, a deeply nested document RecursionError, and a
document of nested aliases ("billion laughs") expand into billions of values once validated. `read_yaml_document`
turns each into one line naming the file and the reason, raised as the caller's error type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_DEPTH = 50  # nesting levels of a document; the spec and trial schemas need 4
MAX_NODES = 100_000  # values of a document with its aliases expanded (a spec has a few hundred)


def read_yaml_document(path: Path, what: str, error_type: type[Exception]) -> Any:
    """The YAML document in `path` (yaml.safe_load), refused with one `error_type` line naming the file and the
    reason when it is missing, not a regular file, unreadable, not UTF-8 text, not YAML, nested deeper than
    MAX_DEPTH or, with its aliases expanded, larger than MAX_NODES values."""
    if path.is_dir():
        raise error_type(f"{path}: is a directory, not a {what}")
    if not path.is_file():
        raise error_type(f"{path}: no such {what}")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise error_type(f"{path}: cannot read the {what} ({error.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise error_type(f"{path}: not a UTF-8 text file (byte {error.start}); a {what} is YAML text") from None
    if "\0" in text:
        raise error_type(f"{path}: not a text file (it holds NUL bytes); a {what} is YAML text")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise error_type(f"{path}:{where} is not valid YAML ({getattr(error, 'problem', error)})") from None
    except RecursionError:
        raise error_type(f"{path}: nested too deeply to be a {what} (more than {MAX_DEPTH} levels)") from None
    problem = _size_problem(data)
    if problem:
        raise error_type(f"{path}: {problem} to be a {what}")
    return data


def _size_problem(data: Any) -> str | None:
    """Why a loaded YAML document is too deep or too large (aliases expanded), or None; iterative, so no input can
    exhaust the stack or run for long."""
    pending, seen = [(data, 1)], 0
    while pending:
        value, depth = pending.pop()
        seen += 1
        if depth > MAX_DEPTH:
            return f"nested too deeply (more than {MAX_DEPTH} levels)"
        if seen > MAX_NODES:
            return f"too large (more than {MAX_NODES} values once its aliases are expanded)"
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
    return None
