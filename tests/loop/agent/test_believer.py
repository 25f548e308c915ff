"""The kriging believer's conditioning (`loop/agent/believer.py`), checked directly against
dense Gaussian conditioning written out here: believing y_S = μ_S with noise ν leaves μ and
turns the covariance Σ into Σ - Σ_·S (Σ_SS + ν²I)⁻¹ Σ_S·, with Σ the ensemble's own weighted
member covariance (`condition_on_believed`) or a local kernel over the embeddings
(`condition_in_embedding_space`); and every refusal. How `select_batch` uses them is in
tests/loop/agent/test_batch.py."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.posteriors.ensemble import EnsemblePosterior
from torch import Tensor

from alloop.loop.agent.acquisition import AcquisitionError
from alloop.loop.agent.believer import condition_in_embedding_space, condition_on_believed

K, N = 6, 9  # members, candidates


def ensemble(weights: list[float] | None = None, seed: int = 0) -> EnsemblePosterior:
    """A ``K x N x 1`` ensemble posterior with correlated members (a shared random direction)."""
    gen = torch.Generator().manual_seed(seed)
    shared = torch.randn(K, 1, generator=gen, dtype=torch.float64)
    members = shared * torch.linspace(0.2, 1.0, N, dtype=torch.float64)
    members = members + 0.3 * torch.randn(K, N, generator=gen, dtype=torch.float64) - 1.0
    w = None if weights is None else torch.tensor(weights, dtype=torch.float64)
    return EnsemblePosterior(members.unsqueeze(-1), w)


def member_covariance(post: EnsemblePosterior) -> Tensor:
    """``N x N`` unbiased weighted covariance of the members (BoTorch's variance is its
    diagonal): Σ_k w_k (m_k - μ)(m_k - μ)ᵀ / (1 - Σ w_k²)."""
    members, w = post.values[..., 0].to(torch.float64), post.weights.to(torch.float64)
    dev = members - w @ members
    return (dev.T * w) @ dev / (1.0 - (w**2).sum())


def conditioned(cov: Tensor, picked: list[int], noise_ev: float) -> Tensor:
    """Dense Gaussian conditioning of ``cov`` on noisy observations at ``picked``."""
    s = torch.tensor(picked)
    gain = cov[:, s] @ torch.linalg.inv(cov[s][:, s] + noise_ev**2 * torch.eye(len(picked)))
    return cov - gain @ cov[s, :]


@pytest.mark.parametrize(
    "weights", [None, [0.3, 0.1, 0.2, 0.15, 0.25, 0.0]], ids=["uniform", "weighted"]
)
def test_member_conditioning_is_dense_gaussian_conditioning(weights: list[float] | None) -> None:
    post = ensemble(weights)
    picked, noise = [0, 4, 7], 0.05
    believed = condition_on_believed(post, picked, noise)
    assert believed.values.shape == (5 if weights else K, N, 1)  # zero-weight member dropped
    assert math.isclose(float(believed.weights.sum()), 1.0)
    assert torch.allclose(believed.mean, post.mean, atol=1e-12)
    want = conditioned(member_covariance(post), picked, noise)
    assert torch.allclose(member_covariance(believed), want, atol=1e-10)
    assert torch.allclose(believed.variance.view(-1), torch.diagonal(want), atol=1e-10)


def test_believing_nothing_changes_nothing_and_noise_sets_how_much_a_pick_shrinks() -> None:
    post = ensemble()
    assert torch.allclose(condition_on_believed(post, [], 0.1).values, post.values, atol=1e-12)
    var = post.variance.view(-1)
    for noise in (0.01, 0.3, 100.0):
        after = condition_on_believed(post, [2], noise).variance.view(-1)
        # one pick, its own variance: σ²ν² / (σ² + ν²)
        assert math.isclose(float(after[2]), float(var[2] * noise**2 / (var[2] + noise**2)))
    loose = condition_on_believed(post, [2], 100.0).variance.view(-1)
    assert torch.allclose(loose, var, rtol=1e-4)  # a label believed this loosely tells little


def kernel_covariance(post: EnsemblePosterior, emb: Tensor, length_scale: float) -> Tensor:
    """Σ_xy = σ_x σ_y exp(-|e_x - e_y|² / 2ℓ²), σ as BoTorch computes it."""
    std = post.variance.view(-1).sqrt()
    corr = torch.exp(-torch.cdist(emb, emb).square() / (2.0 * length_scale**2))
    return std[:, None] * std[None, :] * corr


def test_embedding_conditioning_is_dense_gaussian_conditioning_of_the_kernel() -> None:
    post = ensemble([0.3, 0.1, 0.2, 0.15, 0.25, 0.0], seed=1)
    emb = torch.randn(N, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    picked, noise, ell = [1, 5], 0.05, 0.8
    believed = condition_in_embedding_space(post, emb.to(torch.float32), picked, noise, ell)
    assert believed.values.shape == (K, N, 1)
    assert torch.allclose(believed.mean, post.mean, atol=1e-12)
    want = torch.diagonal(conditioned(kernel_covariance(post, emb, ell), picked, noise))
    assert torch.allclose(believed.variance.view(-1), want, rtol=1e-5, atol=1e-12)


def test_embedding_conditioning_keeps_a_certain_candidate_certain() -> None:
    post = ensemble()
    values = post.values.clone()
    values[:, 3, 0] = -0.7  # every member agrees: σ = 0 there
    post = EnsemblePosterior(values)
    emb = torch.zeros(N, 2, dtype=torch.float64)  # all candidates at one point
    believed = condition_in_embedding_space(post, emb, [0], 0.05, 1.0)
    after = believed.variance.view(-1)
    assert bool(torch.isfinite(believed.values).all())
    assert float(after[3]) < 1e-20  # (zero up to the rounding of the weighted mean)
    assert float(believed.mean.view(-1)[3]) == pytest.approx(-0.7)


@pytest.mark.parametrize("noise", [0.0, -0.1, math.inf, math.nan])
def test_a_noise_that_is_not_finite_and_positive_is_refused(noise: float) -> None:
    post, emb = ensemble(), torch.zeros(N, 2)
    match = f"believer_noise_ev must be finite and > 0, got {noise!r}"
    with pytest.raises(AcquisitionError, match=match):
        condition_on_believed(post, [0], noise)
    with pytest.raises(AcquisitionError, match=match):
        condition_in_embedding_space(post, emb, [0], noise, 1.0)


@pytest.mark.parametrize("length_scale", [0.0, -1.0, math.inf, math.nan])
def test_a_length_scale_that_is_not_finite_and_positive_is_refused(length_scale: float) -> None:
    with pytest.raises(
        AcquisitionError, match=f"length_scale must be finite and > 0, got {length_scale!r}"
    ):
        condition_in_embedding_space(ensemble(), torch.zeros(N, 2), [0], 0.1, length_scale)


def test_member_conditioning_needs_two_weighted_members() -> None:
    post = ensemble([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    with pytest.raises(AcquisitionError, match=">= 2 members with nonzero weight"):
        condition_on_believed(post, [0], 0.1)


def test_a_posterior_that_is_not_one_joint_ensemble_over_the_pool_is_refused() -> None:
    post = ensemble()
    two_outputs = EnsemblePosterior(post.values.repeat(1, 1, 2))
    with pytest.raises(AcquisitionError, match=r"shape \(6, 9, 2\); expected K x N x 1"):
        condition_on_believed(two_outputs, [0], 0.1)
    values = post.values.clone()
    values[2, 4, 0] = math.nan
    with pytest.raises(
        AcquisitionError, match=r"non-finite ensemble predictions at candidates \[4\]"
    ):
        condition_in_embedding_space(EnsemblePosterior(values), torch.zeros(N, 2), [0], 0.1, 1.0)
    with pytest.raises(AcquisitionError, match="expected a botorch EnsemblePosterior, got str"):
        condition_on_believed("posterior", [0], 0.1)  # type: ignore[arg-type]
