"""Cost-aware acquisition over (pair, fidelity): which pairs get an MLIP label, which get DFT.

Every round two kinds of candidate compete for one cost budget:

* an **MLIP label** for a pair with no label yet, worth its DFT-level expected improvement
  times the share of its DFT-level uncertainty an MLIP label would remove;
* a **DFT label** for a pair with an ok MLIP label and no DFT label, worth its DFT-level
  expected improvement (predicted *with* the MLIP label, e.g. by the Δ-learning head).

The value is the augmented expected improvement of multi-fidelity kriging (Huang et al., Struct.
Multidisc. Optim. 2006): ``EI(x) · (1 − s_res / sqrt(σ(x)² + s_res²))`` for the cheap
fidelity, where ``s_res`` is the DFT-level uncertainty that is left after an MLIP label (the
median σ of the pairs that already have one), and plain EI for DFT, which settles the value.
Each candidate's score is value / cost; the batch takes candidates in score order while the
round's budget lasts, each pair once, at most ``acquisition.batch_size`` MLIP labels. EI is
toward strong binding: improvement below the k-th best DFT-level value (`acquisition.kth_best`, with
``acquisition.top_k``): with k = 1 the best DFT label so far; with k > 1 the value counts what
a pair would add to a shortlist of the k strongest binders, so a confirmed best does not make
every other strong candidate worthless.

EI is BoTorch's analytic ``ExpectedImprovement`` evaluated on the candidates' DFT-level
posterior (`mf_posterior.dft_level_posterior`, served as a BoTorch model by
`mf_posterior.PoolGaussianModel`): this module is the acquisition layer over that posterior.
Why not BoTorch's fantasy-based multi-fidelity knowledge gradient: it conditions the model on
fantasised observations (``condition_on_observations``), which a deep ensemble cannot do
without retraining; the cost weighting here is what BoTorch's ``InverseCostWeightedUtility``
does (value divided by cost).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from botorch.acquisition.analytic import ExpectedImprovement
from botorch.exceptions.warnings import NumericsWarning
from torch import Tensor

from alloop.loop.agent.labels import is_low_fidelity
from alloop.loop.agent.mf_posterior import PoolGaussianModel

__all__ = [
    "FidelityCandidate",
    "FidelityPick",
    "augmented_ei",
    "plan_cost_aware",
]

#: values at or below this are "no value" (EI underflows far from the best)
MIN_VALUE = 1e-12


@dataclass(frozen=True)
class FidelityCandidate:
    """One (pair, fidelity) option: ``fidelity`` is ``"mlip"`` or the campaign's DFT kind;
    μ and σ are the DFT-level prediction for the pair (eV)."""

    pair_key: str
    fidelity: str
    mu_ev: float
    sigma_ev: float
    cost: float


@dataclass(frozen=True)
class FidelityPick:
    """A chosen candidate: its value (EI for DFT, augmented EI for MLIP; σ when nothing
    affordable had any), the plain EI of its DFT-level prediction (eV), and value per cost."""

    candidate: FidelityCandidate
    rank: int
    value: float
    score: float  # value per cost unit
    ei_ev: float | None = None

    def describe(self) -> str:
        c = self.candidate
        return f"{c.fidelity}: value {self.value:.4g} eV / cost {c.cost:g} = {self.score:.4g}"


def expected_improvement(mu: Tensor, sigma: Tensor, best: float) -> Tensor:
    """EI of going below ``best`` (minimisation), `N` tensors in eV: BoTorch's analytic
    ``ExpectedImprovement`` on the pool's Gaussian posterior (σ floored at 1e-6 eV, BoTorch's
    variance floor)."""
    model = PoolGaussianModel(mu, sigma)
    best_f = torch.tensor(best, dtype=mu.dtype)  # a float would become a float32 buffer
    with torch.no_grad(), warnings.catch_warnings():
        # BoTorch recommends LogEI for gradient-based optimisation; the pool is enumerated
        # and the value is multiplied by a share of σ and divided by a cost, so EI itself
        warnings.simplefilter("ignore", NumericsWarning)
        return ExpectedImprovement(model, best_f=best_f, maximize=False)(model.candidates)


def augmented_ei(mu: Tensor, sigma: Tensor, best: float, residual_sigma: float | None) -> Tensor:
    """EI scaled by the share of σ an observation with residual σ ``residual_sigma`` removes
    (None: a DFT observation, factor 1)."""
    ei = expected_improvement(mu, sigma, best)
    if residual_sigma is None:
        return ei
    return ei * (1.0 - residual_sigma / torch.sqrt(sigma**2 + residual_sigma**2))


def plan_cost_aware(
    candidates: Sequence[FidelityCandidate],
    best_ev: float,
    round_cost: float,
    caps: Mapping[str, int] | None = None,
) -> list[FidelityPick]:
    """The round's picks: candidates by value per cost while ``round_cost`` lasts.

    Each pair is picked at most once; ``caps`` bounds the picks of a fidelity (the engine caps
    MLIP picks at ``acquisition.batch_size``, so many cheap picks cannot crowd DFT out of a
    round; what they leave goes to whatever is worth more per cost). ``best_ev``: the best
    DFT-level label so far (the lowest predicted μ when there is none). Candidates with no
    value are skipped; when none has any, the batch falls back to σ per cost, so a round never
    stalls.
    """
    if not candidates:
        return []
    dft = [c for c in candidates if not is_low_fidelity(c.fidelity)]
    residual = float(torch.tensor([c.sigma_ev for c in dft]).median()) if dft else None
    mu = torch.tensor([c.mu_ev for c in candidates], dtype=torch.float64)
    sigma = torch.tensor([c.sigma_ev for c in candidates], dtype=torch.float64)
    cost = torch.tensor([c.cost for c in candidates], dtype=torch.float64)
    is_mlip = torch.tensor([is_low_fidelity(c.fidelity) for c in candidates])
    if residual is None:  # no MLIP-labelled pair yet: assume an MLIP label halves σ
        residual = 0.5 * float(sigma[is_mlip].median()) if bool(is_mlip.any()) else 0.0
    ei = expected_improvement(mu, sigma, best_ev)
    value = torch.where(is_mlip, augmented_ei(mu, sigma, best_ev, residual), ei)
    affordable = cost <= round_cost + 1e-9
    if not bool(((value > MIN_VALUE) & affordable).any()):  # nothing affordable is worth it:
        value = sigma.clone()  # spend on what the model knows least
    score = value / cost
    order = sorted(range(len(candidates)), key=lambda i: (-float(score[i]), i))
    picks: list[FidelityPick] = []
    left, taken = round_cost, set()
    room = dict(caps or {})
    for i in order:
        c = candidates[i]
        if float(value[i]) <= MIN_VALUE or c.pair_key in taken or c.cost > left + 1e-9:
            continue
        if room.get(c.fidelity, 1) <= 0:
            continue
        if c.fidelity in room:
            room[c.fidelity] -= 1
        picks.append(FidelityPick(c, len(picks), float(value[i]), float(score[i]), float(ei[i])))
        taken.add(c.pair_key)
        left -= c.cost
        if left < min(c.cost for c in candidates) - 1e-9:
            break
    return picks
