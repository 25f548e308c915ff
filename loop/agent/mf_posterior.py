"""The DFT-level posterior of the pool, built in one place for everyone who reads σ.

Model → posterior → acquisition: this module is the model and posterior layer of the
multi-fidelity path; `mf_acquisition` scores it, `mf_planning` plans a batch with the scores.

The ensemble predicts at the target (DFT) fidelity; a pair with an MLIP label is predicted
*with* it (the Δ-learning head corrects it). Under the cost-aware policy with
`escalation.anchor_surfaces` (`gap_sigma_applies`), a pair on a surface whose MLIP-to-DFT gap
no DFT label has shown yet gets the spread of the anchored surfaces' mean gaps added to its σ
(`surface_gap_sigma`): the ensemble trained on the anchored surfaces does not know how wrong it
is on the others. `dft_level_posterior` builds it; `PoolGaussianModel` serves it to BoTorch.
Its readers: the cost-aware planner (`mf_planning.plan_mf_batch`), the dashboard's pool view
(`face.model_view.pool_scores`) and the DFT-level answers (`face.answers`), so all of them read
the same μ and σ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from botorch.models.model import Model
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal
from linear_operator.operators import DiagLinearOperator
from torch import Tensor

from alloop.loop.bridges.surrogate import AdsMTEnsemble, PoolView
from alloop.loop.config import EscalationSection
from alloop.store.records import PairRecord

__all__ = [
    "DFTLevelPosterior",
    "PoolGaussianModel",
    "dft_level_posterior",
    "gap_sigma_applies",
    "surface_gap_sigma",
    "surface_gaps",
]


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


def surface_gap_sigma(gaps_by_surface: Mapping[str, Sequence[float]]) -> float | None:
    """What is not known about the fidelity gap of a surface with no DFT label yet (eV).

    The MLIP-to-DFT gap depends on the surface far more than on the pair (SevenNet-MF-0 on the
    FG set: mean per-metal bias from -0.57 eV on Ru to +1.69 eV on Fe,
    `benchmarks/results/lowfi_table.md`), and an ensemble trained on the anchored surfaces
    does not know how wrong it is on the others. So a pair on an unanchored surface gets this
    much more σ: the spread (std) of the mean gaps of the anchored surfaces; with fewer than
    two anchored surfaces, the spread of all observed gaps; None with no gap observed.
    ``gaps_by_surface``: surface -> DFT label minus MLIP label of its pairs that have both."""
    means = [sum(g) / len(g) for g in gaps_by_surface.values() if g]
    if len(means) >= 2:
        return float(torch.tensor(means, dtype=torch.float64).std())
    gaps = [x for g in gaps_by_surface.values() for x in g]
    if len(gaps) >= 2:
        return float(torch.tensor(gaps, dtype=torch.float64).std())
    return None


def gap_sigma_applies(section: EscalationSection) -> bool:
    """Whether σ carries the unknown surface gap: under the cost-aware policy with
    `escalation.anchor_surfaces`, the only policy that plans with this posterior."""
    return section.cost_aware and section.anchor_surfaces


def dft_level_posterior(
    ensemble: AdsMTEnsemble,
    pool: PoolView,
    pairs: Sequence[PairRecord],
    target: Mapping[int, float],
    low: Mapping[int, float],
    *,
    escalation: EscalationSection,
) -> DFTLevelPosterior:
    """The posterior of ``pairs`` (see the module docstring). ``target``, ``low``: pair id ->
    the target and the MLIP label that count (`labels.counted_energies` per class);
    ``escalation``: the campaign's section, which says whether σ carries the surface gap
    (`gap_sigma_applies`)."""
    slabs, smiles, pair_index = pool.index_tensors(pairs)
    low_ev = torch.tensor([low.get(p.id, math.nan) for p in pairs], dtype=torch.float64)
    pred = ensemble.predict(slabs, smiles, pair_index, low_fidelity_ev=low_ev)
    sigma = pred.std_ev.double()
    gaps = surface_gaps(pool, target, low)
    gap_sigma = surface_gap_sigma(gaps) if gap_sigma_applies(escalation) else None
    if gap_sigma is not None:
        unanchored = torch.tensor([p.surface_key not in gaps for p in pairs])
        sigma = torch.where(unanchored, torch.sqrt(sigma**2 + gap_sigma**2), sigma)
    return DFTLevelPosterior(pred.mean_ev, sigma, gap_sigma, len(gaps))


class PoolGaussianModel(Model):
    """A BoTorch model over a fixed pool whose inputs are candidate indices (``b x q x 1``),
    with independent Gaussian marginals N(μ, σ²): the DFT-level posterior of the candidates
    (`dft_level_posterior`), so BoTorch's analytic acquisitions score it.

    Args:
        mean_ev: ``N`` DFT-level means, eV.
        std_ev: ``N`` DFT-level standard deviations, eV.
    """

    mean_ev: Tensor
    std_ev: Tensor

    def __init__(self, mean_ev: Tensor, std_ev: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean_ev", mean_ev)
        self.register_buffer("std_ev", std_ev)

    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])

    @property
    def candidates(self) -> Tensor:
        """``N x 1 x 1`` indices: every candidate as its own t-batch (analytic, q = 1)."""
        return torch.arange(self.mean_ev.shape[0], dtype=self.mean_ev.dtype).view(-1, 1, 1)

    def posterior(  # type: ignore[override]
        self, X: Tensor, output_indices: list[int] | None = None,
        observation_noise: bool = False, posterior_transform: object = None, **kwargs: object,
    ) -> GPyTorchPosterior:  # fmt: skip
        idx = X[..., 0].long()  # b x q
        variance = self.std_ev[idx] ** 2
        return GPyTorchPosterior(
            MultivariateNormal(self.mean_ev[idx], DiagLinearOperator(variance))
        )
