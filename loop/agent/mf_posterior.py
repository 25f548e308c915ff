"""The DFT-level posterior of the pool, built in one place for everyone who reads σ.

The ensemble predicts at the target (DFT) fidelity; a pair with an MLIP label is predicted
*with* it (the Δ-learning head corrects it). Under `escalation.anchor_surfaces` a pair on a
surface whose MLIP-to-DFT gap no DFT label has shown yet gets the spread of the anchored
surfaces' mean gaps added to its σ (`mf_acquisition.surface_gap_sigma`): the ensemble trained on
the anchored surfaces does not know how wrong it is on the others. The cost-aware planner
(`mf_planning.plan_mf_batch`) chooses with this posterior and the dashboard's pool view
(`face.model_view.pool_scores`) shows it, so both read the same μ and σ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from alloop.loop.agent.mf_acquisition import surface_gap_sigma
from alloop.loop.bridges.surrogate import AdsMTEnsemble, PoolView
from alloop.loop.config import EscalationSection
from alloop.store.records import PairRecord

__all__ = ["DFTLevelPosterior", "dft_level_posterior", "gap_sigma_applies", "surface_gaps"]


@dataclass(frozen=True)
class DFTLevelPosterior:
    """μ and σ (eV, `P` tensors in the order of the pairs asked for), the σ added for an
    unknown surface gap (None: none added), and how many surfaces have a known gap."""

    mean_ev: Tensor
    std_ev: Tensor
    gap_sigma_ev: float | None
    anchored_surfaces: int


def surface_gaps(
    pool: PoolView, target: Mapping[int, float], low: Mapping[int, float]
) -> dict[str, list[float]]:
    """Surface key -> DFT minus MLIP label of each of its pairs that has both (eV)."""
    surface = {p.id: p.surface_key for p in pool.pairs}
    gaps: dict[str, list[float]] = {}
    for pair_id in sorted(set(target) & set(low)):
        gaps.setdefault(surface[pair_id], []).append(target[pair_id] - low[pair_id])
    return gaps


def gap_sigma_applies(section: EscalationSection) -> bool:
    """Whether σ carries the unknown surface gap (``anchor_surfaces=`` of
    `dft_level_posterior`): under the cost-aware policy with `escalation.anchor_surfaces`, the
    only policy that plans with this posterior."""
    return section.cost_aware and section.anchor_surfaces


def dft_level_posterior(
    ensemble: AdsMTEnsemble,
    pool: PoolView,
    pairs: Sequence[PairRecord],
    target: Mapping[int, float],
    low: Mapping[int, float],
    *,
    anchor_surfaces: bool,
) -> DFTLevelPosterior:
    """The posterior of ``pairs`` (see the module docstring). ``target``, ``low``: pair id ->
    the target and the MLIP label that count (`labels.counted_energies` per class)."""
    slabs, smiles, pair_index = pool.index_tensors(pairs)
    low_ev = torch.tensor([low.get(p.id, math.nan) for p in pairs], dtype=torch.float64)
    pred = ensemble.predict(slabs, smiles, pair_index, low_fidelity_ev=low_ev)
    sigma = pred.std_ev.double()
    gaps = surface_gaps(pool, target, low)
    gap_sigma = surface_gap_sigma(gaps) if anchor_surfaces else None
    if gap_sigma is not None:
        unanchored = torch.tensor([p.surface_key not in gaps for p in pairs])
        sigma = torch.where(unanchored, torch.sqrt(sigma**2 + gap_sigma**2), sigma)
    return DFTLevelPosterior(pred.mean_ev, sigma, gap_sigma, len(gaps))
