"""Which of a dataset's known folder layouts a root holds, what each one lacked when none fits, and fast listed-file
checks (one directory listing per folder instead of one stat per image)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from data.errors import DataError

# Archive suffixes and the command that extracts one into a folder ({archive}, {folder} are shell-quoted).
_EXTRACT = {
    ".tar.gz": "tar -xzf {archive} -C {folder}",
    ".tgz": "tar -xzf {archive} -C {folder}",
    ".tar": "tar -xf {archive} -C {folder}",
    ".zip": "unzip {archive} -d {folder}",
}


@dataclass(frozen=True)
class Need:
    """A path a layout needs under its root: any one of `names` (relative paths, first present wins)."""

    names: tuple[str, ...]
    kind: Literal["file", "dir"] = "file"

    def find(self, root: Path) -> Path | None:
        """The first of `names` present under root as a file (or folder), else None."""
        for name in self.names:
            path = root / name
            if path.is_dir() if self.kind == "dir" else path.is_file():
                return path
        return None

    def describe(self) -> str:
        """How the need reads in an error: 'images/', 'a.pkl or b.pkl'."""
        suffix = "/" if self.kind == "dir" else ""
        return " or ".join(name + suffix for name in self.names)


@dataclass(frozen=True)
class Layout:
    """One way a dataset is laid out on disk: a name for messages and the paths it needs, by role."""

    name: str
    needs: dict[str, Need]

    def locate(self, root: Path) -> tuple[dict[str, Path], list[str]]:
        """(found path per role, descriptions of the needs that are missing) under root."""
        found: dict[str, Path] = {}
        missing: list[str] = []
        for role, need in self.needs.items():
            path = need.find(root)
            if path is None:
                missing.append(need.describe())
            else:
                found[role] = path
        return found, missing


def detect(root: Path, layouts: Sequence[Layout], what: str) -> tuple[Layout, dict[str, Path]]:
    """The first layout whose needs are all present under root -> (layout, path per role); else one DataError naming
    every layout tried with what it lacked, and any archive in root still to be extracted."""
    tried = []
    for layout in layouts:
        found, missing = layout.locate(root)
        if not missing:
            return layout, found
        tried.append(f"{layout.name} (lacks {', '.join(missing)})")
    raise DataError(f"no {what} layout in {root}: tried {'; '.join(tried)}{archive_note(root)}")


def unextracted_archives(folder: Path) -> list[tuple[Path, str]]:
    """(archive, shell command that extracts it into `folder`) for each archive file directly in folder, by name."""
    found = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    for path in entries:
        suffix = next((s for s in _EXTRACT if path.name.lower().endswith(s)), None)
        if suffix is not None and path.is_file():
            command = _EXTRACT[suffix].format(archive=shlex.quote(str(path)), folder=shlex.quote(str(folder)))
            found.append((path, command))
    return found


def archive_note(folder: Path) -> str:
    """'; <archive> is not extracted: run `<command>`' for each archive in folder ('' when there is none)."""
    return "".join(f"; {path.name} is not extracted: run `{command}`" for path, command in unextracted_archives(folder))


class FileIndex:
    """Answers "is this file there?" from one cached listing per folder, so checking the 60,000 images of a split
    list costs about one listing per class folder instead of one stat per image. Paths are plain strings here:
    pathlib objects cost more than the lookups."""

    def __init__(self) -> None:
        self._names: dict[str, frozenset[str]] = {}

    def names(self, folder: str | Path) -> frozenset[str]:
        """Entry names in folder (empty when it does not exist or cannot be read)."""
        folder = os.fspath(folder)
        names = self._names.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:
                names = frozenset()
            self._names[folder] = names
        return names

    def has(self, path: str | Path) -> bool:
        """Whether `path` names an entry of its folder."""
        folder, name = os.path.split(os.fspath(path))
        return name in self.names(folder)


def check_listed(listing: Path, paths: Sequence[str], index: FileIndex | None = None) -> None:
    """Raise one DataError naming the first missing file (and how many more) unless every listed path exists."""
    index = index or FileIndex()
    missing = [path for path in paths if not index.has(path)]
    if missing:
        more = f"; {len(missing) - 1} more of its images are missing" if len(missing) > 1 else ""
        raise DataError(f"image file not found: {missing[0]} (listed in {listing}{more})")
