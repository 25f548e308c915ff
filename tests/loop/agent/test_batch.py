"""Batch selection on hand-made pools: distinctness, diversity, believer conditioning, errors."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.posteriors.ensemble import EnsemblePosterior

from alloop.loop.agent.acquisition import AcquisitionContext, AcquisitionError, get_acquisition
from alloop.loop.agent.batch import (
    BATCH_METHODS,
    condition_in_embedding_space,
    condition_on_believed,
    select_batch,
)

K = 5
# Orthonormal zero-sum member patterns (Helmert basis of R^5): clusters built on different
# patterns are uncorrelated across members, those on the same pattern perfectly correlated.
_HELMERT = torch.tensor(
    [
        [1.0, -1.0, 0.0, 0.0, 0.0],
        [1.0, 1.0, -2.0, 0.0, 0.0],
        [1.0, 1.0, 1.0, -3.0, 0.0],
        [1.0, 1.0, 1.0, 1.0, -4.0],
    ],
    dtype=torch.float64,
)
PATTERNS = _HELMERT / _HELMERT.norm(dim=1, keepdim=True)


def members_for(mu: list[float], sigma: list[float], pattern: list[int]) -> torch.Tensor:
    """``K x N`` members with mean ``mu``, unbiased std ``sigma``, member pattern per candidate."""
    m = torch.tensor(mu, dtype=torch.float64)
    s = torch.tensor(sigma, dtype=torch.float64)
    p = PATTERNS[pattern].T * math.sqrt(K - 1)  # K x N, unbiased std 1 per column
    return m + s * p


def clustered_pool(
    n_clusters: int = 4, per_cluster: int = 6
) -> tuple[EnsemblePosterior, torch.Tensor, torch.Tensor]:
    """Clusters of near-duplicates; cluster 0 is the most uncertain, then 1, 2, 3.

    Returns the posterior, ``N x 2`` embeddings (clusters 10 apart, spread 0.01) and the cluster
    label of every candidate.
    """
    gen = torch.Generator().manual_seed(0)
    mu, sigma, pattern, labels, emb = [], [], [], [], []
    for c in range(n_clusters):
        for j in range(per_cluster):
            mu.append(-1.0 + 0.001 * j)
            sigma.append(0.5 - 0.1 * c - 0.001 * j)
            pattern.append(c)
            labels.append(c)
            centre = torch.tensor([10.0 * c, 0.0], dtype=torch.float64)
            emb.append(centre + 0.01 * torch.randn(2, generator=gen, dtype=torch.float64))
    post = EnsemblePosterior(members_for(mu, sigma, pattern).unsqueeze(-1))
    return post, torch.stack(emb), torch.tensor(labels)


def clusters_of(indices: tuple[int, ...], labels: torch.Tensor) -> set[int]:
    return {int(labels[i]) for i in indices}


def test_topk_returns_best_distinct_indices_in_order() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.3])
    sel = select_batch(scores, None, 3, method="topk")
    assert sel.indices == (1, 3, 2)
    assert [p.rank for p in sel.picks] == [0, 1, 2]
    assert [p.score for p in sel.picks] == pytest.approx([0.9, 0.7, 0.5])
    assert sel.picks[0].reason == "score=0.9"


def test_topk_breaks_ties_by_index() -> None:
    sel = select_batch(torch.zeros(6), None, 4, method="topk")
    assert sel.indices == (0, 1, 2, 3)


def test_reasons_name_acquisition_mean_and_sigma() -> None:
    post, _, _ = clustered_pool()
    acq, context = get_acquisition("lcb"), AcquisitionContext(beta=1.0)
    sel = select_batch(
        None, None, 2, method="topk", posterior=post, acquisition=acq, context=context
    )
    # the reason shows the lower bound itself (mu - beta*sigma), not its negated score
    assert sel.picks[0].reason == "lcb=-1.500 eV (mu=-1.000, sigma=0.500)"
    assert sel.picks[0].score == pytest.approx(1.5)


def test_scores_can_come_from_the_acquisition() -> None:
    post, _, _ = clustered_pool()
    acq, context = get_acquisition("uncertainty"), AcquisitionContext()
    direct = select_batch(acq(post, context), None, 5, method="topk")
    computed = select_batch(
        None, None, 5, method="topk", posterior=post, acquisition=acq, context=context
    )
    assert direct.indices == computed.indices


def test_without_diversity_topk_takes_one_cluster() -> None:
    post, _, labels = clustered_pool()
    scores = get_acquisition("uncertainty")(post, AcquisitionContext())
    sel = select_batch(scores, None, 4, method="topk")
    assert clusters_of(sel.indices, labels) == {0}


def test_maxmin_spreads_over_clusters() -> None:
    post, emb, labels = clustered_pool()
    scores = get_acquisition("uncertainty")(post, AcquisitionContext())
    for radius in (1.0, None):  # explicit, and the automatic radius
        sel = select_batch(scores, emb, 4, method="maxmin", min_distance=radius)
        assert clusters_of(sel.indices, labels) == {0, 1, 2, 3}
        assert sel.indices[0] == int(scores.argmax())
    assert "d_min=" in sel.picks[1].reason


def test_maxmin_is_accurate_for_float32_embeddings_far_from_the_origin() -> None:
    # |e|^2 ~ 1e8 in float32 would swamp squared distances of ~1 without centring.
    post, emb, labels = clustered_pool()
    scores = get_acquisition("uncertainty")(post, AcquisitionContext())
    far = (emb + 1.0e4).to(torch.float32)
    sel = select_batch(scores, far, 4, method="maxmin", min_distance=1.0)
    assert clusters_of(sel.indices, labels) == {0, 1, 2, 3}
    gen = torch.Generator().manual_seed(3)
    sel = select_batch(None, far, 4, method="farthest_point", generator=gen)
    assert clusters_of(sel.indices, labels) == {0, 1, 2, 3}


def test_maxmin_fills_the_batch_when_the_radius_is_exhausted() -> None:
    post, emb, labels = clustered_pool(n_clusters=2)
    scores = get_acquisition("uncertainty")(post, AcquisitionContext())
    sel = select_batch(scores, emb, 5, method="maxmin", min_distance=1.0)
    assert len(set(sel.indices)) == 5
    assert clusters_of(sel.indices[:2], labels) == {0, 1}
    assert all("exhausted" in p.reason for p in sel.picks[2:])
    assert not any("exhausted" in p.reason for p in sel.picks[:2])


@pytest.mark.parametrize("name", ["uncertainty", "lcb"])
def test_kriging_believer_spreads_over_clusters(name: str) -> None:
    post, _, labels = clustered_pool()
    acq, context = get_acquisition(name), AcquisitionContext(beta=2.0)
    scores = acq(post, context)
    plain = select_batch(scores, None, 4, method="topk")
    believed = select_batch(
        scores,
        None,
        4,
        method="kriging_believer",
        posterior=post,
        acquisition=acq,
        context=context,
        believer_noise_ev=0.05,
    )
    assert clusters_of(plain.indices, labels) == {0}
    assert clusters_of(believed.indices, labels) == {0, 1, 2, 3}


def test_kriging_believer_penalises_correlated_candidates_only() -> None:
    # A2 is A's perfectly correlated twin; B is uncorrelated with both.
    post = EnsemblePosterior(
        members_for([0.0, 0.0, 0.0], [1.0, 0.99, 0.5], [0, 0, 1]).unsqueeze(-1)
    )
    acq, context = get_acquisition("uncertainty"), AcquisitionContext()
    sel = select_batch(
        acq(post, context),
        None,
        3,
        method="kriging_believer",
        posterior=post,
        acquisition=acq,
        context=context,
        believer_noise_ev=0.05,
    )
    assert sel.indices == (0, 2, 1)
    assert sel.picks[1].score == pytest.approx(0.5)  # B keeps its sigma
    twin_sigma = sel.picks[2].score  # A2 after believing A: 0.99 * 0.05 / sqrt(1 + 0.05**2)
    assert twin_sigma == pytest.approx(0.99 * 0.05 / math.sqrt(1.0 + 0.05**2), rel=1e-6)
    assert sel.picks[2].reason.endswith(f"sigma={twin_sigma:.3f})")


def test_kriging_believer_keeps_the_mean_so_greedy_is_unchanged() -> None:
    values = torch.randn(K, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    post = EnsemblePosterior(values.unsqueeze(-1))
    acq, context = get_acquisition("greedy"), AcquisitionContext()
    scores = acq(post, context)
    believed = select_batch(
        scores, None, 6, method="kriging_believer", posterior=post, acquisition=acq, context=context
    )
    assert believed.indices == select_batch(scores, None, 6, method="topk").indices


def test_kriging_believer_moves_the_ei_incumbent() -> None:
    # A and A2 are uncorrelated twins below the incumbent; B is higher but more uncertain.
    # Once A is believed at mu=-1 the incumbent is -1, A2 can improve little, and B wins.
    post = EnsemblePosterior(
        members_for([-1.0, -1.0, -0.9], [0.3, 0.3, 0.6], [0, 1, 2]).unsqueeze(-1)
    )
    acq, context = get_acquisition("ei"), AcquisitionContext(best_label_ev=0.0)
    scores = acq(post, context)
    assert select_batch(scores, None, 2, method="topk").indices == (0, 1)
    believed = select_batch(
        scores, None, 2, method="kriging_believer", posterior=post, acquisition=acq, context=context
    )
    assert believed.indices == (0, 2)


def test_condition_on_believed_matches_dense_gaussian_conditioning() -> None:
    gen = torch.Generator().manual_seed(4)
    values = torch.randn(K, 9, generator=gen, dtype=torch.float64)
    weights = torch.tensor([1.0, 2.0, 1.0, 3.0, 1.0], dtype=torch.float64)
    post = EnsemblePosterior(values.unsqueeze(-1), weights)
    picked, noise = [2, 5, 7], 0.3
    w = weights / weights.sum()
    mean = w @ values
    dev = values - mean
    cov = (dev.T * w) @ dev / (1 - (w**2).sum())  # BoTorch's weighted unbiased covariance
    s_ss = cov[picked][:, picked] + noise**2 * torch.eye(3, dtype=torch.float64)
    expected = cov - cov[:, picked] @ torch.linalg.solve(s_ss, cov[picked])
    believed = condition_on_believed(post, picked, noise)
    torch.testing.assert_close(believed.mean.view(-1), mean)
    torch.testing.assert_close(believed.variance.view(-1), expected.diagonal())


def test_per_slot_scores_pick_each_slot_from_its_row() -> None:
    rows = torch.tensor([[5.0, 1.0, 0.0], [5.0, 4.0, 0.0], [5.0, 4.0, 3.0]])
    assert select_batch(rows, None, 3, method="topk").indices == (0, 1, 2)
    rows = torch.tensor([[0.0, 0.0, 9.0], [9.0, 0.0, 0.0]])
    assert select_batch(rows, None, 2, method="topk").indices == (2, 0)


def test_thompson_rows_select_distinct_candidates() -> None:
    post, emb, _ = clustered_pool()
    context = AcquisitionContext(q=10, generator=torch.Generator().manual_seed(0))
    rows = get_acquisition("thompson")(post, context)
    for method in ("topk", "maxmin"):
        sel = select_batch(rows, emb, 10, method=method)
        assert len(set(sel.indices)) == 10


def test_available_mask_is_respected_even_with_infinite_scores() -> None:
    scores = torch.tensor([-math.inf, -math.inf, 0.0, -math.inf, -math.inf])
    available = torch.tensor([True, True, False, True, False])
    emb = torch.arange(10.0).view(5, 2)
    for method in ("topk", "maxmin"):
        sel = select_batch(scores, emb, 3, method=method, available=available)
        assert sorted(sel.indices) == [0, 1, 3]


def test_fewer_available_than_q_returns_all_available() -> None:
    available = torch.tensor([False, True, False, True])
    sel = select_batch(torch.zeros(4), None, 10, method="topk", available=available)
    assert sel.indices == (1, 3)
    assert (
        len(
            select_batch(
                torch.zeros(4), None, 3, method="topk", available=torch.zeros(4, dtype=torch.bool)
            )
        )
        == 0
    )


def test_cold_start_random_is_seeded_and_distinct() -> None:
    def pick(seed: int) -> tuple[int, ...]:
        gen = torch.Generator().manual_seed(seed)
        return select_batch(
            None,
            None,
            20,
            method="random",
            generator=gen,
            available=torch.ones(200, dtype=torch.bool),
        ).indices

    assert pick(1) == pick(1)
    assert pick(1) != pick(2)
    assert len(set(pick(1))) == 20
    sel = select_batch(
        None,
        None,
        2,
        method="random",
        generator=torch.Generator().manual_seed(0),
        available=torch.ones(5, dtype=torch.bool),
    )
    assert sel.picks[0].reason == "cold-start random" and sel.picks[0].score is None


def test_cold_start_farthest_point_fills_space() -> None:
    _, emb, labels = clustered_pool()
    gen = torch.Generator().manual_seed(3)
    sel = select_batch(None, emb, 4, method="farthest_point", generator=gen)
    assert clusters_of(sel.indices, labels) == {0, 1, 2, 3}
    assert sel.picks[0].reason == "cold-start farthest-point seed (random)"
    assert sel.picks[1].reason.startswith("cold-start farthest-point (d_min=")


def test_unknown_method_lists_valid_methods() -> None:
    with pytest.raises(AcquisitionError, match=r"unknown batch method 'diverse'; valid: \['topk'"):
        select_batch(torch.zeros(3), None, 1, method="diverse")
    assert "kriging_believer" in BATCH_METHODS


@pytest.mark.parametrize("q", [0, -1, True, 2.0])
def test_q_must_be_a_positive_integer(q: object) -> None:
    with pytest.raises(AcquisitionError, match="q must be an integer >= 1"):
        select_batch(torch.zeros(3), None, q, method="topk")  # type: ignore[arg-type]


def test_input_errors() -> None:
    z3 = torch.zeros(3)
    with pytest.raises(AcquisitionError, match="NaN values"):
        select_batch(torch.tensor([0.0, math.nan]), None, 1, method="topk")
    with pytest.raises(AcquisitionError, match=r"disagree on the pool size N: \{'scores': 3, "):
        select_batch(z3, torch.zeros(4, 2), 1, method="maxmin")
    with pytest.raises(AcquisitionError, match=r"N or \(rows >= q=3\) x N per slot"):
        select_batch(torch.zeros(2, 3), None, 3, method="topk")
    with pytest.raises(AcquisitionError, match="needs scores"):
        select_batch(None, None, 1, method="topk", available=torch.ones(3, dtype=torch.bool))
    with pytest.raises(AcquisitionError, match="cannot tell the pool size"):
        select_batch(None, None, 1, method="random", generator=torch.Generator())
    with pytest.raises(AcquisitionError, match="'random' needs a seeded torch.Generator"):
        select_batch(z3, None, 1, method="random")
    with pytest.raises(AcquisitionError, match="'farthest_point' needs embeddings"):
        select_batch(z3, None, 1, method="farthest_point", generator=torch.Generator())
    with pytest.raises(AcquisitionError, match="'maxmin' needs embeddings"):
        select_batch(z3, None, 1, method="maxmin")
    with pytest.raises(AcquisitionError, match=r"embeddings must be N x D, got shape \(3,\)"):
        select_batch(z3, z3, 1, method="maxmin")
    with pytest.raises(AcquisitionError, match="embeddings contain non-finite"):
        select_batch(z3, torch.full((3, 2), math.inf), 1, method="maxmin")
    with pytest.raises(AcquisitionError, match="min_distance must be finite and >= 0, got -1"):
        select_batch(z3, torch.zeros(3, 2), 1, method="maxmin", min_distance=-1.0)
    with pytest.raises(AcquisitionError, match="available must be a 1-D bool mask"):
        select_batch(z3, None, 1, method="topk", available=torch.ones(3))
    with pytest.raises(AcquisitionError, match="needs `posterior` and `context`"):
        select_batch(None, None, 1, method="topk", acquisition=get_acquisition("lcb"))


def test_kriging_believer_errors() -> None:
    post, _, _ = clustered_pool()
    context = AcquisitionContext(q=2, generator=torch.Generator().manual_seed(0))
    lcb, thompson = get_acquisition("lcb"), get_acquisition("thompson")
    scores = lcb(post, context)
    with pytest.raises(AcquisitionError, match="needs posterior, acquisition and context"):
        select_batch(scores, None, 2, method="kriging_believer")
    with pytest.raises(AcquisitionError, match="cannot rescore acquisition 'thompson'"):
        select_batch(
            thompson(post, context),
            None,
            2,
            method="kriging_believer",
            posterior=post,
            acquisition=thompson,
            context=context,
        )
    with pytest.raises(AcquisitionError, match="believer_noise_ev must be finite and > 0, got 0"):
        select_batch(
            scores,
            None,
            2,
            method="kriging_believer",
            posterior=post,
            acquisition=lcb,
            context=context,
            believer_noise_ev=0.0,
        )
    single = EnsemblePosterior(post.values[:1])
    with pytest.raises(AcquisitionError, match=">= 2 members with nonzero weight"):
        condition_on_believed(single, [0], 0.1)


def test_embedding_believer_keeps_mean_and_shrinks_only_near_picks() -> None:
    post, emb, labels = clustered_pool()
    picked = [0]  # cluster 0
    believed = condition_in_embedding_space(post, emb, picked, noise_ev=0.05, length_scale=1.0)
    assert torch.allclose(believed.mean.view(-1), post.mean.view(-1), atol=1e-12)
    before, after = post.variance.view(-1).sqrt(), believed.variance.view(-1).sqrt()
    near, far = labels == 0, labels != 0
    # the picked point: σ² ν² / (σ² + ν²), its near-duplicates nearly as much, others untouched
    s0 = float(before[0])
    assert math.isclose(float(after[0]), s0 * 0.05 / math.hypot(s0, 0.05), rel_tol=1e-6)
    assert bool((after[near] < 0.2 * before[near]).all())
    assert torch.allclose(after[far], before[far], rtol=1e-9)


def test_embedding_believer_does_not_collapse_after_k_picks() -> None:
    # K = 5 members: the member covariance has rank 4, so conditioning on it kills every σ after
    # a handful of picks; the embedding kernel leaves distant candidates their σ
    n = 40
    gen = torch.Generator().manual_seed(1)
    members = torch.randn(K, n, generator=gen, dtype=torch.float64)
    post = EnsemblePosterior(members.unsqueeze(-1))
    emb = torch.arange(n, dtype=torch.float64)[:, None] * 10.0  # all far apart
    picked = list(range(10))
    rank_based = condition_on_believed(post, picked, 0.05).variance.view(-1).sqrt()
    local = condition_in_embedding_space(post, emb, picked, 0.05, 1.0).variance.view(-1).sqrt()
    sigma = post.variance.view(-1).sqrt()
    assert float((rank_based[10:] / sigma[10:]).max()) < 0.2  # every σ cut by > 80%
    assert torch.allclose(local[10:], sigma[10:], rtol=1e-9)


@pytest.mark.parametrize("name", ["uncertainty", "ei", "lcb"])
def test_kriging_believer_with_embeddings_spreads_over_clusters(
    name: str,
) -> None:
    # clusters of near-duplicates: one pick per cluster
    post, emb, labels = clustered_pool(n_clusters=4, per_cluster=6)
    acq, context = get_acquisition(name), AcquisitionContext(beta=2.0, best_label_ev=-1.0)
    scores = acq(post, context)
    picks = select_batch(
        scores, emb, 4, method="kriging_believer", posterior=post, acquisition=acq,
        context=context, believer_noise_ev=0.05,
    )  # fmt: skip
    assert clusters_of(picks.indices, labels) == {0, 1, 2, 3}
