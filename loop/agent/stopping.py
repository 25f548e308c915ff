"""When a campaign stops: label budget, round count, pool exhausted, or no improvement.

``check_stop`` is a pure function of the campaign's counters, called between rounds; the
reason is a fixed code (:class:`StopReason`) so that it can be stored and compared. When
several rules hold at once the first in this order wins: ``POOL_EXHAUSTED``, ``LABEL_BUDGET``,
``COST_BUDGET``, ``MAX_ROUNDS``, ``NO_IMPROVEMENT``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from alloop.loop.agent.acquisition import AcquisitionError

__all__ = ["StopDecision", "StopReason", "StopRules", "StopState", "check_stop", "labels_left"]


class StopReason(StrEnum):
    POOL_EXHAUSTED = "POOL_EXHAUSTED"
    LABEL_BUDGET = "LABEL_BUDGET"
    COST_BUDGET = "COST_BUDGET"
    MAX_ROUNDS = "MAX_ROUNDS"
    NO_IMPROVEMENT = "NO_IMPROVEMENT"


def _check_count(name: str, value: object, *, allow_none: bool, minimum: int) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if allow_none else ""
        raise AcquisitionError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}")


@dataclass(frozen=True)
class StopRules:
    """Stopping rules; ``None`` disables a rule.

    Attributes:
        max_labels: Stop once this many pairs are labelled (oracle labels, all fidelities).
        max_cost: Stop once the oracle jobs have cost this many cost units.
        max_rounds: Stop after this many completed rounds.
        no_improvement_rounds: Stop when the best label has not dropped by more than
            ``min_improvement_ev`` over this many rounds.
        min_improvement_ev: Smallest drop of the best label (eV) that counts as improvement.
    """

    max_labels: int | None = None
    max_rounds: int | None = None
    no_improvement_rounds: int | None = None
    min_improvement_ev: float = 0.0
    max_cost: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_labels", "max_rounds", "no_improvement_rounds"):
            _check_count(name, getattr(self, name), allow_none=True, minimum=1)
        if not (0.0 <= self.min_improvement_ev < math.inf):
            raise AcquisitionError(
                f"min_improvement_ev must be finite and >= 0, got {self.min_improvement_ev!r}"
            )
        if self.max_cost is not None and not (0.0 < self.max_cost < math.inf):
            raise AcquisitionError(f"max_cost must be finite and > 0, got {self.max_cost!r}")


@dataclass(frozen=True)
class StopState:
    """The campaign's counters after its latest completed round.

    Attributes:
        rounds_completed: Rounds committed so far.
        labels_used: Pairs labelled so far.
        pool_remaining: Unlabelled pairs still selectable.
        best_label_history_ev: Best (lowest) GMAE label after each completed round, oldest
            first; ``None`` while there is none.
        cost_spent: Cost units of every oracle job so far (`alloop.loop.agent.costs`).
        min_label_cost: What the cheapest label costs: a budget that cannot buy one is spent.
        last_batch_empty: The latest completed round (after the first) acquired nothing: a
            next one would not either, so the pool is exhausted for this campaign.
    """

    rounds_completed: int
    labels_used: int
    pool_remaining: int
    best_label_history_ev: tuple[float | None, ...] = ()
    cost_spent: float = 0.0
    min_label_cost: float = 0.0
    last_batch_empty: bool = False

    def __post_init__(self) -> None:
        for name in ("rounds_completed", "labels_used", "pool_remaining"):
            _check_count(name, getattr(self, name), allow_none=False, minimum=0)
        for i, best in enumerate(self.best_label_history_ev):
            if best is not None and math.isnan(best):
                raise AcquisitionError(f"best_label_history_ev[{i}] is NaN; use None for none")


@dataclass(frozen=True)
class StopDecision:
    stop: bool
    reason: StopReason | None
    detail: str


def check_stop(state: StopState, rules: StopRules) -> StopDecision:
    """Decide whether the campaign stops before its next round."""
    if state.pool_remaining == 0:
        return StopDecision(True, StopReason.POOL_EXHAUSTED, "no unlabelled pairs left")
    if state.last_batch_empty:
        return StopDecision(
            True, StopReason.POOL_EXHAUSTED, "the last round found nothing it could acquire"
        )
    if rules.max_labels is not None and state.labels_used >= rules.max_labels:
        return StopDecision(
            True,
            StopReason.LABEL_BUDGET,
            f"{state.labels_used} labels used of a budget of {rules.max_labels}",
        )
    if rules.max_cost is not None and rules.max_cost - state.cost_spent < max(
        state.min_label_cost, 1e-9
    ):
        return StopDecision(
            True,
            StopReason.COST_BUDGET,
            f"{state.cost_spent:g} cost units spent of a budget of {rules.max_cost:g}",
        )
    if rules.max_rounds is not None and state.rounds_completed >= rules.max_rounds:
        return StopDecision(
            True,
            StopReason.MAX_ROUNDS,
            f"{state.rounds_completed} rounds completed of {rules.max_rounds}",
        )
    stalled = _stalled(state.best_label_history_ev, rules)
    if stalled is not None:
        return StopDecision(True, StopReason.NO_IMPROVEMENT, stalled)
    return StopDecision(False, None, "continue")


def _stalled(history: tuple[float | None, ...], rules: StopRules) -> str | None:
    n = rules.no_improvement_rounds
    if n is None or len(history) <= n:
        return None
    # No label at all counts as +inf: rounds that produce none are not an improvement either.
    latest, earlier = history[-1], history[-1 - n]
    now = math.inf if latest is None else latest
    then = math.inf if earlier is None else earlier
    if now < then - rules.min_improvement_ev:
        return None
    return (
        f"best label {now:.3f} eV vs {then:.3f} eV {n} rounds ago: "
        f"no drop > {rules.min_improvement_ev:g} eV"
    )


def labels_left(state: StopState, rules: StopRules) -> int | None:
    """Labels the budget still allows (cap the next batch with it); ``None`` when unlimited."""
    if rules.max_labels is None:
        return None
    return max(0, rules.max_labels - state.labels_used)
