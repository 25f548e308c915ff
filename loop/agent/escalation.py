"""Which labelled pairs go to DFT, and why (the reason-coded `rules` policy).

Escalation (step 5 of a round): each labelled pair is checked against the policy's reasons in
priority order and gets the first that applies; eligible pairs are sorted by (reason priority,
the reason's own key, pair id) and cut to the DFT budget. The same inputs always give the same
decisions in the same order, so a resumed round escalates the same pairs. The thresholds'
defaults are the config's (`EscalationSection`), one source for both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alloop.loop.agent.acquisition import AcquisitionError
from alloop.loop.agent.labels import LABEL_STATUSES
from alloop.loop.config import EscalationReason, EscalationSection

logger = logging.getLogger(__name__)

__all__ = [
    "EscalationCandidate",
    "EscalationDecision",
    "EscalationPolicy",
    "EscalationReason",
    "plan_escalations",
]

#: the config section's defaults: the one source of the policy's defaults
_DEFAULTS = EscalationSection()


@dataclass(frozen=True)
class EscalationCandidate:
    """A labelled pair as the escalation policy sees it (energies in eV)."""

    pair_id: int
    mlip_gmae_ev: float | None
    status: str
    mu_ev: float | None
    sigma_ev: float | None
    committee_disagreement_ev: float | None
    already_escalated: bool


@dataclass(frozen=True)
class EscalationDecision:
    pair_id: int
    reason_code: EscalationReason
    detail: str


@dataclass(frozen=True)
class EscalationPolicy:
    """What sends a pair to DFT, in which priority, and how many.

    Attributes:
        dft_budget: DFT calculations allowed over the whole campaign.
        per_round: DFT calculations allowed per round.
        reasons: Enabled reasons, highest priority first; a reason not listed never fires.
        target_window_ev: ``(lo, hi)`` for ``IN_WINDOW_CONFIDENT``.
        sigma_max_ev: σ at or below which a prediction counts as confident.
        disagreement_ev: Committee disagreement above which the label is doubted.
        strong_binder_k: ``STRONG_BINDER`` considers the k lowest usable labels.
    """

    dft_budget: int
    per_round: int
    reasons: tuple[EscalationReason, ...] = tuple(EscalationReason)
    target_window_ev: tuple[float, float] | None = None
    sigma_max_ev: float = _DEFAULTS.sigma_max_ev
    disagreement_ev: float = _DEFAULTS.disagreement_ev
    strong_binder_k: int = _DEFAULTS.strong_binder_k

    def __post_init__(self) -> None:
        for name in ("dft_budget", "per_round", "strong_binder_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise AcquisitionError(f"{name} must be an integer >= 0, got {value!r}")
        valid = [r.value for r in EscalationReason]
        try:
            reasons = tuple(EscalationReason(r) for r in self.reasons)
        except ValueError:
            raise AcquisitionError(
                f"unknown escalation reason in {list(self.reasons)}; valid: {valid}"
            ) from None
        if len(set(reasons)) != len(reasons):
            raise AcquisitionError(f"escalation reasons repeat: {[r.value for r in reasons]}")
        object.__setattr__(self, "reasons", reasons)
        for name in ("sigma_max_ev", "disagreement_ev"):
            value = getattr(self, name)
            if not (0.0 <= value < math.inf):
                raise AcquisitionError(f"{name} must be finite and >= 0, got {value!r}")
        window = self.target_window_ev
        if window is not None and not window[0] < window[1]:
            raise AcquisitionError(f"target_window_ev must be (lo, hi), lo < hi; got {window!r}")
        if EscalationReason.IN_WINDOW_CONFIDENT in reasons and window is None:
            raise AcquisitionError(
                "reason IN_WINDOW_CONFIDENT needs target_window_ev; set it or drop the reason"
            )
        if EscalationReason.STRONG_BINDER in reasons and self.strong_binder_k == 0:
            raise AcquisitionError(
                "reason STRONG_BINDER needs strong_binder_k >= 1; set it or drop the reason"
            )


def plan_escalations(
    candidates: Sequence[EscalationCandidate], policy: EscalationPolicy, *, dft_spent: int
) -> list[EscalationDecision]:
    """Choose the pairs to send to DFT this round.

    Args:
        candidates: Every labelled pair (already-escalated ones still count when ranking the
            strongest binders, but are never escalated twice).
        policy: Reasons, thresholds and budgets.
        dft_spent: DFT calculations already used by this campaign.

    Returns:
        At most ``min(per_round, dft_budget - dft_spent)`` decisions, ordered by reason
        priority, then the reason's key (σ, label, disagreement), then pair id.
    """
    if isinstance(dft_spent, bool) or not isinstance(dft_spent, int) or dft_spent < 0:
        raise AcquisitionError(f"dft_spent must be an integer >= 0, got {dft_spent!r}")
    _check_candidates(candidates)
    strong = _strongest(candidates, policy.strong_binder_k)
    eligible: list[tuple[tuple[int, float, int], EscalationDecision]] = []
    for cand in candidates:
        if cand.already_escalated:
            continue
        for priority, reason in enumerate(policy.reasons):
            found = _match(reason, cand, policy, strong)
            if found is not None:
                key, detail = found
                decision = EscalationDecision(cand.pair_id, reason, detail)
                eligible.append(((priority, key, cand.pair_id), decision))
                break
    eligible.sort(key=lambda item: item[0])
    slots = max(0, min(policy.per_round, policy.dft_budget - dft_spent))
    if len(eligible) > slots:
        logger.info(
            "DFT budget: escalating %d of %d eligible pairs (%d of %d spent)",
            slots,
            len(eligible),
            dft_spent,
            policy.dft_budget,
        )
    return [decision for _, decision in eligible[:slots]]


def _check_candidates(candidates: Sequence[EscalationCandidate]) -> None:
    seen: set[int] = set()
    for cand in candidates:
        if cand.status not in LABEL_STATUSES:
            raise AcquisitionError(
                f"pair {cand.pair_id}: unknown status {cand.status!r}; "
                f"valid: {list(LABEL_STATUSES)}"
            )
        if cand.pair_id in seen:
            raise AcquisitionError(f"pair {cand.pair_id} appears twice among the candidates")
        seen.add(cand.pair_id)
        for name in ("mlip_gmae_ev", "mu_ev", "sigma_ev", "committee_disagreement_ev"):
            value = getattr(cand, name)
            if value is not None and not math.isfinite(value):
                raise AcquisitionError(f"pair {cand.pair_id}: {name} is {value!r}")


def _strongest(candidates: Sequence[EscalationCandidate], k: int) -> dict[int, int]:
    """pair id -> 1-based rank among the k lowest usable labels (ties broken by pair id)."""
    usable = [c for c in candidates if c.status == "ok" and c.mlip_gmae_ev is not None]
    usable.sort(key=lambda c: (c.mlip_gmae_ev, c.pair_id))
    return {c.pair_id: rank for rank, c in enumerate(usable[:k], start=1)}


def _match(
    reason: EscalationReason,
    cand: EscalationCandidate,
    policy: EscalationPolicy,
    strong: Mapping[int, int],
) -> tuple[float, str] | None:
    """(sort key within the reason, detail) when ``reason`` applies to ``cand``."""
    if reason is EscalationReason.IN_WINDOW_CONFIDENT:
        if cand.mu_ev is None or cand.sigma_ev is None or policy.target_window_ev is None:
            return None
        lo, hi = policy.target_window_ev
        if lo <= cand.mu_ev <= hi and cand.sigma_ev <= policy.sigma_max_ev:
            return cand.sigma_ev, (
                f"mu={cand.mu_ev:.3f} eV in [{lo:g}, {hi:g}], "
                f"sigma={cand.sigma_ev:.3f} <= {policy.sigma_max_ev:g} eV"
            )
    elif reason is EscalationReason.STRONG_BINDER:
        if cand.pair_id in strong:
            rank = strong[cand.pair_id]
            return float(rank), (
                f"label {cand.mlip_gmae_ev:.3f} eV ranks {rank} of the "
                f"{policy.strong_binder_k} strongest"
            )
    elif reason is EscalationReason.ORACLE_DISAGREEMENT:
        spread = cand.committee_disagreement_ev
        if spread is not None and spread > policy.disagreement_ev:
            return -spread, f"oracle disagreement {spread:.3f} > {policy.disagreement_ev:g} eV"
    elif cand.status == "anomalous":  # ANOMALOUS
        return 0.0, "MLIP label flagged anomalous"
    return None
