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
from alloop.surrogate.prior import (
    PriorLabels,
    ScalingPrior,
    choose_strength,
    fit_scaling_prior,
)
from alloop.surrogate.types import SurrogateSample

from .conftest import tiny_config, tiny_samples


def _coverage(resid: np.ndarray, std: np.ndarray) -> float:
    return float(np.mean(np.abs(resid) <= 1.959964 * std))


def test_calibration_recovers_a_known_spread_on_a_synthetic_set() -> None:
    """Residuals drawn with σ = 2·spread + 0.1 eV (in quadrature) at pairs whose spreads are
    *not* handed over with them (only the spreads of other, unlabelled pairs from the same
    distribution): σ keeps the shape (wider where the spread is) and about the size, the 95 %
    intervals cover about 95 % of fresh draws, and the raw spread covers far less (the
    overconfident ensemble the calibration exists for). The ``unpaired`` stretch errs wide when
    the spread ranks errors this well."""
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.02, 0.3, 1500)
    true_std = np.sqrt((2.0 * spread) ** 2 + 0.1**2)
    resid = rng.normal(0.0, true_std)[:500]
    scale, floor = fit_spread_calibration(resid, spread[500:])
    fresh = rng.normal(0.0, true_std)
    sigma = calibrated_std(torch.tensor(spread), scale, floor).numpy()
    assert 0.92 <= _coverage(fresh, sigma) <= 0.98
    ratio = sigma / true_std
    assert ratio.min() > 0.8 and ratio.max() < 1.3 and ratio.max() / ratio.min() < 1.5
    assert _coverage(fresh, spread) < 0.75
    wide = calibrated_std(
        torch.tensor(spread), *fit_spread_calibration(resid, spread[500:], stretch="unpaired")
    ).numpy()
    assert (wide / sigma).min() > 1.2 and _coverage(fresh, wide) > 0.98


def test_calibration_is_not_fooled_by_spreads_that_echo_the_residuals() -> None:
    """What the cross-fitted ensemble hands over at its labels: a spread that is the held-out
    member's residual divided by K (K - 1 members sit on the label). Paired with the
    residuals such spreads would "explain" every error (the earlier calibration did that and
    covered 61-75 % of the FG pool); this one only reads the spread at unlabelled pairs, which
    here says nothing about the 0.3 eV errors, and σ still covers about 95 % of fresh ones."""
    rng = np.random.default_rng(2)
    resid = rng.normal(0.0, 0.3, 300)
    unlabelled = rng.uniform(0.05, 0.15, 2000)  # spread unrelated to the 0.3 eV errors
    scale, floor = fit_spread_calibration(resid, unlabelled)
    fresh = rng.normal(0.0, 0.3, 2000)
    sigma = calibrated_std(torch.tensor(unlabelled), scale, floor).numpy()
    assert 0.92 <= _coverage(fresh, sigma) <= 0.98


def test_calibration_floor_when_the_spread_says_nothing() -> None:
    """Constant spread, residuals of 0.3 eV: the floor (or scale) carries the whole σ."""
    rng = np.random.default_rng(1)
    resid = rng.normal(0.0, 0.3, 200)
    scale, floor = fit_spread_calibration(resid, np.full(200, 0.01))
    sigma = float(calibrated_std(torch.tensor([0.01]), scale, floor))
    assert sigma == pytest.approx(0.3, rel=0.2)


def test_calibration_with_no_unlabelled_spread_is_a_floor() -> None:
    """Every combination labelled: one zero spread stands in, and σ is the floor alone."""
    resid = np.random.default_rng(3).normal(0.0, 0.2, 400)
    scale, floor = fit_spread_calibration(resid, np.zeros(1))
    assert floor == pytest.approx(0.2, rel=0.25)
    assert float(calibrated_std(torch.tensor([0.0, 5.0]), scale, floor)[1]) == pytest.approx(floor)
    assert scale == 0.0


def test_calibration_with_few_residuals_uses_their_rms() -> None:
    resid = np.array([0.3, -0.4, 0.0])[: MIN_CALIBRATION_LABELS - 2]
    scale, floor = fit_spread_calibration(resid, np.array([0.1, 0.2, 0.3]))
    assert scale == 0.0
    assert floor == pytest.approx(np.sqrt(np.mean(resid**2)))


def test_calibration_refuses_bad_input() -> None:
    with pytest.raises(SurrogateError, match="finite, non-empty residuals"):
        fit_spread_calibration(np.array([np.nan] * 6), np.ones(6))
    with pytest.raises(SurrogateError, match="finite, non-empty residuals"):
        fit_spread_calibration(np.array([]), np.array([0.1]))
    with pytest.raises(SurrogateError, match="finite, non-empty unlabelled spreads"):
        fit_spread_calibration(np.ones(6), np.array([]))
    with pytest.raises(SurrogateError, match="unknown calibration stretch 'paired'"):
        fit_spread_calibration(np.ones(6), np.ones(6), stretch="paired")


def _scaling_data(n: int, seed: int = 0, slopes: tuple = (1.0, 1.5, 0.6)):  # noqa: ANN202
    """Labels that follow the prior's own form exactly (8 adsorbates on 3 surfaces), plus a
    little noise."""
    rng = np.random.default_rng(seed)
    keys, smiles = ["A", "B", "C"], [f"C{'C' * i}O" for i in range(8)]
    a, b = np.array([0.0, -0.5, 0.4]), np.array(slopes)
    w = np.array([0.3, -0.2, 0.0, 0.1])
    desc = rng.normal(size=(8, 4))
    s, m = rng.integers(0, 3, n), rng.integers(0, 8, n)
    y = -1.0 + a[s] + b[s] * (desc[m] @ w) + rng.normal(0, 0.01, n)
    return keys, torch.tensor(s), smiles, torch.tensor(desc), torch.tensor(m), torch.tensor(y)


def test_scaling_prior_fits_its_own_form_and_round_trips() -> None:
    keys, s, smiles, d, m, y = _scaling_data(120)
    labels = PriorLabels(keys, s, smiles, d, m, y)
    prior = fit_scaling_prior(labels.subset(torch.arange(100)), strength=(1e-3, 1.0))
    err = (prior.predict(keys, s[100:], smiles, d, m[100:]) - y[100:]).abs().mean()
    assert float(err) < 0.03
    again = ScalingPrior.from_state(prior.to_state())
    assert torch.allclose(
        again.predict(keys, s, smiles, d, m), prior.predict(keys, s, smiles, d, m)
    )
    # an unknown surface falls back to offset 0, slope 1; an unknown adsorbate to offset 0
    zero = torch.zeros(1, dtype=torch.long)
    unseen = prior.predict(["Z"], zero, ["N#N"], d[:1], zero)
    assert float(unseen) == pytest.approx(prior.intercept + float(d[0] @ prior.weights))


def test_adsorbate_offsets_carry_a_label_to_the_other_surfaces() -> None:
    """What the descriptors cannot say about one adsorbate (here: +1 eV on every surface) is
    learnt from its label on one surface and used on the others."""
    keys, s, smiles, d, m, y = _scaling_data(200, slopes=(1.0, 1.0, 1.0))
    y = y + (m == 3).double()
    seen = torch.nonzero((m != 3) | (s == 0)).squeeze(-1)
    other = torch.nonzero((m == 3) & (s != 0)).squeeze(-1)
    errors = []
    for ads_strength in (1e-3, 1e3):  # offsets free, offsets held at zero
        labels = PriorLabels(keys, s, smiles, d, m, y).subset(seen)
        prior = fit_scaling_prior(labels, strength=(1e-3, ads_strength))
        pred = prior.predict(keys, s[other], smiles, d, m[other])
        errors.append(float((pred - y[other]).abs().mean()))
    assert errors[0] < 0.5 * errors[1]


def test_scaling_prior_strength_is_chosen_by_cross_validation() -> None:
    keys, s, smiles, d, m, y = _scaling_data(60)
    folds = torch.arange(60) % 5
    grid = ((1e-3, 1.0), (10.0, 1.0))
    assert choose_strength(PriorLabels(keys, s, smiles, d, m, y), folds, grid) == (1e-3, 1.0)


def test_scaling_prior_refuses_bad_input() -> None:
    keys, s, smiles, d, m, y = _scaling_data(10)
    with pytest.raises(SurrogateError, match="equally many"):
        fit_scaling_prior(PriorLabels(keys, s, smiles, d, m[:5], y), strength=(0.1, 0.1))
    with pytest.raises(SurrogateError, match="strengths must be > 0"):
        fit_scaling_prior(PriorLabels(keys, s, smiles, d, m, y), strength=(0.0, 0.1))
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
