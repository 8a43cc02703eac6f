"""Ray Tune's saved experiment state, checked before a resume trusts it, with a whole copy of Tune's last save kept
beside it.

Tune saves its state into a staging folder on the driver's own disk (experiment_state-<stamp>.json,
searcher-state-<stamp>.pkl, search_gen_state-<stamp>.json, callback-states-<stamp>.pkl) and then copies that folder
into <exp>/tune in the background, file by file and not atomically; tuner.pkl it writes into <exp>/tune once. A full
or failing filesystem, or a driver killed mid-copy, can leave one of those files truncated, and a restore then fails
(or Tune starts the experiment again). So, at every save, the driver copies the state it has just saved (the staging
folder: whole, and never older than what Tune copies into <exp>/tune) to <exp>/tune-state/<slot>/ (two slots used
in turn, each file written atomically and its manifest last, so one slot is always whole). A resume whose state in
<exp>/tune does not read back restores the newest whole copy instead, saying so in one line.

The copy is of Tune's last save, never older: an older state could name a trial checkpoint that Tune has deleted
since (CheckpointConfig(num_to_keep)), which the restored trial could then not continue from.

Reading back: JSON parses; a pickle (protocol 2 and up, whatever the file's suffix) has a complete opcode stream
(pickletools, which executes nothing).
"""

from __future__ import annotations

import hashlib
import json
import pickletools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from data.atomic import write_atomically, write_text_atomically

GOOD_COPY_DIR = "tune-state"
SLOTS = ("a", "b")
MANIFEST = "manifest.json"
TUNER_FILE = "tuner.pkl"
STAMPED = ("experiment_state-*.json", "searcher-state-*.pkl", "search_gen_state-*.json", "callback-states-*.pkl")
EXPERIMENT_STATE = "experiment_state-*.json"


@dataclass(frozen=True)
class GoodCopy:
    """One kept copy of Tune's state: its folder, when it was taken and its files (name -> sha256)."""

    folder: Path
    taken: float
    files: dict[str, str]


def state_files(tune_dir: Path) -> list[Path]:
    """The files a restore of `tune_dir` reads: tuner.pkl and the newest file of each stamped kind present."""
    found = [tune_dir / TUNER_FILE] if (tune_dir / TUNER_FILE).exists() else []
    for pattern in STAMPED:
        matches = sorted(tune_dir.glob(pattern))
        if matches:
            found.append(matches[-1])
    return found


def unreadable(path: Path) -> str | None:
    """Why `path` does not read back whole ('truncated pickle', 'not whole JSON: …', 'empty'), or None when it does."""
    try:
        payload = path.read_bytes()
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    return unreadable_payload(path.name, payload)


def unreadable_payload(name: str, payload: bytes) -> str | None:
    """Why the bytes of the state file `name` do not read back whole, or None when they do."""
    if not payload:
        return "empty"
    if not payload.startswith(b"\x80"):  # JSON (search_gen_state-*.json is a pickle, whatever its name)
        try:
            json.loads(payload)
        except ValueError as error:
            return f"not whole JSON ({error})"
        return None
    try:
        ops = list(pickletools.genops(payload))
    except (ValueError, EOFError) as error:
        return f"truncated pickle ({error})"
    end = ops[-1][2] if ops else None
    if end is None or ops[-1][0].name != "STOP" or end + 1 != len(payload):
        return "truncated pickle (no STOP at its end)"
    return None


def problems(tune_dir: Path) -> dict[Path, str]:
    """Each state file of `tune_dir` that does not read back whole, with why (empty when the state is usable);
    a tune_dir without tuner.pkl or an experiment state is a problem too."""
    files = state_files(tune_dir)
    found = {path: reason for path in files if (reason := unreadable(path)) is not None}
    if not (tune_dir / TUNER_FILE).exists():
        found[tune_dir / TUNER_FILE] = "missing"
    if not any(path.name.startswith("experiment_state-") for path in files):
        found[tune_dir / "experiment_state-*.json"] = "missing"
    return found


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def good_copies(experiment_root: Path) -> list[GoodCopy]:
    """The kept copies whose every file matches its manifest, newest first."""
    copies = []
    for slot in SLOTS:
        folder = experiment_root / GOOD_COPY_DIR / slot
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            files = dict(manifest["files"])
            if all(_sha256(folder / name) == digest for name, digest in files.items()):
                copies.append(GoodCopy(folder, float(manifest["taken"]), files))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(copies, key=lambda copy: copy.taken, reverse=True)


def keep_good_copy(experiment_root: Path, saved_dir: Path, tune_dir: Path) -> bool:
    """Copy the state Tune saved last into the older slot when it reads back whole and differs from the newest
    copy; True when a copy was written. `saved_dir`: the folder Tune saved it into (its driver's staging folder);
    tuner.pkl, which Tune writes into `tune_dir` only, is taken from there. OSError (a storage fault) propagates: the
    older slot may then be partly written, the newer one is untouched."""
    sources = state_files(saved_dir)
    if not any(path.match(EXPERIMENT_STATE) for path in sources):
        return False
    if not any(path.name == TUNER_FILE for path in sources) and (tune_dir / TUNER_FILE).is_file():
        sources.append(tune_dir / TUNER_FILE)
    files = {path.name: path.read_bytes() for path in sources}
    if any(unreadable_payload(name, payload) for name, payload in files.items()):
        return False  # not whole (a tuner.pkl cut short): the next save is copied
    digests = {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()}
    copies = good_copies(experiment_root)
    if copies and copies[0].files == digests:
        return False
    slot = _older_slot(experiment_root, copies)
    folder = experiment_root / GOOD_COPY_DIR / slot
    (folder / MANIFEST).unlink(missing_ok=True)  # the slot is incomplete until its new manifest is written
    for stale in folder.glob("*"):
        if stale.name not in files:
            stale.unlink()
    for name, payload in files.items():
        _write_bytes(folder / name, payload)
    write_text_atomically(folder / MANIFEST, json.dumps({"taken": time.time(), "files": digests}, indent=2))
    return True


def _write_bytes(path: Path, payload: bytes) -> None:
    def write(stream: BinaryIO) -> None:
        stream.write(payload)

    write_atomically(path, write, mode=0o644)


def _older_slot(experiment_root: Path, copies: list[GoodCopy]) -> str:
    if not copies:
        return SLOTS[0]
    newest = copies[0].folder.name
    return next(slot for slot in SLOTS if slot != newest)


def restore_good_copy(experiment_root: Path, tune_dir: Path, broken: dict[Path, str]) -> tuple[GoodCopy, Path] | None:
    """Put the newest good copy in place of the unreadable state: the broken files (and every stamped state file
    newer than the copy's) are moved into <exp>/tune-unreadable-<stamp>/, the copy's files written into `tune_dir`;
    (the copy, that folder). None, touching nothing, when no good copy is kept."""
    copies = good_copies(experiment_root)
    if not copies:
        return None
    copy = copies[0]
    aside = experiment_root / f"tune-unreadable-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(exist_ok=True)
    newest_kept = {Path(name).name for name in copy.files}
    for pattern in STAMPED:
        kept = [name for name in newest_kept if Path(name).match(pattern)]
        for path in tune_dir.glob(pattern):
            if path in broken or (kept and path.name > max(kept)):
                shutil.move(str(path), aside / path.name)
    if tune_dir / TUNER_FILE in broken and (tune_dir / TUNER_FILE).exists():
        shutil.move(str(tune_dir / TUNER_FILE), aside / TUNER_FILE)
    for name in copy.files:
        payload = (copy.folder / name).read_bytes()
        _write_bytes(tune_dir / name, payload)
    return copy, aside
