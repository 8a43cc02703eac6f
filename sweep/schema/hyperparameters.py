"""The searched hyperparameters: one entry each, and every other module reads them from here.

An entry says
- what a spec's `search.<name>` may hold: any space (fixed, uniform, loguniform, int, choice; sweep.schema.spec) whose
  values lie in the entry's valid range and, for the margin, suit the loss; the space it is fixed at when the spec
  leaves it out, or that the spec must give it;
- where a sampled value lands: the trial config key `<name>` (sweep.schema.trial_config.TrialConfig), cast to the
  entry's kind, with the entry's valid range and default there too;
- how people read it: the label of report tables and text, and of TensorBoard's HParams;
- where the authors set it: their config key (bl0/negative-margin.few-shot `lib/config.py`, as the run scripts
  override it) and its default in their code, which a published starting point takes where the script sets none
  (sweep.schema.published; docs/protocol.md, section 2).

Making a parameter searchable is one entry here plus its use in training (the TrialConfig field the trial reads).
Torch-free: a spec validates without loading torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

Kind = Literal["float", "int"]
LossRule = Callable[[str, float, float], str | None]  # (spec's loss, lowest, highest value) -> why not, or None


def _margin_suits_loss(loss: str, low: float, high: float) -> str | None:
    """Why a sweep of `loss` cannot search margins in [low, high], or None (models.catalog: the losses' rules)."""
    if loss == "softmax" and (low, high) != (0.0, 0.0):
        return "the plain softmax baseline has no margin; fix it at 0"
    if loss == "neg-softmax" and high > 0:
        return "neg-softmax takes m <= 0 (a positive margin needs a cosine head)"
    return None


@dataclass(frozen=True)
class Hyperparameter:
    """One searched hyperparameter: its name, kind, valid range, defaults, labels and the authors' key."""

    name: str  # the key under `search:`, in a trial's params, in first points and in the trial config
    kind: Kind  # a sampled value is cast to it before it lands in the trial config
    title: str  # what it is, in words: TensorBoard's label (with the symbol) and the report's (without one)
    published_key: str  # the authors' config key (lib/config.py), as their run scripts set it
    published_default: float  # its value in the authors' code where a run script sets none
    search_default: float | None  # a spec that leaves it out fixes it at this; None: a spec must give it
    trial_default: float | None  # a trial config that leaves it out gets this (None: TrialConfig decides)
    symbol: str | None = None  # the report's label where there is one (m, β)
    column: str | None = None  # a report column it shares with the parameters of the same column (rate / size)
    ge: float | None = None  # valid values: >= ge, > gt, < lt (None: no bound); always finite
    gt: float | None = None
    lt: float | None = None
    loss_rule: LossRule | None = None  # which ranges a sweep of a given loss may search

    @property
    def label(self) -> str:
        """The report's label: "m", "β", "weight decay", "DropBlock rate"."""
        return self.symbol or self.title

    @property
    def display_name(self) -> str:
        """TensorBoard's HParams label: "m (margin)", "weight decay"."""
        return f"{self.symbol} ({self.title})" if self.symbol else self.title

    @property
    def report_column(self) -> str:
        """The report column it is shown in: its own label, or the column it shares ("DropBlock")."""
        return self.column or self.label

    def cast(self, value: Any) -> float | int:
        """`value` as the trial config holds it (a sampled 3.0 of an integer parameter is 3)."""
        return int(value) if self.kind == "int" else float(value)

    def valid_range(self) -> str:
        """The valid values in words: "> 0", ">= 1", "in [0, 1)", or "" when any finite value is."""
        lower = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else None
        if self.lt is not None:
            return f"in {lower or '(-inf'}, {self.lt:g})"
        if self.ge is not None:
            return f">= {self.ge:g}"
        return f"> {self.gt:g}" if self.gt is not None else ""

    def range_problem(self, low: float, high: float) -> str | None:
        """Why values from `low` to `high` are not all valid, or None."""
        inside = (
            (self.ge is None or low >= self.ge)
            and (self.gt is None or low > self.gt)
            and (self.lt is None or high < self.lt)
        )
        if inside:
            return None
        rule = self.valid_range()
        return f"must lie {rule}" if rule.startswith("in ") else f"must be {rule}"

    def loss_problem(self, loss: str, low: float, high: float) -> str | None:
        """Why a sweep of `loss` cannot search values from `low` to `high` (the margin's sign rules), or None."""
        return self.loss_rule(loss, low, high) if self.loss_rule is not None else None

    def trial_field(self) -> Any:
        """The pydantic Field of its trial config key: the trial default and the valid range."""
        return Field(self.trial_default, ge=self.ge, gt=self.gt, lt=self.lt, allow_inf_nan=False)


HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        name="margin",
        kind="float",
        title="margin",
        symbol="m",
        published_key="method.metric_params.margin",
        published_default=0.0,
        search_default=None,
        trial_default=0.0,
        loss_rule=_margin_suits_loss,
    ),
    Hyperparameter(
        name="scale",
        kind="float",
        title="scale",
        symbol="β",
        published_key="method.metric_params.scale_factor",
        published_default=30.0,
        search_default=10.0,
        trial_default=None,  # the loss's published β (models.catalog.Loss.scale_for)
        gt=0.0,
    ),
    Hyperparameter(
        name="weight_decay",
        kind="float",
        title="weight decay",
        published_key="train.adam_params.weight_decay",
        published_default=0.0,
        search_default=5e-4,
        trial_default=1e-4,
        ge=0.0,
    ),
    Hyperparameter(
        name="drop_rate",
        kind="float",
        title="DropBlock rate",
        column="DropBlock",
        published_key="train.drop_rate",
        published_default=0.0,
        search_default=0.0,
        trial_default=0.0,
        ge=0.0,
        lt=1.0,
    ),
    Hyperparameter(
        name="dropblock_size",
        kind="int",
        title="DropBlock size",
        column="DropBlock",
        published_key="train.dropblock_size",
        published_default=5,
        search_default=5,
        trial_default=5,
        ge=1,
    ),
)

HYPERPARAMETER = {parameter.name: parameter for parameter in HYPERPARAMETERS}
SEARCHED_PARAMETERS = tuple(HYPERPARAMETER)
