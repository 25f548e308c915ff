"""Acquisition functions on hand-made ensemble posteriors (no model is trained)."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.posteriors.torch import TorchPosterior
from scipy.stats import norm

from alloop.loop.agent.acquisition import (
    ACQUISITIONS,
    AcquisitionContext,
    AcquisitionError,
    AcquisitionRegistry,
    PoolEnsembleModel,
    get_acquisition,
    pool_members,
    register_acquisition,
    score_pool,
)
from alloop.loop.errors import LoopError

K = 4
# Zero-mean member offsets with unbiased standard deviation 1: members = mu + sigma * _Z.
_Z = torch.tensor([-1.5, -0.5, 0.5, 1.5], dtype=torch.float64) / math.sqrt(5.0 / 3.0)


def posterior(mu: list[float], sigma: list[float]) -> EnsemblePosterior:
    """``K x N x 1`` ensemble posterior whose mean is ``mu`` and std ``sigma`` exactly."""
    m = torch.tensor(mu, dtype=torch.float64)
    s = torch.tensor(sigma, dtype=torch.float64)
    return EnsemblePosterior((m + s * _Z[:, None]).unsqueeze(-1))


def ctx(**kwargs: object) -> AcquisitionContext:
    return AcquisitionContext(**kwargs)  # type: ignore[arg-type]


def test_required_names_are_registered() -> None:
    required = {"uncertainty", "lcb", "ucb", "ei", "target_window", "thompson", "greedy", "random"}
    assert required <= set(ACQUISITIONS.names())


def test_pool_model_reproduces_mean_and_std() -> None:
    model = PoolEnsembleModel.from_posterior(posterior([0.1, -0.4], [0.2, 0.05]))
    mean, std = model.mean_and_std()
    torch.testing.assert_close(mean, torch.tensor([0.1, -0.4], dtype=torch.float64))
    torch.testing.assert_close(std, torch.tensor([0.2, 0.05], dtype=torch.float64))


def test_uncertainty_prefers_largest_sigma() -> None:
    sigma = [0.1, 0.5, 0.3, 0.05]
    scores = score_pool("uncertainty", posterior([0.0, 1.0, -1.0, -2.0], sigma), ctx())
    assert int(scores.argmax()) == 1
    torch.testing.assert_close(scores, torch.tensor(sigma, dtype=torch.float64))


def test_greedy_prefers_lowest_mean() -> None:
    scores = score_pool("greedy", posterior([0.3, -1.2, -0.5], [0.1, 0.1, 0.9]), ctx())
    assert int(scores.argmax()) == 1
    torch.testing.assert_close(scores, torch.tensor([-0.3, 1.2, 0.5], dtype=torch.float64))


def test_lcb_with_beta_zero_equals_greedy() -> None:
    post = posterior([0.3, -1.2, -0.5, 0.0], [0.1, 0.2, 0.9, 0.4])
    torch.testing.assert_close(
        score_pool("lcb", post, ctx(beta=0.0)), score_pool("greedy", post, ctx())
    )


def test_lcb_is_minus_lower_bound_and_trades_mean_for_sigma() -> None:
    mu, sigma = [-1.0, -0.8], [0.05, 0.3]
    post = posterior(mu, sigma)
    scores = score_pool("lcb", post, ctx(beta=2.0))
    expected = [-(m - 2.0 * s) for m, s in zip(mu, sigma, strict=True)]
    torch.testing.assert_close(scores, torch.tensor(expected, dtype=torch.float64))
    assert int(scores.argmax()) == 1  # -0.8 - 0.6 = -1.4 is the lower bound
    assert int(score_pool("lcb", post, ctx(beta=0.1)).argmax()) == 0


def test_ucb_is_upper_bound() -> None:
    mu, sigma = [-1.0, -0.8, 0.5], [0.05, 0.3, 0.01]
    scores = score_pool("ucb", posterior(mu, sigma), ctx(beta=1.5))
    expected = [m + 1.5 * s for m, s in zip(mu, sigma, strict=True)]
    torch.testing.assert_close(scores, torch.tensor(expected, dtype=torch.float64))


def test_ei_matches_closed_form_log_ei_below_incumbent() -> None:
    mu, sigma, best = [-0.5, 0.2, -1.5], [0.3, 0.1, 0.2], -1.0
    scores = score_pool("ei", posterior(mu, sigma), ctx(best_label_ev=best))
    for i, (m, s) in enumerate(zip(mu, sigma, strict=True)):
        z = (best - m) / s
        expected = math.log((best - m) * norm.cdf(z) + s * norm.pdf(z))
        assert scores[i].item() == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert int(scores.argmax()) == 2  # already below the incumbent


def test_ei_is_monotone_in_sigma_at_equal_mean_above_incumbent() -> None:
    sigma = [0.05, 0.1, 0.2, 0.4, 0.8]
    scores = score_pool("ei", posterior([0.0] * 5, sigma), ctx(best_label_ev=-0.5))
    assert torch.all(scores[1:] > scores[:-1])
    assert torch.isfinite(scores).all()  # log-EI keeps far-from-incumbent candidates ranked


def test_ei_prefers_lower_mean_at_equal_sigma() -> None:
    scores = score_pool("ei", posterior([0.5, 0.0, -0.5], [0.2] * 3), ctx(best_label_ev=-1.0))
    assert torch.all(scores[1:] > scores[:-1])


def test_target_window_prefers_mean_inside_window() -> None:
    mu = [-2.0, -1.0, -0.5, 0.5]
    scores = score_pool(
        "target_window", posterior(mu, [0.2] * 4), ctx(target_window_ev=(-1.2, -0.8))
    )
    assert int(scores.argmax()) == 1
    lo, hi = -1.2, -0.8
    for i, m in enumerate(mu):
        p = norm.cdf((hi - m) / 0.2) - norm.cdf((lo - m) / 0.2)
        assert scores[i].item() == pytest.approx(math.log(p), rel=1e-5)


def test_target_window_ranks_candidates_far_outside_without_ties() -> None:
    scores = score_pool(
        "target_window", posterior([5.0, 10.0, -20.0], [0.1] * 3), ctx(target_window_ev=(0, 1))
    )
    assert torch.isfinite(scores).all()
    assert scores[0] > scores[1] > scores[2]


def test_thompson_is_seeded_reproducible_and_varies_with_seed() -> None:
    gen = torch.Generator().manual_seed
    post = posterior([0.0, 0.1, 0.2, 0.3, 0.4], [0.5] * 5)
    for draw in ("member", "gaussian"):
        a = score_pool("thompson", post, ctx(q=8, thompson_draw=draw, generator=gen(7)))
        b = score_pool("thompson", post, ctx(q=8, thompson_draw=draw, generator=gen(7)))
        c = score_pool("thompson", post, ctx(q=8, thompson_draw=draw, generator=gen(8)))
        assert a.shape == (8, 5)
        torch.testing.assert_close(a, b)
        assert not torch.equal(a, c)


def test_thompson_member_rows_are_negated_members() -> None:
    post = posterior([0.0, 0.1, 0.2], [0.5, 0.1, 0.3])
    members, _ = pool_members(post)
    rows = score_pool("thompson", post, ctx(q=6, generator=torch.Generator().manual_seed(0)))
    for row in rows:
        assert any(torch.allclose(row, -members[k]) for k in range(K))


def test_thompson_gaussian_draws_follow_mean_and_sigma() -> None:
    post = posterior([-1.0, 2.0], [0.1, 0.5])
    gen = torch.Generator().manual_seed(3)
    rows = score_pool("thompson", post, ctx(q=4000, thompson_draw="gaussian", generator=gen))
    draws = -rows
    torch.testing.assert_close(
        draws.mean(0), torch.tensor([-1.0, 2.0], dtype=torch.float64), atol=0.05, rtol=0
    )
    torch.testing.assert_close(
        draws.std(0), torch.tensor([0.1, 0.5], dtype=torch.float64), atol=0.03, rtol=0
    )


def test_random_is_seeded() -> None:
    post = posterior([0.0] * 6, [0.1] * 6)
    a = score_pool("random", post, ctx(generator=torch.Generator().manual_seed(1)))
    b = score_pool("random", post, ctx(generator=torch.Generator().manual_seed(1)))
    c = score_pool("random", post, ctx(generator=torch.Generator().manual_seed(2)))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", ["random", "thompson"])
def test_random_functions_need_a_generator(name: str) -> None:
    with pytest.raises(AcquisitionError, match=f"{name}.*torch.Generator"):
        score_pool(name, posterior([0.0, 1.0], [0.1, 0.2]), ctx(q=2))


def test_only_the_joint_pool_layout_is_accepted() -> None:
    """One path from the ensemble to acquisition: K x N x 1; a t-batched N x K x 1 x 1
    posterior is refused with a message naming the layout, not silently transposed."""
    joint = posterior([0.3, -1.2, -0.5], [0.1, 0.2, 0.9])
    batched = EnsemblePosterior(joint.values.transpose(0, 1).unsqueeze(-1))  # N x K x 1 x 1
    with pytest.raises(AcquisitionError, match="expected K x N x 1"):
        score_pool("lcb", batched, ctx())


def test_weighted_ensemble_uses_weights() -> None:
    values = torch.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=torch.float64).unsqueeze(-1)
    post = EnsemblePosterior(values, weights=torch.tensor([3.0, 1.0]))
    scores = score_pool("greedy", post, ctx())
    torch.testing.assert_close(scores, torch.tensor([-1.5, -0.5], dtype=torch.float64))


@pytest.mark.parametrize(
    ("name", "score", "reason"),
    [
        ("lcb", 1.24, "lcb=-1.240 eV"),
        ("greedy", 0.5, "greedy"),
        ("uncertainty", 0.25, "sigma=0.250 eV"),
        ("thompson", 0.7, "thompson draw=-0.700 eV"),
        ("random", 0.123456, "random=0.1235"),
    ],
)
def test_reason_templates(name: str, score: float, reason: str) -> None:
    assert get_acquisition(name).describe(score) == reason


def test_registry_refuses_duplicate_names() -> None:
    before = ACQUISITIONS.names()
    with pytest.raises(AcquisitionError, match="'lcb' is already registered"):

        @register_acquisition("lcb", description="again")
        def _again(model: PoolEnsembleModel, context: AcquisitionContext) -> torch.Tensor:
            return torch.zeros(model.pool_size)

    assert ACQUISITIONS.names() == before
    assert get_acquisition("lcb").description.startswith("optimistic")


def test_fresh_registry_registers_and_refuses_duplicates() -> None:
    registry = AcquisitionRegistry()

    @registry.register("first_index", description="test", needs_spread=False)
    def _first(model: PoolEnsembleModel, context: AcquisitionContext) -> torch.Tensor:
        return -torch.arange(model.pool_size, dtype=torch.float64)

    assert "first_index" in registry and len(registry) == 1
    scores = registry.get("first_index")(posterior([0.0, 0.0], [0.1, 0.1]), ctx())
    assert int(scores.argmax()) == 0
    with pytest.raises(AcquisitionError, match="already registered"):
        registry.register("first_index", description="twice")


def test_registry_refuses_non_identifier_names() -> None:
    with pytest.raises(AcquisitionError, match="identifier, got 'my acq'"):
        AcquisitionRegistry().register("my acq", description="x")


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(AcquisitionError, match=r"unknown acquisition 'lbc'; valid: \[.*'lcb'.*\]"):
        get_acquisition("lbc")


def test_acquisition_error_is_a_loop_error_and_value_error() -> None:
    assert issubclass(AcquisitionError, LoopError)
    assert issubclass(AcquisitionError, ValueError)


def test_wrong_output_shape_and_nan_scores_are_refused() -> None:
    registry = AcquisitionRegistry()

    @registry.register("short", description="test", needs_spread=False)
    def _short(model: PoolEnsembleModel, context: AcquisitionContext) -> torch.Tensor:
        return torch.zeros(model.pool_size - 1)

    @registry.register("nan", description="test", needs_spread=False)
    def _nan(model: PoolEnsembleModel, context: AcquisitionContext) -> torch.Tensor:
        return torch.full((model.pool_size,), math.nan)

    post = posterior([0.0, 1.0], [0.1, 0.1])
    with pytest.raises(AcquisitionError, match=r"'short' returned shape \(1,\), expected \(2,\)"):
        registry.get("short")(post, ctx())
    with pytest.raises(AcquisitionError, match="'nan' produced NaN"):
        registry.get("nan")(post, ctx())


def test_ei_needs_incumbent() -> None:
    with pytest.raises(AcquisitionError, match="'ei' needs context.best_label_ev"):
        score_pool("ei", posterior([0.0, 1.0], [0.1, 0.2]), ctx())


def test_target_window_needs_window() -> None:
    with pytest.raises(AcquisitionError, match="'target_window' needs context.target_window_ev"):
        score_pool("target_window", posterior([0.0, 1.0], [0.1, 0.2]), ctx())


def test_spread_acquisitions_refuse_single_member() -> None:
    single = EnsemblePosterior(torch.tensor([[[0.0], [1.0]]], dtype=torch.float64))
    with pytest.raises(AcquisitionError, match="'lcb' needs an ensemble of >= 2 members, got 1"):
        score_pool("lcb", single, ctx())
    torch.testing.assert_close(
        score_pool("greedy", single, ctx()), torch.tensor([0.0, -1.0], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (torch.zeros(4, 3, 2), r"shape \(4, 3, 2\); expected K x N x 1"),
        (torch.zeros(3, 4, 2, 1), r"shape \(3, 4, 2, 1\); expected K x N x 1"),
        (torch.zeros(4, 0, 1), "pool is empty"),
        (torch.tensor([[[0.0], [math.nan]], [[1.0], [1.0]]]), r"non-finite .* candidates \[1\]"),
    ],
)
def test_bad_posteriors_are_refused(values: torch.Tensor, message: str) -> None:
    with pytest.raises(AcquisitionError, match=message):
        score_pool("greedy", EnsemblePosterior(values), ctx())


def test_non_ensemble_posterior_is_refused() -> None:
    gaussian = TorchPosterior(torch.distributions.Normal(torch.zeros(3, 1), torch.ones(3, 1)))
    with pytest.raises(AcquisitionError, match="expected a botorch EnsemblePosterior, got Torch"):
        score_pool("greedy", gaussian, ctx())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": -1.0}, "beta must be finite and >= 0, got -1.0"),
        ({"beta": math.inf}, "beta must be finite and >= 0, got inf"),
        ({"q": 0}, "q must be >= 1, got 0"),
        ({"thompson_draw": "members"}, r"unknown thompson_draw 'members'; valid: \['member'"),
        ({"target_window_ev": (1.0, 0.5)}, r"lo < hi, got \(1.0, 0.5\)"),
        ({"best_label_ev": math.nan}, "best_label_ev is NaN"),
    ],
)
def test_context_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AcquisitionError, match=message):
        ctx(**kwargs)
