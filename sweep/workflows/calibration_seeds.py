"""Which training seeds a calibration runs, and which of them the configuration was chosen on.

A calibration on the seeds its configuration was tuned on can flatter it: the tuned seeds are marked, every other
seed run is held out, and the regime check is made on the held-out seeds as well as on all of them
(sweep/workflows/calibration_table.py). Nothing here imports torch, so the command line can take its defaults here.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_SEEDS = (0, 1, 2, 3, 4, 5)  # training seeds a calibration runs by default: three tuned, three held out
TUNED_SEEDS = (0, 1, 2)  # the seeds the default preset's budget was chosen on (issue 21), which the demo trains with


def split_seeds(seeds: Iterable[int], tuned_seeds: Iterable[int]) -> tuple[list[int], list[int]]:
    """(tuned, held out): the distinct `seeds` that are in `tuned_seeds`, and the others, each in increasing order."""
    tuned = set(tuned_seeds)
    ordered = sorted(set(seeds))
    return [seed for seed in ordered if seed in tuned], [seed for seed in ordered if seed not in tuned]
