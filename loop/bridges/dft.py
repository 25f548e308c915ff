"""From campaign state to DFT escalation (step 5 of a round).

The policy and the DFT settings come from the `escalation` section; the candidates from the
store: one per pair with an ``ok`` MLIP label (its value, the committee disagreement the MLIP
oracle wrote as ``uncertainty_ev``, and μ, σ of the pair's latest acquisition). Only ``ok``
MLIP labels are candidates because `DFTOracle.escalate` starts from the MLIP minimum and the
MLIP oracle stores no structure for anomalous or failed labels; so the ``ANOMALOUS`` reason
cannot fire with the present oracles, and no DFT budget is spent on a calculation that would
fail for want of a structure.

`EscalatingOracle` turns "escalate this pair from its stored MLIP minimum" into the `Oracle`
protocol the executors take, so DFT jobs fan out like labelling jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alloop.loop.agent.escalation import EscalationCandidate, EscalationPolicy, plan_escalations
from alloop.loop.agent.fidelities import DFT_FIDELITIES
from alloop.loop.config import AlloopConfig, EscalationSection
from alloop.loop.errors import LoopError
from alloop.oracles.dft_settings import DFTOracleSettings
from alloop.oracles.types import OraclePair, OracleResult
from alloop.store import CampaignStore
from alloop.store.records import JobRecord, LabelRecord, NewJob
from alloop.store.structures import atoms_from_json


def escalation_policy(section: EscalationSection) -> EscalationPolicy:
    """The policy of a resolved `escalation` section (see `config.parse_config`)."""
    return EscalationPolicy(
        dft_budget=section.dft_budget,
        per_round=section.per_round,
        reasons=section.reasons,  # type: ignore[arg-type]  # codes; the policy converts them
        target_window_ev=section.target_window_ev,
        sigma_max_ev=section.sigma_max_ev,
        disagreement_ev=section.disagreement_ev,
        strong_binder_k=section.strong_binder_k,
    )


def dft_settings(section: EscalationSection) -> DFTOracleSettings:
    return DFTOracleSettings.from_dict({**section.dft, "mode": section.mode})


def dft_fidelity(section: EscalationSection) -> str:
    return "dft_single_point" if section.mode == "single_point" else "dft_relax"


def build_dft_oracle(cfg: AlloopConfig) -> Any:
    """The DFT oracle of escalations: the FG table for `mf_replay`, else a real DFT code."""
    if cfg.oracle.kind == "mf_replay":
        from alloop.loop.bridges.oracle import replay_root
        from alloop.oracles.lowfi_replay import DFTReplayOracle
        from alloop.oracles.replay import ReplayOracle

        return DFTReplayOracle(ReplayOracle(replay_root(cfg), load_structures=False))
    from alloop.oracles.dft import DFTOracle

    return DFTOracle(dft_settings(cfg.escalation))


def is_dft_job(job: JobRecord) -> bool:
    return job.kind in DFT_FIDELITIES


def escalation_candidates(store: CampaignStore) -> list[EscalationCandidate]:
    """One candidate per pair with an ``ok`` MLIP label, in pair-id order.

    A pair counts as escalated once it has a DFT label or a DFT job (whatever its state).
    """
    labels = store.labels()
    escalated = {lab.pair_key for lab in labels if lab.fidelity in DFT_FIDELITIES}
    escalated |= {job.pair_key for job in store.jobs() if is_dft_job(job)}
    latest = {a.pair_key: a for a in store.acquisitions()}  # ordered by round: last wins
    mlip = {lab.pair_id: lab for lab in labels if lab.fidelity == "mlip" and lab.status == "ok"}
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


def start_result(label: LabelRecord) -> OracleResult:
    """The MLIP `OracleResult` a stored label came from (best structure out of provenance)."""
    provenance = dict(label.provenance)
    text = provenance.pop("best_structure", None)
    return OracleResult(
        label.pair_key,
        label.gmae_ev,
        label.status,  # type: ignore[arg-type]  # the store's CHECK keeps it a Status
        label.fidelity,  # type: ignore[arg-type]
        provenance,
        atoms_from_json(text) if text else None,
    )


def mlip_start(store: CampaignStore, pair_key: str) -> OracleResult:
    """The start of a DFT job: the pair's latest ``ok`` MLIP label."""
    found = [lab for lab in store.labels(pair_key) if lab.fidelity == "mlip" and lab.status == "ok"]
    if not found:
        raise LoopError(f"DFT job for {pair_key!r} but the pair has no ok MLIP label to start from")
    return start_result(found[-1])


@dataclass(frozen=True)
class EscalatingOracle:
    """An `Oracle` that labels a pair by ``dft.escalate(pair, starts[pair.key])``.

    ``dft``: a `DFTOracle` or anything with its ``escalate`` and ``fidelity``; ``starts``:
    pair key -> the MLIP result to start from. Picklable when ``dft`` is, so process and Dask
    executors can run it.
    """

    dft: Any
    starts: Mapping[str, OracleResult]

    @property
    def fidelity(self) -> str:
        """What the executors stamp on results they make up (time limit, dead worker)."""
        return str(self.dft.fidelity)

    def label(self, pair: OraclePair) -> OracleResult:
        return self.dft.escalate(pair, self.starts[pair.key])  # type: ignore[no-any-return]
