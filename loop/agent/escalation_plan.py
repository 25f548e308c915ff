"""From campaign state to a round's DFT jobs under the reason-coded `rules` policy (step 5).

The policy and its thresholds come from the `escalation` section; the candidates from the
store: one per pair with an ``ok`` MLIP label (its value, the committee disagreement the MLIP
oracle wrote as ``uncertainty_ev``, and μ, σ of the pair's latest acquisition). Only ``ok``
MLIP labels are candidates because `DFTOracle.escalate` starts from the MLIP minimum and the
MLIP oracle stores no structure for anomalous or failed labels; so the ``ANOMALOUS`` reason
cannot fire with the present oracles, and no DFT budget is spent on a calculation that would
fail for want of a structure. The jobs run through `alloop.loop.bridges.dft.EscalatingOracle`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alloop.loop.agent.escalation import EscalationCandidate, EscalationPolicy, plan_escalations
from alloop.loop.agent.labels import DFT_FIDELITIES, Fidelity, LabelStatus, dft_fidelity, is_dft_job
from alloop.loop.config import EscalationReason, EscalationSection
from alloop.store import CampaignStore
from alloop.store.records import NewJob

__all__ = ["escalation_candidates", "escalation_policy", "plan_round"]


def escalation_policy(section: EscalationSection) -> EscalationPolicy:
    """The policy of a resolved `escalation` section (see `config.parse_config`)."""
    return EscalationPolicy(
        dft_budget=section.dft_budget,
        per_round=section.per_round,
        reasons=tuple(EscalationReason(r) for r in section.reasons),
        target_window_ev=section.target_window_ev,
        sigma_max_ev=section.sigma_max_ev,
        disagreement_ev=section.disagreement_ev,
        strong_binder_k=section.strong_binder_k,
    )


def escalation_candidates(store: CampaignStore) -> list[EscalationCandidate]:
    """One candidate per pair with an ``ok`` MLIP label, in pair-id order.

    A pair counts as escalated once it has a DFT label or a DFT job (whatever its state).
    """
    labels = store.labels()
    escalated = {lab.pair_key for lab in labels if lab.fidelity in DFT_FIDELITIES}
    escalated |= {job.pair_key for job in store.jobs() if is_dft_job(job)}
    latest = {a.pair_key: a for a in store.acquisitions()}  # ordered by round: last wins
    mlip = {
        lab.pair_id: lab
        for lab in labels
        if lab.fidelity == Fidelity.MLIP and lab.status == LabelStatus.OK
    }
    out = []
    for pair_id in sorted(mlip):
        lab = mlip[pair_id]
        acq = latest.get(lab.pair_key)
        spread = lab.provenance.get("uncertainty_ev")
        out.append(
            EscalationCandidate(
                pair_id=pair_id,
                mlip_gmae_ev=lab.gmae_ev,
                status=lab.status,
                mu_ev=acq.mu_ev if acq is not None else None,
                sigma_ev=acq.sigma_ev if acq is not None else None,
                committee_disagreement_ev=float(spread) if spread is not None else None,
                already_escalated=lab.pair_key in escalated,
            )
        )
    return out


def plan_round(
    store: CampaignStore, section: EscalationSection, index: int, pair_keys: Mapping[int, str]
) -> tuple[list[NewJob], list[tuple[str, dict[str, Any]]]]:
    """Round `index`'s escalations: DFT jobs (key ``r{index}:{fidelity}:{pair}``, kind the
    fidelity) and one ``escalated`` event each (pair, reason code, detail), in decision order.

    ``dft_spent`` is every DFT job of the campaign, whatever its state: a failed DFT run
    spent its budget too. ``pair_keys``: pair id -> pair key.
    """
    spent = sum(is_dft_job(j) for j in store.jobs())
    decisions = plan_escalations(
        escalation_candidates(store), escalation_policy(section), dft_spent=spent
    )
    kind = dft_fidelity(section)
    jobs, events = [], []
    for d in decisions:
        pair = pair_keys[d.pair_id]
        jobs.append(NewJob.for_round(index, pair, kind))
        events.append(
            ("escalated", {"pair": pair, "reason": d.reason_code.value, "detail": d.detail})
        )
    return jobs, events
