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

__all__ = ["binding_sites", "chosen_labels", "training_samples"]


def binding_sites(labels: list[LabelSummary]) -> dict[int, tuple[int, ...]]:
    """Pair id -> its binding atoms: those of the label that counts (`labels_that_count`,
    usable) among the pair's labels that name them (today an MLIP label's minimum; a DFT label
    that names none leaves the MLIP label's site in place). Every sample of the pair trains
    toward it: the site is where the adsorbate sits, not a value of one fidelity."""
    named = [lab for lab in labels if lab.binding_atoms is not None]
    counted = labels_that_count(named, usable=True).values()
    return {lab.pair_id: lab.binding_atoms for lab in counted}  # type: ignore[misc]


def chosen_labels(labels: list[LabelSummary], fidelity_mode: str) -> list[ChosenLabel]:
    """The labels that train, in pair-id order (target before low per pair): one per pair for
    ``supersede``, else one per pair and fidelity class; each with its pair's binding atoms
    (`binding_sites`) where the summaries carry them."""
    sites = binding_sites(labels)
    if fidelity_mode == "supersede":
        counted = labels_that_count(labels, usable=True).values()
        return [
            ChosenLabel(
                lab.pair_id,
                float(lab.gmae_ev),  # type: ignore[arg-type]
                is_low_fidelity(lab.fidelity),
                sites.get(lab.pair_id),
            )
            for lab in sorted(counted, key=lambda lab: lab.pair_id)
        ]
    target = counted_energies(labels, fidelities=TARGET_FIDELITIES)
    low = counted_energies(labels, fidelities=LOW_FIDELITIES)
    out = []
    for pair_id in sorted(set(target) | set(low)):
        if pair_id in target:
            out.append(ChosenLabel(pair_id, target[pair_id], False, sites.get(pair_id)))
        if pair_id in low:
            out.append(ChosenLabel(pair_id, low[pair_id], True, sites.get(pair_id)))
    return out


def training_samples(
    store: CampaignStore,
    pool: PoolView,
    fidelity_mode: str = "supersede",
    *,
    sites: bool = False,
) -> list[tuple[PairRecord, SurrogateSample]]:
    """The surrogate's training samples of the campaign's labels (`chosen_labels`); with
    ``sites`` (a site loss is configured), each carries its pair's binding atoms."""
    summaries = store.label_summaries(sites=sites)
    return surrogate_samples(pool, chosen_labels(summaries, fidelity_mode))
