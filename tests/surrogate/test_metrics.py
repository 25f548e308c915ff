from __future__ import annotations

import numpy as np
import pytest

from alloop.surrogate.errors import SurrogateError
from alloop.surrogate.metrics import (
    confident_fraction_mae,
    fit_std_scale,
    mae,
    miscalibration_area,
    spearman_std_error,
    success_rate,
)


def test_accuracy_metrics() -> None:
    y = np.array([0.0, 1.0, 2.0, 3.0])
    p = np.array([0.05, 1.2, 2.0, 2.5])
    assert mae(p, y) == pytest.approx((0.05 + 0.2 + 0 + 0.5) / 4)
    assert success_rate(p, y) == pytest.approx(0.5)
    assert success_rate(p, y, threshold_ev=0.3) == pytest.approx(0.75)


def test_miscalibration_area() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=20000)
    zeros, ones = np.zeros_like(y), np.ones_like(y)
    assert miscalibration_area(zeros, ones, y) < 0.01
    assert miscalibration_area(zeros, 5 * ones, y) > 0.3  # under-confident
    assert miscalibration_area(zeros, 0.2 * ones, y) > 0.3  # over-confident


def test_fit_std_scale_recovers_the_missing_factor() -> None:
    rng = np.random.default_rng(1)
    y = 2.0 * rng.normal(size=5000)
    zeros, ones = np.zeros_like(y), np.ones_like(y)
    assert fit_std_scale(zeros, ones, y) == pytest.approx(2.0, rel=0.05)
    assert fit_std_scale(zeros, np.zeros_like(y), y) == 1.0


def test_uncertainty_ranking_metrics() -> None:
    y = np.zeros(10)
    p = np.arange(10) * 0.1
    assert spearman_std_error(np.arange(10.0), p, y) == pytest.approx(1.0)
    assert spearman_std_error(-np.arange(10.0), p, y) == pytest.approx(-1.0)
    assert spearman_std_error(np.ones(10), p, y) == 0.0
    assert confident_fraction_mae(np.arange(10.0), p, y, fraction=0.2) == pytest.approx(0.05)


def test_metric_errors() -> None:
    with pytest.raises(SurrogateError, match="equally long, got \\[2, 3\\]"):
        mae(np.zeros(2), np.zeros(3))
    with pytest.raises(SurrogateError, match="fraction must be in \\(0, 1\\], got 0"):
        confident_fraction_mae(np.ones(3), np.ones(3), np.ones(3), fraction=0)
