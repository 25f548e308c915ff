"""Believing a picked candidate's label: the ensemble posterior conditioned on y_x = μ_x.

Used by the kriging-believer batch method (`loop/agent/batch.py`). Two covariances:

* `condition_on_believed`: the ensemble's own member covariance (rank K - 1), exact and cheap;
  it runs out of directions to condition after about K picks.
* `condition_in_embedding_space`: a full-rank local kernel over the ensemble's embeddings, so
  only candidates near a pick lose σ, for any batch size.

Both keep μ and return an `EnsemblePosterior`, so any acquisition can rescore the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from botorch.posteriors.ensemble import EnsemblePosterior
from torch import Tensor

from alloop.loop.agent.acquisition import AcquisitionError, PoolEnsembleModel, pool_members

__all__ = ["condition_in_embedding_space", "condition_on_believed"]


def condition_on_believed(
    posterior: EnsemblePosterior, picked: Sequence[int], noise_ev: float
) -> EnsemblePosterior:
    """The ensemble after believing the labels y_i = μ_i (noise std ``noise_ev``) for ``picked``.

    Exact Gaussian conditioning with the ensemble's weighted member covariance Σ = CᵀC
    (``C = scale · (members − μ)``, ``K x N``), done in K dimensions: with precision
    ``P = I + C_S C_Sᵀ / noise²`` the conditioned members are ``μ + P^{-1/2} C / scale``.
    ``sqrt(weights)`` is an eigenvector of ``P`` (eigenvalue 1), so the weighted mean μ is kept
    and the believed labels change only σ; the result is still an ensemble posterior.

    Args:
        posterior: Ensemble posterior over ``N`` candidates (see ``pool_members``).
        picked: Pool indices whose labels are believed.
        noise_ev: Noise std of a believed label, eV (> 0).

    Returns:
        ``K' x N x 1`` ensemble posterior (``K'``: members with nonzero weight).
    """
    if not (0.0 < noise_ev < math.inf):
        raise AcquisitionError(f"believer_noise_ev must be finite and > 0, got {noise_ev!r}")
    members, weights = pool_members(posterior)
    keep = weights > 0  # zero-weight members carry no covariance
    members, weights = members[keep], weights[keep] / weights[keep].sum()
    if members.shape[0] < 2:
        raise AcquisitionError("believer conditioning needs >= 2 members with nonzero weight")
    mean = weights @ members
    scale = (weights / (1.0 - (weights**2).sum())).sqrt()
    centred = scale[:, None] * (members - mean)
    seen = centred[:, list(picked)]
    precision = torch.eye(members.shape[0], dtype=torch.float64) + seen @ seen.T / noise_ev**2
    evals, evecs = torch.linalg.eigh(precision)
    cond = ((evecs * evals.rsqrt()) @ evecs.T) @ centred
    return EnsemblePosterior((mean + cond / scale[:, None]).unsqueeze(-1), weights)


def condition_in_embedding_space(
    posterior: EnsemblePosterior,
    embeddings: Tensor,
    picked: Sequence[int],
    noise_ev: float,
    length_scale: float,
) -> EnsemblePosterior:
    """The ensemble after believing y_i = μ_i for ``picked``, with a local kernel covariance.

    Σ_xy = σ_x σ_y exp(-|e_x - e_y|² / 2ℓ²) over the ``N x D`` ``embeddings``; the believed
    labels (noise std ``noise_ev``) leave μ as it is and shrink σ_x² by Σ_xS (Σ_SS + ν²I)⁻¹ Σ_Sx.
    Each member's deviation from μ is scaled by σ'_x / σ_x, so the result is still an ensemble
    posterior with mean μ and standard deviation σ'. Costs O(N·|S|) plus an |S|² solve.
    """
    if not (0.0 < noise_ev < math.inf):
        raise AcquisitionError(f"believer_noise_ev must be finite and > 0, got {noise_ev!r}")
    if not (0.0 < length_scale < math.inf):
        raise AcquisitionError(f"length_scale must be finite and > 0, got {length_scale!r}")
    members, weights = pool_members(posterior)
    mean, std = PoolEnsembleModel.from_posterior(posterior).mean_and_std()
    idx = torch.as_tensor(list(picked), dtype=torch.long)
    emb = embeddings.to(torch.float64)
    corr = torch.exp(-torch.cdist(emb, emb[idx]).square() / (2.0 * length_scale**2))  # N x S
    cov_xs = std[:, None] * std[idx][None, :] * corr
    cov_ss = cov_xs[idx] + noise_ev**2 * torch.eye(len(idx), dtype=torch.float64)
    explained = (cov_xs * torch.linalg.solve(cov_ss, cov_xs.T).T).sum(dim=1)
    var = (std.square() - explained).clamp_min(0.0)
    ratio = torch.where(std > 0, var.sqrt() / std.clamp_min(1e-300), torch.zeros_like(std))
    return EnsemblePosterior((mean + ratio * (members - mean)).unsqueeze(-1), weights)
