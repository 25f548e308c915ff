"""Accuracy and uncertainty-quality metrics (numpy in, floats out)."""

from __future__ import annotations

import numpy as np
from scipy.special import erfinv
from scipy.stats import spearmanr

from alloop.surrogate.errors import SurrogateError

__all__ = [
    "confident_fraction_mae",
    "fit_std_scale",
    "mae",
    "miscalibration_area",
    "spearman_std_error",
    "success_rate",
]


def _check(*arrays: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    n = {len(a) for a in out}
    if len(n) != 1 or 0 in n:
        raise SurrogateError(f"metric inputs must be non-empty and equally long, got {sorted(n)}")
    return out


def mae(pred_ev: np.ndarray, true_ev: np.ndarray) -> float:
    """Mean absolute error in eV."""
    p, t = _check(pred_ev, true_ev)
    return float(np.mean(np.abs(p - t)))


def success_rate(pred_ev: np.ndarray, true_ev: np.ndarray, threshold_ev: float = 0.1) -> float:
    """Fraction of predictions within ``threshold_ev`` of the truth (AdsMT: 0.1 eV)."""
    p, t = _check(pred_ev, true_ev)
    return float(np.mean(np.abs(p - t) < threshold_ev))


def _observed_proportions(
    mean: np.ndarray, std: np.ndarray, true: np.ndarray, expected: np.ndarray
) -> np.ndarray:
    # Half-width of the central Gaussian interval holding probability p: sigma*sqrt(2)*erfinv(p)
    z = np.abs(true - mean) / np.maximum(std, 1e-12)
    widths = np.sqrt(2.0) * erfinv(np.clip(expected, 0.0, 1.0 - 1e-12))
    return np.mean(z[None, :] <= widths[:, None], axis=1)


def miscalibration_area(
    mean_ev: np.ndarray, std_ev: np.ndarray, true_ev: np.ndarray, num_levels: int = 101
) -> float:
    """Area between the observed and ideal calibration curves of Gaussian central intervals.

    For expected coverage p on ``num_levels`` points of [0, 1], the observed coverage is the
    fraction of |y - mu| within the interval N(mu, sigma) gives probability p. The area is
    the integral of |observed - p| over p (0 = perfectly calibrated, 0.5 = worst).
    """
    m, s, t = _check(mean_ev, std_ev, true_ev)
    expected = np.linspace(0.0, 1.0, num_levels)
    observed = _observed_proportions(m, s, t, expected)
    return float(np.trapezoid(np.abs(observed - expected), expected))


def spearman_std_error(std_ev: np.ndarray, pred_ev: np.ndarray, true_ev: np.ndarray) -> float:
    """Spearman rank correlation between sigma and |error| (higher = sigma ranks errors)."""
    s, p, t = _check(std_ev, pred_ev, true_ev)
    if np.ptp(s) == 0.0:
        return 0.0
    return float(spearmanr(s, np.abs(p - t)).statistic)


def confident_fraction_mae(
    std_ev: np.ndarray, pred_ev: np.ndarray, true_ev: np.ndarray, fraction: float = 0.1
) -> float:
    """MAE (eV) of the ``fraction`` of predictions with the smallest sigma."""
    s, p, t = _check(std_ev, pred_ev, true_ev)
    if not 0.0 < fraction <= 1.0:
        raise SurrogateError(f"fraction must be in (0, 1], got {fraction}")
    k = max(1, int(round(fraction * len(s))))
    idx = np.argsort(s, kind="stable")[:k]
    return float(np.mean(np.abs(p[idx] - t[idx])))


_SCALE_GRID = np.exp(np.linspace(np.log(0.1), np.log(20.0), 241))


def fit_std_scale(mean_ev: np.ndarray, std_ev: np.ndarray, true_ev: np.ndarray) -> float:
    """The factor s in [0.1, 20] (log grid) minimising miscalibration_area(mu, s sigma, y).

    Returns 1 when every sigma is zero (nothing to scale).
    """
    m, s, t = _check(mean_ev, std_ev, true_ev)
    if not np.any(s > 0):
        return 1.0
    areas = [miscalibration_area(m, k * s, t) for k in _SCALE_GRID]
    return float(_SCALE_GRID[int(np.argmin(areas))])
