"""The small-data levers: spread calibration from out-of-fold residuals, the scaling prior,
fold dealing, and a cross-fitted ensemble with a prior on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alloop.surrogate.calibration import (
    MIN_CALIBRATION_LABELS,
    calibrated_std,
    fit_spread_calibration,
)
from alloop.surrogate.errors import SurrogateError, TrainingError
from alloop.surrogate.fidelity import assign_folds
from alloop.surrogate.prior import ScalingPrior, choose_strength, fit_scaling_prior
from alloop.surrogate.types import SurrogateSample

from .conftest import tiny_config, tiny_samples


def _coverage(resid: np.ndarray, std: np.ndarray) -> float:
    return float(np.mean(np.abs(resid) <= 1.959964 * std))


def test_calibration_recovers_a_known_spread_on_a_synthetic_set() -> None:
    """Residuals drawn with σ = 2·spread + 0.1 eV (in quadrature): the fit finds the scale
    and floor, and 95 % intervals cover about 95 % of fresh draws; the raw spread covers far
    less (the overconfident ensemble the calibration exists for)."""
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.02, 0.3, 400)
    true_std = np.sqrt((2.0 * spread) ** 2 + 0.1**2)
    scale, floor = fit_spread_calibration(rng.normal(0.0, true_std), spread)
    assert scale == pytest.approx(2.0, rel=0.2)
    assert floor == pytest.approx(0.1, abs=0.04)
    fresh = rng.normal(0.0, true_std)
    sigma = calibrated_std(torch.tensor(spread), scale, floor).numpy()
    assert 0.92 <= _coverage(fresh, sigma) <= 0.98
    assert _coverage(fresh, spread) < 0.75


def test_calibration_floor_when_the_spread_says_nothing() -> None:
    """Constant spread, residuals of 0.3 eV: the floor (or scale) carries the whole σ."""
    rng = np.random.default_rng(1)
    resid = rng.normal(0.0, 0.3, 200)
    scale, floor = fit_spread_calibration(resid, np.full(200, 0.01))
    sigma = float(calibrated_std(torch.tensor([0.01]), scale, floor))
    assert sigma == pytest.approx(0.3, rel=0.15)


def test_calibration_with_few_residuals_uses_their_rms() -> None:
    resid = np.array([0.3, -0.4, 0.0])[: MIN_CALIBRATION_LABELS - 2]
    scale, floor = fit_spread_calibration(resid, np.array([0.1, 0.2, 0.3])[: len(resid)])
    assert scale == 1.0
    assert floor == pytest.approx(np.sqrt(np.mean(resid**2)))


def test_calibration_refuses_bad_input() -> None:
    with pytest.raises(SurrogateError, match="equally many finite"):
        fit_spread_calibration(np.array([0.1, 0.2]), np.array([0.1]))
    with pytest.raises(SurrogateError, match="equally many finite"):
        fit_spread_calibration(np.array([np.nan] * 6), np.ones(6))
    with pytest.raises(SurrogateError, match="equally many finite"):
        fit_spread_calibration(np.array([]), np.array([]))


def _scaling_data(n: int, seed: int = 0) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels that follow the prior's own form exactly, plus a little noise."""
    rng = np.random.default_rng(seed)
    keys = ["A", "B", "C"]
    a, b = np.array([0.0, -0.5, 0.4]), np.array([1.0, 1.5, 0.6])
    w = np.array([0.3, -0.2, 0.0, 0.1])
    s = rng.integers(0, 3, n)
    d = rng.normal(size=(n, 4))
    y = -1.0 + a[s] + b[s] * (d @ w) + rng.normal(0, 0.01, n)
    return keys, torch.tensor(s), torch.tensor(d), torch.tensor(y)


def test_scaling_prior_fits_its_own_form_and_round_trips() -> None:
    keys, s, d, y = _scaling_data(120)
    prior = fit_scaling_prior(keys, s[:100], d[:100], y[:100], strength=1e-3)
    err = (prior.predict(keys, s[100:], d[100:]) - y[100:]).abs().mean()
    assert float(err) < 0.03
    again = ScalingPrior.from_state(prior.to_state())
    assert torch.allclose(again.predict(keys, s, d), prior.predict(keys, s, d))
    # an unknown surface falls back to offset 0, slope 1
    unseen = prior.predict(["Z"], torch.zeros(1, dtype=torch.long), d[:1])
    assert float(unseen) == pytest.approx(prior.intercept + float(d[0] @ prior.weights))


def test_scaling_prior_strength_is_chosen_by_cross_validation() -> None:
    keys, s, d, y = _scaling_data(60)
    folds = torch.arange(60) % 5
    assert choose_strength(keys, s, d, y, folds, grid=(1e-3, 10.0)) == 1e-3


def test_scaling_prior_refuses_bad_input() -> None:
    keys, s, d, y = _scaling_data(10)
    with pytest.raises(SurrogateError, match="equally many"):
        fit_scaling_prior(keys, s, d[:5], y, strength=0.1)
    with pytest.raises(SurrogateError, match="strength must be > 0"):
        fit_scaling_prior(keys, s, d, y, strength=0.0)
    with pytest.raises(SurrogateError, match="malformed prior state"):
        ScalingPrior.from_state({"slab_keys": ["A"]})


def test_folds_are_balanced_per_fidelity_and_seeded() -> None:
    slab = tiny_samples()[0].slab
    samples = [SurrogateSample("Pt", slab, "C", -1.0, fidelity=i % 3 == 0) for i in range(23)]
    folds = assign_folds(samples, 5, seed=3)
    assert folds == assign_folds(samples, 5, seed=3)
    assert folds != assign_folds(samples, 5, seed=4)
    for fid in (0, 1):
        counts = np.bincount([f for f, s in zip(folds, samples, strict=True) if s.fidelity == fid])
        assert counts.max() - counts.min() <= 1
    with pytest.raises(SurrogateError, match="2 <= folds <= samples"):
        assign_folds(samples[:3], 5, seed=0)


def test_cross_fitted_ensemble_with_prior_calibrates_on_every_label() -> None:
    from dataclasses import replace

    from alloop.surrogate.ensemble import AdsMTEnsemble

    samples = tiny_samples()
    cfg = replace(tiny_config(max_epochs=4), split="cross_fit", prior_mean="scaling")
    ens = AdsMTEnsemble(cfg, seed=5)
    report = ens.fit(samples)
    assert report.n_train == report.n_val == len(samples)  # every label validated out of fold
    assert len(ens.priors) == cfg.ensemble_size
    assert report.std_floor_ev >= 0.0
    pred = ens.predict_samples(samples)
    post = ens.pool_posterior(pred)
    assert torch.allclose(post.mean.squeeze(-1), pred.mean_ev.to(post.mean.dtype), atol=1e-6)
    assert torch.allclose(
        post.variance.squeeze(-1).sqrt(), pred.std_ev.to(post.mean.dtype), rtol=1e-4, atol=1e-6
    )
    loaded = AdsMTEnsemble.from_bytes(ens.to_bytes(), device="cpu")
    again = loaded.predict_samples(samples)
    assert torch.allclose(again.mean_ev, pred.mean_ev, atol=1e-5)
    assert torch.allclose(again.std_ev, pred.std_ev, atol=1e-5)
    with pytest.raises(TrainingError, match="at least 2 samples"):
        AdsMTEnsemble(cfg, seed=5).fit(samples[:1])


def test_cross_fitted_members_start_fresh_even_when_handed_a_warm_start(
    fitted_tiny_ensemble,  # noqa: ANN001
) -> None:
    """Last round's member k saw the labels fold k now holds out: reusing its weights would
    make the out-of-fold residuals, and so the calibrated σ, too small."""
    from dataclasses import replace

    from alloop.surrogate.ensemble import AdsMTEnsemble

    old, _ = fitted_tiny_ensemble
    cfg = replace(old.config, split="cross_fit")
    report = AdsMTEnsemble(cfg, seed=1).fit(tiny_samples(), warm_start=old.to_bytes())
    assert not report.warm_started
