"""Trial checkpoints in an experiment that a storage fault left half-written, found and removed.

Ray Tune copies a trial's checkpoint folder into <exp>/tune/trial_<id>/checkpoint_<n>/ file by file, not atomically:
a full or failing filesystem (or a worker killed mid-copy) can leave checkpoint.pt cut short. Such a checkpoint was
never reported to Tune (its report fails with the copy), but it would lie there as if complete. Its file is removed
(evaluation.checkpoint.is_whole tells, from the file's end alone); its folder stays, so a checkpoint Tune did register
still exists for it, and the trial, finding no file there, continues from an earlier one (sweep.tuning.trainable).
"""

from __future__ import annotations

from pathlib import Path

from data.paths import CHECKPOINT_FILE

CHECKPOINT_DIRS = "trial_*/checkpoint_*"  # Tune's checkpoint folders under <exp>/tune


def partial(tune_dir: Path) -> list[Path]:
    """The checkpoint files under `tune_dir` that were not written to their end, in path order."""
    from evaluation.checkpoint import is_whole

    files = sorted(tune_dir.glob(f"{CHECKPOINT_DIRS}/{CHECKPOINT_FILE}"))
    return [path for path in files if not is_whole(path)]


def remove_partial(tune_dir: Path) -> list[Path]:
    """Delete the half-written checkpoint files under `tune_dir` (their folders stay); the files removed. OSError
    when the filesystem refuses (read-only)."""
    found = partial(tune_dir)
    for path in found:
        path.unlink(missing_ok=True)
    return found
