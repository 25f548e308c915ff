"""From campaign state to a cost-aware batch over (pair, fidelity), and its first DFT labels.

`plan_mf_batch` is step 3 of a round under ``escalation.policy: cost_aware``: it takes the
DFT-level posterior of every candidate from the round's ensemble (`mf_posterior`: pairs with
an MLIP label are predicted with it, so a Δ-learning model corrects it; σ grows on surfaces
whose fidelity gap is not known yet), and hands the choice to
`alloop.loop.agent.mf_acquisition.plan_cost_aware`. The MLIP picks become this round's labelling
jobs (step 4), the DFT picks its DFT jobs (step 5), each DFT pick with an ``escalated`` event
that names the value and cost it was chosen for; all commit in one transaction.

`cold_start_dft` gives a campaign its first DFT labels (step 5 of the first round with MLIP
labels): ``escalation.per_round`` MLIP-labelled pairs, the MLIP-strongest of distinct surfaces
with ``escalation.anchor_surfaces`` (else random), so the fidelity gap can be learned.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import torch

from alloop.loop.agent.acquisition import kth_best
from alloop.loop.agent.costs import cost_spent, fidelity_cost
from alloop.loop.agent.labels import (
    LOW_FIDELITIES,
    TARGET_FIDELITIES,
    Fidelity,
    counted_energies,
    dft_fidelity,
    is_dft_job,
)
from alloop.loop.agent.mf_acquisition import FidelityCandidate, plan_cost_aware
from alloop.loop.agent.mf_posterior import dft_level_posterior
from alloop.loop.agent.planning import PlannedBatch, site_score_events
from alloop.loop.bridges.surrogate import AdsMTEnsemble, PoolView
from alloop.loop.config import AlloopConfig
from alloop.store import CampaignStore
from alloop.store.records import NewAcquisition, NewJob, PairRecord

MF_ACQUISITION = "mf_ei"
#: reason codes of DFT decisions made by the cost-aware policy
REASON_VALUE_PER_COST = "VALUE_PER_COST"
REASON_COLD_START = "COLD_START"


def round_cost(cfg: AlloopConfig, spent: float) -> float:
    """Cost units one round may spend: ``batch_size`` MLIP labels plus ``per_round`` DFT
    labels, capped by what ``budget.max_cost`` leaves."""
    budget = cfg.acquisition.batch_size * fidelity_cost(
        Fidelity.MLIP, cfg.cost
    ) + cfg.escalation.per_round * fidelity_cost(dft_fidelity(cfg.escalation), cfg.cost)
    if cfg.budget.max_cost is not None:
        budget = min(budget, max(0.0, cfg.budget.max_cost - spent))
    return budget


class MFCandidates(NamedTuple):
    """``for_mlip``: pairs with no label and no job; ``for_dft``: pairs with an ok MLIP label,
    no target label and no DFT job (with that MLIP label, eV); ``target`` and ``low``: pair id
    -> the target and the MLIP label that count (`labels.counted_energies` per class)."""

    for_mlip: list[PairRecord]
    for_dft: list[tuple[PairRecord, float]]
    target: dict[int, float]
    low: dict[int, float]


def mf_candidates(store: CampaignStore, pool: PoolView) -> MFCandidates:
    """What a cost-aware batch can choose from (see `MFCandidates`)."""
    summaries = store.label_summaries()
    target = counted_energies(summaries, fidelities=TARGET_FIDELITIES)
    low = counted_energies(summaries, fidelities=LOW_FIDELITIES)
    labelled = {lab.pair_key for lab in summaries}
    jobs = store.jobs()
    with_job = {j.pair_key for j in jobs}
    with_dft_job = {j.pair_key for j in jobs if is_dft_job(j)}
    for_mlip = [p for p in pool.pairs if p.key not in labelled and p.key not in with_job]
    for_dft = [
        (p, low[p.id])
        for p in pool.pairs
        if p.id in low and p.id not in target and p.key not in with_dft_job
    ]
    return MFCandidates(for_mlip, for_dft, target, low)


def plan_mf_batch(
    store: CampaignStore,
    pool: PoolView,
    ensemble: AdsMTEnsemble,
    cfg: AlloopConfig,
    index: int,
) -> PlannedBatch:
    """Step 3 under the cost-aware policy (see the module docstring): the acquisitions with
    their own jobs (each asks for its fidelity), the DFT picks' events, the round's metrics."""
    t0 = time.perf_counter()
    for_mlip, for_dft, target, low_labels = mf_candidates(store, pool)
    pairs = for_mlip + [p for p, _ in for_dft]
    spent = cost_spent(store.jobs(), cfg.cost)
    budget = round_cost(cfg, spent)
    if not pairs or budget <= 0:
        timing = {"acquire_s": time.perf_counter() - t0}
        return PlannedBatch([], {"n_scored": 0, "round_cost": budget, "timing": timing}, jobs=[])
    post = dft_level_posterior(ensemble, pool, pairs, target, low_labels,
                               escalation=cfg.escalation)  # fmt: skip
    dft_kind = dft_fidelity(cfg.escalation)
    mlip_kind = Fidelity.MLIP.value
    candidates = [
        FidelityCandidate(
            p.key,
            mlip_kind if i < len(for_mlip) else dft_kind,
            float(post.mean_ev[i]),
            float(post.std_ev[i]),
            fidelity_cost(mlip_kind if i < len(for_mlip) else dft_kind, cfg.cost),
        )
        for i, p in enumerate(pairs)
    ]
    best = kth_best(list(target.values()), post.mean_ev.tolist(), cfg.acquisition.top_k)
    picks = plan_cost_aware(candidates, best, budget, {mlip_kind: cfg.acquisition.batch_size})
    acquisitions, jobs, events = [], [], []
    for pick in picks:
        c = pick.candidate
        acquisitions.append(
            NewAcquisition(c.pair_key, pick.rank, pick.score, c.mu_ev, c.sigma_ev,
                           MF_ACQUISITION, pick.describe(), value=pick.value, ei_ev=pick.ei_ev,
                           threshold_ev=best, cost=c.cost, fidelity=c.fidelity)
        )  # fmt: skip
        jobs.append(NewJob.for_round(index, c.pair_key, c.fidelity))
        if c.fidelity != mlip_kind:
            events.append(
                ("escalated", {"pair": c.pair_key, "reason": REASON_VALUE_PER_COST,
                               "detail": pick.describe(), "value": pick.value,
                               "cost": c.cost, "mu_ev": c.mu_ev, "sigma_ev": c.sigma_ev})
            )  # fmt: skip
    by_key = {p.key: p for p in for_mlip}
    mlip_picks = [by_key[c.candidate.pair_key] for c in picks if c.candidate.fidelity == mlip_kind]
    events += site_score_events(ensemble, pool, mlip_picks)
    metrics = {
        "n_scored": len(pairs),
        "round_cost": budget,
        "ei_threshold_ev": best,
        "surface_gap_sigma_ev": post.gap_sigma_ev,
        "anchored_surfaces": post.anchored_surfaces,
        "planned": {
            "mlip": sum(c.candidate.fidelity == mlip_kind for c in picks),
            "dft": sum(c.candidate.fidelity != mlip_kind for c in picks),
        },
        "timing": {"acquire_s": time.perf_counter() - t0},
    }
    return PlannedBatch(acquisitions, metrics, events, jobs)


def cold_start_dft(
    store: CampaignStore, cfg: AlloopConfig, index: int, generator: torch.Generator
) -> tuple[list[NewJob], list[tuple[str, dict[str, Any]]]]:
    """The campaign's first DFT jobs: none once any DFT label or job exists; else
    ``escalation.per_round`` pairs among those with an ok MLIP label. With
    ``escalation.anchor_surfaces`` (the default) they anchor the surfaces: the MLIP-strongest
    pair of each surface, surfaces in a seeded random order, round-robin when there are fewer
    surfaces than picks; without, random pairs."""
    if any(is_dft_job(j) for j in store.jobs()):
        return [], []
    summaries = store.label_summaries()
    target = counted_energies(summaries, fidelities=TARGET_FIDELITIES)
    low = counted_energies(summaries, fidelities=LOW_FIDELITIES)
    if target or not low:
        return [], []
    keys = {lab.pair_id: lab.pair_key for lab in summaries}
    options = sorted(low)
    n = min(cfg.escalation.per_round, len(options))
    if cfg.escalation.anchor_surfaces:
        surface_of = {p.id: p.surface_key for p in store.pairs()}
        by_surface: dict[str, list[int]] = {}
        for pair_id in sorted(options, key=lambda i: (low[i], i)):
            by_surface.setdefault(surface_of[pair_id], []).append(pair_id)
        surfaces = sorted(by_surface)
        order = [surfaces[int(i)] for i in torch.randperm(len(surfaces), generator=generator)]
        chosen: list[int] = []
        while len(chosen) < n:
            for surface in order:
                if by_surface[surface] and len(chosen) < n:
                    chosen.append(by_surface[surface].pop(0))
        why = "MLIP-strongest pair of its surface (anchors the surface's fidelity gap)"
    else:
        chosen = [options[int(i)] for i in torch.randperm(len(options), generator=generator)[:n]]
        why = "random MLIP-labelled pair"
    kind = dft_fidelity(cfg.escalation)
    cost = fidelity_cost(kind, cfg.cost)
    jobs, events = [], []
    for pair_id in sorted(chosen):
        pair = keys[pair_id]
        jobs.append(NewJob.for_round(index, pair, kind))
        detail = f"cold start: {why} ({n} of {len(options)})"
        events.append(
            ("escalated", {"pair": pair, "reason": REASON_COLD_START, "detail": detail,
                           "value": None, "cost": cost})
        )  # fmt: skip
    return jobs, events
