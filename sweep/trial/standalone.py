"""One trial without Ray into its own run directory: what `negmargin train` runs, as a library call.

    run = train(TrialConfig.from_yaml("examples/trial-glyphs.yaml"), out="runs/first")
    run.best_checkpoint        # runs/first/checkpoints/best/checkpoint.pt

The run directory (sweep.trial.run_dir) gets the config as run, TensorBoard events, a checkpoint per validation, the
best one and summary.json. A loss that diverges is a result of the configuration, not an error: the run ends with
`diverged` set (and the marker file written), its checkpoints up to the last validation kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from data.paths import DIVERGED_MARKER
from sweep.errors import DivergenceError
from sweep.schema.trial_config import TrialConfig


@dataclass(frozen=True)
class TrainedRun:
    """What a standalone trial left in `out`: its final metrics, the best ones by `selection_metric` and that
    checkpoint (None before the first validation), or the divergence that stopped it."""

    out: Path
    selection_metric: str
    final_metrics: dict[str, Any]
    best_metrics: dict[str, Any] | None
    best_checkpoint: Path | None
    diverged: str | None = None


def train(
    config: TrialConfig | str | Path,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainedRun:
    """Pretrain one configuration (a TrialConfig or its YAML file) into `out` (default runs/<time>-<backbone>-<loss>-
    <id>; it must be new or empty unless `resume` continues it from its last checkpoint)."""
    from sweep import trial
    from sweep.trial.run_dir import RunDirReporter, prepare_out_dir

    config = config if isinstance(config, TrialConfig) else TrialConfig.from_yaml(config)
    run_dir, checkpoint = prepare_out_dir(None if out is None else Path(out), config, resume)
    if checkpoint is None:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(), sort_keys=False))
    reporter = RunDirReporter(
        run_dir,
        config.model_dump(),
        config.selection,
        start_epoch=checkpoint.epoch if checkpoint else 0,
        progress=progress,
    )
    log(f"negmargin train: writing to {run_dir}\n  tensorboard --logdir {run_dir}")
    try:
        final = trial.run(config, reporter, checkpoint=checkpoint)
    except DivergenceError as error:
        reporter.abort()
        (run_dir / DIVERGED_MARKER).write_text(f"{error}\n")
        return TrainedRun(run_dir, config.selection, {}, reporter.best_metrics, _best(reporter), diverged=str(error))
    except BaseException:
        reporter.abort()
        raise
    summary = reporter.close(final)
    return TrainedRun(run_dir, config.selection, final, summary["best_metrics"], _best(reporter))


def _best(reporter: Any) -> Path | None:
    from sweep.trial.checkpoints import best_checkpoint_path

    return best_checkpoint_path(reporter.out) if reporter.best_metrics else None
