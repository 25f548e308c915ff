"""Round metrics (step 6 of a round) and the label counts the stop rules read.

Which label of a pair counts is `labels.labels_that_count` (usable labels only). A round's
batch is scored against it: the batch MAE and 95 % coverage of the μ, σ the acquisitions were
chosen with. When the surrogate predicts at the
target fidelity (any mode but `supersede`, or the cost-aware policy) μ, σ are DFT-level, so
they are scored against DFT-level labels only.
"""

from __future__ import annotations

import time
from typing import Any

from alloop.loop.agent.costs import cost_by_fidelity, cost_spent
from alloop.loop.agent.labels import (
    TARGET_FIDELITIES,
    counted_energies,
    labels_that_count,
    pairs_labelled,
)
from alloop.loop.bridges.surrogate import PoolView
from alloop.loop.config import AlloopConfig
from alloop.store import CampaignStore
from alloop.store.records import RoundRecord

#: the timed steps of a round; the rest of its wall time is reported as ``overhead_s``
TIMED_STEPS = ("train_s", "label_s", "escalate_s")


def counted_labels(store: CampaignStore) -> dict[str, float]:
    """Pair key -> the label that counts for it (highest usable fidelity, then newest), eV."""
    counted = labels_that_count(store.label_summaries(), usable=True)
    return {key: float(lab.gmae_ev) for key, lab in counted.items()}  # type: ignore[arg-type]


def best_label(store: CampaignStore) -> float | None:
    return min(counted_labels(store).values(), default=None)


def labels_used(store: CampaignStore) -> int:
    """Pairs with any label (ok or not): what ``budget.max_labels`` counts."""
    return pairs_labelled(store.label_summaries())


def close_metrics(
    store: CampaignStore, cfg: AlloopConfig, pool: PoolView, rnd: RoundRecord
) -> dict[str, Any]:
    """The metrics a round closes with: labels, best values, cost, batch error and coverage,
    and the step timings with the round's unaccounted ``overhead_s``."""
    index = rnd.index
    labels = counted_labels(store)
    target = counted_energies(store.label_summaries(), fidelities=TARGET_FIDELITIES)
    if cfg.surrogate.mode != "supersede" or cfg.escalation.cost_aware:
        keys = {p.id: p.key for p in pool.pairs}
        labels = {keys[pair_id]: ev for pair_id, ev in target.items()}
    errors, covered = [], 0
    for acq in store.acquisitions(round_index=index):
        label_ev = labels.get(acq.pair_key)
        if label_ev is None or acq.mu_ev is None or acq.sigma_ev is None:
            continue
        err = abs(acq.mu_ev - label_ev)
        errors.append(err)
        covered += err <= 1.96 * acq.sigma_ev
    jobs = store.jobs()
    metrics: dict[str, Any] = {
        "n_labels": labels_used(store),
        "best_gmae_ev": best_label(store),
        "n_target_labels": len(target),
        "best_target_ev": min(target.values(), default=None),
        "cost_round": cost_spent(jobs, cfg.cost, index),
        "cost_total": cost_spent(jobs, cfg.cost),
        "cost_by_fidelity": cost_by_fidelity(jobs, cfg.cost),
    }
    metrics["n_batch_scored"] = len(errors)  # the size of the two below, shown with them
    if errors:
        metrics["batch_mae_ev"] = sum(errors) / len(errors)
        metrics["batch_coverage_95"] = covered / len(errors)
    timing = rnd.metrics.get("timing", {})
    spent = sum(timing.get(k, 0.0) for k in TIMED_STEPS)
    total = time.time() - rnd.started_at.timestamp()
    metrics["timing"] = {**timing, "overhead_s": max(0.0, total - spent)}
    return metrics
