"""Batch planning: which pairs a round sends to the oracle (step 3 of a round).

* `plan_cold_start`: before any model exists, a random or space-filling batch over the
  descriptor space (`bridges.surrogate.descriptor_space`).
* `plan_batch`: the configured acquisition over the scored pool, its exploit share chosen as a
  diverse batch (`batch.select_batch`), the rest by the explore share (max σ among what the
  exploit part left). Expected improvement is measured against the best label, or with
  ``acquisition.top_k = k`` against the k-th best (`acquisition.shortlist`, as the
  cost-aware policy does). Each acquisition row stores what its pick was chosen with: the
  acquisition's value, the believer's σ, and for EI the improvement (eV) and its threshold;
  the engine adds the fidelity and cost of the job it asks for.
* The cost-aware policy plans over (pair, fidelity) instead: `mf_planning.plan_mf_batch`.

All of them are pure functions of the committed state, the round's ensemble and the round's
seeded generator (`round_generator`), so a resumed round plans the same batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from botorch.posteriors.ensemble import EnsemblePosterior

from alloop.loop.agent.acquisition import (
    AcquisitionContext,
    AcquisitionSpec,
    get_acquisition,
    shortlist,
)
from alloop.loop.agent.batch import BatchPick, select_batch
from alloop.loop.bridges.surrogate import AdsMTEnsemble, PoolView, descriptor_space
from alloop.loop.config import AlloopConfig
from alloop.store import CampaignStore
from alloop.store.records import NewAcquisition, NewJob, PairRecord

#: `acquisition.diversity` -> `select_batch` method
DIVERSITY_METHOD = {"kriging_believer": "kriging_believer", "maxmin": "maxmin", "none": "topk"}
#: `acquisition.cold_start` -> `select_batch` method
COLD_START_METHOD = {"random": "random", "space_filling": "farthest_point"}


#: the event that stores an acquired pair's site scores with its acquisition
SITE_SCORES_EVENT = "site_scores"


@dataclass(frozen=True)
class PlannedBatch:
    """A round's acquisitions, ranked, what planning them measured (``timing``...), the
    events committed with them (the acquired pairs' site scores; the cost-aware policy's
    ``escalated`` events), and their jobs: None when every pick asks for the labelling oracle's
    fidelity (the engine adds it, and its cost, to each row), else one job per acquisition,
    each of the fidelity its row names (the cost-aware policy)."""

    acquisitions: list[NewAcquisition]
    metrics: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    jobs: list[NewJob] | None = None


def site_score_events(
    ensemble: AdsMTEnsemble, pool: PoolView, pairs: Sequence[PairRecord]
) -> list[tuple[str, dict[str, Any]]]:
    """One `SITE_SCORES_EVENT` per pair: the ensemble's cross-attention over the pair's slab
    atoms (slab atom order, sums to 1), as the oracle's placement search takes it."""
    if not pairs:
        return []
    slabs, smiles, index = pool.index_tensors(pairs)
    scores = ensemble.site_scores(slabs, smiles, index)
    return [
        (SITE_SCORES_EVENT, {"pair": p.key, "scores": [round(float(x), 6) for x in row]})
        for p, row in zip(pairs, scores, strict=True)
    ]


def stored_site_scores(store: CampaignStore, index: int) -> dict[str, tuple[float, ...]]:
    """Pair key -> the site scores stored with round ``index``'s acquisitions (none before
    the first model)."""
    return {
        e.payload["pair"]: tuple(e.payload["scores"])
        for e in store.events()
        if e.kind == SITE_SCORES_EVENT and e.round_index == index
    }


def round_generator(seed: int, index: int) -> torch.Generator:
    """The seeded generator of round ``index``'s acquisition (cold start included)."""
    return torch.Generator().manual_seed(seed * 7919 + index)


def batch_size(cfg: AlloopConfig, labels_used: int, *, first: bool) -> int:
    """How many pairs this round may pick: the (initial) batch size, capped by what
    ``budget.max_labels`` leaves; at least one."""
    acq = cfg.acquisition
    q = (acq.initial_batch_size or acq.batch_size) if first else acq.batch_size
    if cfg.budget.max_labels is not None:
        q = min(q, max(0, cfg.budget.max_labels - labels_used))
    return max(q, 1)


def plan_cold_start(
    cfg: AlloopConfig,
    pool: PoolView,
    cands: Sequence[PairRecord],
    q: int,
    generator: torch.Generator,
) -> PlannedBatch:
    t0 = time.perf_counter()
    method = COLD_START_METHOD[cfg.acquisition.cold_start]
    embeddings = (
        descriptor_space(cfg.surrogate, pool, cands) if method == "farthest_point" else None
    )
    selection = select_batch(
        None, embeddings, q, method=method, generator=generator,
        available=torch.ones(len(cands), dtype=torch.bool),
    )  # fmt: skip
    rows = [
        NewAcquisition(cands[p.index].key, p.rank, p.score, None, None, method, p.reason)
        for p in selection.picks
    ]
    return PlannedBatch(rows, {"timing": {"acquire_s": time.perf_counter() - t0}})


def plan_batch(
    cfg: AlloopConfig,
    ensemble: AdsMTEnsemble,
    pool: PoolView,
    cands: Sequence[PairRecord],
    q: int,
    labels_ev: Sequence[float],
    generator: torch.Generator,
) -> PlannedBatch:
    """Step 3 with a model (module docstring). ``labels_ev``: the value of every pair's label
    that counts (usable), eV."""
    t0 = time.perf_counter()
    slabs, smiles, pair_index = pool.index_tensors(cands)
    t_score = time.perf_counter()
    pred = ensemble.predict(slabs, smiles, pair_index, with_embeddings=True)
    score_s = time.perf_counter() - t_score
    posterior = ensemble.pool_posterior(pred)
    acq_cfg = cfg.acquisition
    best_label_ev: float | None
    if acq_cfg.top_k > 1:
        kept = tuple(shortlist(labels_ev, pred.mean_ev.tolist(), acq_cfg.top_k))
        best_label_ev, kept_ev = kept[-1], kept
    else:
        best_label_ev, kept_ev = min(labels_ev, default=None), ()
    context = AcquisitionContext(
        best_label_ev=best_label_ev, target_window_ev=acq_cfg.target_window_ev,
        beta=acq_cfg.beta, q=q, generator=generator, shortlist_ev=kept_ev,
    )  # fmt: skip
    n_explore = min(q - 1, round(acq_cfg.explore_fraction * q)) if q > 1 else 0
    method = DIVERSITY_METHOD[acq_cfg.diversity]
    acquisition = get_acquisition(acq_cfg.name)
    picks = _select(method, acquisition, posterior, pred.embeddings,
                    replace(context, q=q - n_explore), generator, None)  # fmt: skip
    named = [(p, acquisition) for p in picks]
    if n_explore:  # the explore share: max σ among what the exploit part left
        available = torch.ones(len(cands), dtype=torch.bool)
        available[[p.index for p in picks]] = False
        explore = get_acquisition("uncertainty")
        more = _select(method, explore, posterior, pred.embeddings,
                       replace(context, q=n_explore), generator, available)  # fmt: skip
        named += [(replace(p, rank=len(picks) + p.rank), explore) for p in more]
    rows = [
        _row(cands[p.index].key, p, spec, float(pred.mean_ev[p.index]), float(pred.std_ev[p.index]))
        for p, spec in named
    ]
    events = site_score_events(ensemble, pool, [cands[p.index] for p, _ in named])
    timing = {"score_s": score_s, "acquire_s": time.perf_counter() - t0, "n_scored": len(cands)}
    return PlannedBatch(rows, {"timing": timing}, events)


def _row(pair_key: str, pick: BatchPick, spec: AcquisitionSpec, mu: float, sigma: float
         ) -> NewAcquisition:  # fmt: skip
    """A pick as its acquisition row: the facts as fields (μ, σ, believer σ, value; EI and its
    threshold for a log-EI acquisition), the reason as text."""
    ei = spec.log_ei and pick.score is not None
    return NewAcquisition(
        pair_key, pick.rank, pick.score, mu, sigma, spec.name, pick.reason,
        believer_sigma_ev=pick.believer_sigma_ev, value=pick.score,
        ei_ev=math.exp(pick.score) if ei else None,  # type: ignore[arg-type]
        threshold_ev=pick.threshold_ev if ei else None,
    )  # fmt: skip


def _select(
    method: str,
    acquisition: Any,
    posterior: EnsemblePosterior,
    embeddings: torch.Tensor | None,
    context: AcquisitionContext,
    generator: torch.Generator,
    available: torch.Tensor | None,
) -> list[Any]:
    if context.q <= 0:
        return []
    if method == "kriging_believer" and (acquisition.per_slot or not acquisition.conditionable):
        # Thompson slots are diverse by construction; random cannot be rescored by belief
        method = "topk" if acquisition.per_slot else "maxmin"
    selection = select_batch(
        None, embeddings, context.q, method=method, generator=generator, posterior=posterior,
        acquisition=acquisition, context=context, available=available,
    )  # fmt: skip
    return list(selection.picks)
