"""What the surrogate trains on (step 1 of a round), by the one label rule.

With `surrogate.fidelity_mode: supersede` each pair trains on the label that counts
(`labels.labels_that_count`, usable only: a DFT label supersedes the MLIP label, both stay in
the store); the other modes train on the pair's target label (DFT or replay) *and* its MLIP
label, each the one that counts within its fidelity class, and predict at the target fidelity
(`alloop.surrogate.fidelity`). The bridge (`bridges.surrogate.surrogate_samples`) only turns
the choice into the surrogate's samples.
"""

from __future__ import annotations

from alloop.loop.agent.labels import (
    LOW_FIDELITIES,
    TARGET_FIDELITIES,
    counted_energies,
    is_low_fidelity,
    labels_that_count,
)
from alloop.loop.bridges.surrogate import (
    ChosenLabel,
    PoolView,
    SurrogateSample,
    surrogate_samples,
)
from alloop.store import CampaignStore
from alloop.store.records import LabelSummary, PairRecord

__all__ = ["chosen_labels", "training_samples"]


def chosen_labels(labels: list[LabelSummary], fidelity_mode: str) -> list[ChosenLabel]:
    """The labels that train, in pair-id order (target before low per pair): one per pair for
    ``supersede``, else one per pair and fidelity class."""
    if fidelity_mode == "supersede":
        counted = labels_that_count(labels, usable=True).values()
        return [
            ChosenLabel(lab.pair_id, float(lab.gmae_ev), is_low_fidelity(lab.fidelity))  # type: ignore[arg-type]
            for lab in sorted(counted, key=lambda lab: lab.pair_id)
        ]
    target = counted_energies(labels, fidelities=TARGET_FIDELITIES)
    low = counted_energies(labels, fidelities=LOW_FIDELITIES)
    out = []
    for pair_id in sorted(set(target) | set(low)):
        if pair_id in target:
            out.append(ChosenLabel(pair_id, target[pair_id], low_fidelity=False))
        if pair_id in low:
            out.append(ChosenLabel(pair_id, low[pair_id], low_fidelity=True))
    return out


def training_samples(
    store: CampaignStore, pool: PoolView, fidelity_mode: str = "supersede"
) -> list[tuple[PairRecord, SurrogateSample]]:
    """The surrogate's training samples of the campaign's labels (`chosen_labels`)."""
    return surrogate_samples(pool, chosen_labels(store.label_summaries(), fidelity_mode))
