"""The learning-curve table: full-budget runs of a grid of configurations × training seeds, one row per run and epoch.

Written by `negmargin calibrate --curves FILE` (sweep.workflows.calibration), read by the search replay
(sweep.tuning.replay) and benchmarks/sweep_efficiency.py, so a search strategy can be judged over many sweep seeds
without training again. A CSV, committed under benchmarks/learning_curves/ with the command, date and machine beside
it. Columns:

  <every searched parameter>   the run's configuration (sweep.schema.hyperparameters), one column each
  seed                         the training seed
  epoch                        1 … the budget
  epoch_seconds                the epoch's wall time: training, plus validation on a validated epoch
  train_acc                    the epoch's training accuracy, %
  val_acc_<k>shot, val_acc_mean   validation accuracy on the fixed validation episodes, % (validated epochs only)
  test_acc_<k>shot             mean accuracy on the fixed novel test episodes, % (validated epochs: promotion picks
                               among those from selection_from_epoch on)

Cells a row does not have are empty (NaN when read).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from data.atomic import write_atomically
from sweep.errors import ExperimentError
from sweep.schema.hyperparameters import SEARCHED_PARAMETERS

RUN_KEYS = (*SEARCHED_PARAMETERS, "seed")  # what names one run
REQUIRED = (*RUN_KEYS, "epoch", "epoch_seconds")


def rows(
    params: dict[str, float],
    seed: int,
    epoch_seconds: list[float],
    curve: Iterable[dict[str, float]],
    test: dict[int, dict[int, float]],
) -> list[dict[str, Any]]:
    """One run's rows: `curve` its validation reports (each with "epoch"), `test` {epoch: {shot: accuracy %}}."""
    reports = {int(report["epoch"]): report for report in curve}
    found = []
    for epoch, seconds in enumerate(epoch_seconds, start=1):
        row: dict[str, Any] = {**{name: params[name] for name in SEARCHED_PARAMETERS}, "seed": seed}
        row.update(epoch=epoch, epoch_seconds=round(seconds, 3))
        report = reports.get(epoch, {})
        row.update({key: round(value, 3) for key, value in report.items() if key.startswith(("val_acc_", "train_acc"))})
        row.update({f"test_acc_{shot}shot": round(acc, 3) for shot, acc in test.get(epoch, {}).items()})
        found.append(row)
    return found


def merge(path: Path, new_rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Write `new_rows` into the table at `path` (created if absent), replacing the rows of the same runs."""
    new = pd.DataFrame(new_rows)
    if path.is_file():
        old = read(path)
        keys = set(map(tuple, new[list(RUN_KEYS)].itertuples(index=False)))
        kept = old[[tuple(row) not in keys for row in old[list(RUN_KEYS)].itertuples(index=False)]]
        new = pd.concat([kept, new], ignore_index=True)
    table = new.sort_values([*RUN_KEYS, "epoch"], kind="stable").reset_index(drop=True)
    columns = [*RUN_KEYS, "epoch", "epoch_seconds", *sorted(c for c in table.columns if c not in REQUIRED)]
    text = table[columns].to_csv(index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda handle: handle.write(text.encode()))
    return table[columns]


def read(path: Path) -> pd.DataFrame:
    """The table at `path`; ExperimentError (one line) when it is missing or lacks a required column."""
    try:
        table = pd.read_csv(io.StringIO(Path(path).read_text()))
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ExperimentError(f"{path}: not a learning-curve table ({error})") from None
    missing = [column for column in REQUIRED if column not in table.columns]
    if missing:
        raise ExperimentError(f"{path}: not a learning-curve table (no column {', '.join(missing)})")
    return table
