"""The `format` version every file negmargin writes carries, and the one way such a file is read back: a missing,
damaged or foreign file, or one of a newer format, is one ExperimentError line naming the file and what to do.

A file without a `format` field was written before the field existed and is read as format 1. Each file's own module
(promotion_file, progress_file, selections, sweep.study.study_file) holds its typed definition and its remedy, the
sentence that tells a user how to get a good file back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from data.validation_errors import describe_validation_error
from sweep.errors import ExperimentError

FORMAT_KEY = "format"
UPGRADE = "upgrade negmargin (pip install -U negmargin) to read it"


class VersionedFile(BaseModel):
    """The base of a file's typed definition: unknown keys refused, frozen, and its format version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = 1


FileModel = TypeVar("FileModel", bound=VersionedFile)


def read_json(path: Path, model: type[FileModel], what: str, remedy: str) -> FileModel:
    """The `model` in the JSON file `path` (a `what`: "progress file"); ExperimentError ending in `remedy` if not."""
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ExperimentError(f"{path}: cannot be read ({_first_line(error)}); {remedy}") from None
    except json.JSONDecodeError as error:
        raise ExperimentError(f"{path}: not valid JSON ({error.msg}, line {error.lineno}); {remedy}") from None
    return validated(content, path, model, what, remedy)


def read_yaml(path: Path, model: type[FileModel], what: str, remedy: str) -> FileModel:
    """The `model` in the YAML file `path` (read with safe_load); ExperimentError ending in `remedy` if not."""
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ExperimentError(f"{path}: cannot be read ({_first_line(error)}); {remedy}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f", line {where.line + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or _first_line(error)
        raise ExperimentError(f"{path}: not valid YAML ({problem}{line}); {remedy}") from None
    return validated(content, path, model, what, remedy)


def validated(content: object, path: Path, model: type[FileModel], what: str, remedy: str) -> FileModel:
    """`content` (parsed from `path`) as a `model`, its format version checked first."""
    if not isinstance(content, dict):
        raise ExperimentError(f"{path}: not a {what} (got {type(content).__name__}); {remedy}")
    version = content.get(FORMAT_KEY, 1)
    newest = model.model_fields[FORMAT_KEY].default
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ExperimentError(f"{path}: not a {what} ({FORMAT_KEY} {version!r} is not a version); {remedy}")
    if version > newest:
        raise ExperimentError(
            f"{path}: {what} of format {version}, newer than this negmargin reads ({newest}); {UPGRADE}"
        )
    try:
        return model.model_validate(content)
    except ValidationError as error:
        raise ExperimentError(f"{path}: not a {what} ({describe_validation_error(error)}); {remedy}") from None


def dump(record: BaseModel, **options: Any) -> dict[str, Any]:
    """The plain dict of a typed file (model_dump with `options`), its format version first."""
    return {FORMAT_KEY: getattr(record, FORMAT_KEY)} | record.model_dump(**options)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
