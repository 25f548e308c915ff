"""Calibrating the ensemble spread from cross-validated residuals.

The members of a cross-fitted ensemble (:mod:`alloop.surrogate.crossfit`) each hold out one
fold, so every label has an out-of-fold residual: the error of a model that never saw it. The
predictive standard deviation is then

    σ² = (scale · σ_ens)² + floor²

with ``σ_ens`` the members' spread and ``(scale, floor)`` the pair that maximises the Gaussian
likelihood of the out-of-fold residuals. The floor matters at small data, where the members
agree more than their errors do (the spread alone ranks errors poorly there).

The likelihood fixes the shape; the size is then set the split-conformal way: both terms are
stretched by one factor so that the ⌈(n + 1)·0.95⌉-th smallest of the n standardised residuals
|r|/σ sits at 1.96, so 95 % Gaussian intervals cover about 95 % of new labels like these even
when the residuals have heavier tails than a Gaussian (with few labels the largest residual
sets it, and the intervals lean wide).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from alloop.surrogate.errors import SurrogateError

__all__ = ["COVERAGE", "MIN_CALIBRATION_LABELS", "Z_95", "calibrated_std", "fit_spread_calibration"]

#: the central interval the conformal step sizes, and its Gaussian half-width in σ
COVERAGE = 0.95
Z_95 = 1.959964

#: fewer residuals than this: σ falls back to the uncalibrated spread plus the residuals' RMS
MIN_CALIBRATION_LABELS = 5

_SCALE_GRID = np.concatenate([[0.0], np.exp(np.linspace(np.log(0.1), np.log(20.0), 81))])
_FLOOR_GRID_EV = np.concatenate([[0.0], np.exp(np.linspace(np.log(0.005), np.log(2.0), 81))])


def fit_spread_calibration(residual_ev: np.ndarray, std_ev: np.ndarray) -> tuple[float, float]:
    """``(scale, floor_ev)`` for ``σ² = (scale · std_ev)² + floor_ev²``: the pair maximising
    the Gaussian likelihood of ``residual_ev`` (grids: scale 0 or 0.1–20, floor 0 or
    0.005–2 eV), both then stretched by the conformal factor (module docstring).

    With fewer than :data:`MIN_CALIBRATION_LABELS` residuals: scale 1, floor the residuals' RMS.

    Args:
        residual_ev: `N` out-of-fold residuals (eV).
        std_ev: `N` ensemble spreads at the same labels (eV).

    Raises:
        SurrogateError: empty, unequal lengths, or non-finite input.
    """
    r = np.asarray(residual_ev, dtype=np.float64).ravel()
    s = np.asarray(std_ev, dtype=np.float64).ravel()
    if len(r) == 0 or len(r) != len(s) or not (np.isfinite(r).all() and np.isfinite(s).all()):
        raise SurrogateError(
            f"calibration needs equally many finite residuals and spreads, got {len(r)}, {len(s)}"
        )
    if len(r) < MIN_CALIBRATION_LABELS:
        return 1.0, float(np.sqrt(np.mean(r**2)))
    var = (_SCALE_GRID[:, None, None] * s[None, None, :]) ** 2 + (
        _FLOOR_GRID_EV[None, :, None] ** 2
    )
    var = np.maximum(var, 1e-8)
    nll = np.mean(np.log(var) + r[None, None, :] ** 2 / var, axis=-1)
    i, j = np.unravel_index(int(np.argmin(nll)), nll.shape)
    scale, floor = float(_SCALE_GRID[i]), float(_FLOOR_GRID_EV[j])
    sigma = np.maximum(np.sqrt((scale * s) ** 2 + floor**2), 1e-8)
    z = np.sort(np.abs(r) / sigma)
    rank = min(len(z), int(np.ceil((len(z) + 1) * COVERAGE)))
    stretch = float(z[rank - 1]) / Z_95 if z[rank - 1] > 0 else 1.0
    return scale * stretch, floor * stretch


def calibrated_std(std_ev: Tensor, scale: float, floor_ev: float) -> Tensor:
    """`P` calibrated σ (eV) from `P` ensemble spreads."""
    return torch.sqrt((scale * std_ev) ** 2 + floor_ev**2)
