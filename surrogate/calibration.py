"""Calibrating the ensemble spread from cross-validated residuals.

The members of a cross-fitted ensemble (:mod:`alloop.surrogate.crossfit`) each hold out one
fold, so every label has an out-of-fold residual: the error of a model that never saw it. The
predictive standard deviation is then

    σ² = (scale · σ_ens)² + floor²

with ``σ_ens`` the members' spread. The floor matters at small data, where the members agree
more than their errors do.

What cannot be used is the spread *at the labels*: K - 1 of the K members trained on each label
and sit on it, so there the spread is just the held-out member's residual over K (measured on
the FG stand-in at 25 and 100 labels: correlation 0.99-1.00 between the two). Fitting σ on those
pairs finds "the spread explains every error" and leaves the pool at 61-75 % coverage. So the
residuals are paired with nothing: they are read as draws from the mixture of Gaussians whose
σ follow the spread at *unlabelled* pairs (the labelled surfaces and adsorbates in the
combinations not yet labelled, whose spread every member gives unseen):

1. ``(scale, floor)`` maximise the likelihood of the residuals under that mixture (grids:
   scale 0 or 0.1–20, floor 0 or 0.005–2 eV; the spreads summarised by ``SPREAD_QUANTILES``
   quantiles);
2. both are stretched by one factor, ``stretch``:

   * ``quantile`` (shipped): the mixture's 95 % quantile of |x| is matched to the residuals'
     ⌈(n + 1)·0.95⌉-th smallest |r| (the split-conformal rank: at small n the largest
     residuals set it, and σ leans wide). Exact when the Gaussian mixture holds; wider when the
     residuals have heavier tails.
   * ``unpaired``: 95 % of all (residual, unlabelled σ) combinations fall within 1.96 σ. Wide
     where the spread ranks errors well (a synthetic set whose σ is exactly 2·spread + 0.1 eV:
     1.6× too wide, 99 % coverage).

On the FG stand-in (seeds 10 and 11, not the learning curve's, at 25, 100 and 500 labels) the
pool coverage was 90–95 % with ``quantile``, 93–99 % with ``unpaired`` (98–99 % at 500 labels:
too wide), 84–93 % matching the plain 95 % quantile of |r| (no conformal rank), and 61–75 % for
the earlier fit on the labels' own spreads. ``make bench-surrogate-curve`` scores both
stretches on the same fits.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import erf
from torch import Tensor

from alloop.surrogate.errors import SurrogateError

__all__ = [
    "COVERAGE",
    "MAX_UNLABELLED_PAIRS",
    "MIN_CALIBRATION_LABELS",
    "SPREAD_QUANTILES",
    "STRETCHES",
    "Z_95",
    "calibrated_std",
    "fit_spread_calibration",
]

#: the central interval the conformal step sizes, and its Gaussian half-width in σ
COVERAGE = 0.95
Z_95 = 1.959964

#: fewer residuals than this: σ falls back to the residuals' RMS alone (scale 0)
MIN_CALIBRATION_LABELS = 5
#: at most this many unlabelled combinations (seeded choice) give the spreads
MAX_UNLABELLED_PAIRS = 2000
#: how the fitted σ is sized (module docstring): ``quantile`` ships, ``unpaired`` is selectable
STRETCHES = ("quantile", "unpaired")
#: how many quantiles of the unlabelled spreads stand for their distribution
SPREAD_QUANTILES = 64

_SCALE_GRID = np.concatenate([[0.0], np.exp(np.linspace(np.log(0.1), np.log(20.0), 41))])
_FLOOR_GRID_EV = np.concatenate([[0.0], np.exp(np.linspace(np.log(0.005), np.log(2.0), 41))])


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    if len(v) == 0 or not np.isfinite(v).all():
        raise SurrogateError(f"calibration needs finite, non-empty {name}, got {len(v)} values")
    return v


def fit_spread_calibration(
    residual_ev: np.ndarray, unlabelled_std_ev: np.ndarray, stretch: str = "quantile"
) -> tuple[float, float]:
    """``(scale, floor_ev)`` for ``σ² = (scale · σ_ens)² + floor_ev²`` (module docstring).

    With fewer than :data:`MIN_CALIBRATION_LABELS` residuals: scale 0, floor their RMS.

    Args:
        residual_ev: `N` out-of-fold residuals (eV).
        unlabelled_std_ev: the ensemble spread (eV) at `M` pairs no member trained on, any
            number of them.
        stretch: one of :data:`STRETCHES` (module docstring; ``quantile`` ships).

    Raises:
        SurrogateError: empty or non-finite input, or an unknown ``stretch``.
    """
    if stretch not in STRETCHES:
        raise SurrogateError(f"unknown calibration stretch {stretch!r}; one of {STRETCHES}")
    r = _finite("residuals", residual_ev)
    if len(r) < MIN_CALIBRATION_LABELS:
        return 0.0, float(np.sqrt(np.mean(r**2)))
    spread = _finite("unlabelled spreads", unlabelled_std_ev)
    t = np.quantile(spread, (np.arange(SPREAD_QUANTILES) + 0.5) / SPREAD_QUANTILES)
    loglik = np.empty((len(_SCALE_GRID), len(_FLOOR_GRID_EV)))
    for k, s in enumerate(_SCALE_GRID):  # one scale at a time: F x Q x N stays small
        var = np.maximum((s * t[None, :]) ** 2 + _FLOOR_GRID_EV[:, None] ** 2, 1e-10)
        dens = np.exp(-0.5 * r[None, None, :] ** 2 / var[..., None]) / np.sqrt(var[..., None])
        loglik[k] = np.log(dens.mean(axis=1) + 1e-300).mean(axis=-1)
    i, j = np.unravel_index(int(np.argmax(loglik)), loglik.shape)
    scale, floor = float(_SCALE_GRID[i]), float(_FLOOR_GRID_EV[j])
    sigma = np.maximum(np.sqrt((scale * spread) ** 2 + floor**2), 1e-10)
    if stretch == "quantile":
        level = min(1.0, np.ceil((len(r) + 1) * COVERAGE) / len(r))
        factor = float(np.quantile(np.abs(r), level, method="higher")) / _mixture_quantile(sigma)
    else:
        factor = _unpaired_factor(np.sort(np.abs(r)), sigma)
    return scale * factor, floor * factor


def _mixture_quantile(sigma: np.ndarray) -> float:
    """The :data:`COVERAGE` quantile of |x| for x drawn from the equal mixture of N(0, σ_i²)."""
    lo, hi = 0.0, float(sigma.max()) * 10.0
    for _ in range(60):  # the mixture's CDF of |x| grows with x
        mid = 0.5 * (lo + hi)
        inside = float(np.mean(erf(mid / (sigma * np.sqrt(2.0)))))
        lo, hi = (mid, hi) if inside < COVERAGE else (lo, mid)
    return hi


def _unpaired_factor(abs_resid_sorted: np.ndarray, sigma: np.ndarray) -> float:
    """The factor at which :data:`COVERAGE` of all (residual, σ) combinations fall within
    ``Z_95 · factor · σ`` (bisection on a log scale: coverage grows with the factor)."""

    def covered(factor: float) -> float:
        below = np.searchsorted(abs_resid_sorted, Z_95 * factor * sigma, side="right")
        return float(np.mean(below) / len(abs_resid_sorted))

    lo, hi = 1e-3, 1e3
    if covered(hi) < COVERAGE:
        return hi
    for _ in range(60):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if covered(mid) < COVERAGE else (lo, mid)
    return hi


def calibrated_std(std_ev: Tensor, scale: float, floor_ev: float) -> Tensor:
    """`P` calibrated σ (eV) from `P` ensemble spreads."""
    return torch.sqrt((scale * std_ev) ** 2 + floor_ev**2)
