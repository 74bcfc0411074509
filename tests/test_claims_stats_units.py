"""Unit oracles for claims.base.t_interval (mutation-testing kills, issue #10)."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from claims.base import t_interval


def test_t_interval_matches_hand_formula_1d() -> None:
    """Catches a wrong quantile, ddof or sqrt(n) in the interval: compare with the textbook formula."""
    x = [1.0, 2.0, 4.0, 7.0]
    m = float(np.mean(x))
    half = stats.t.ppf(0.975, 3) * float(np.std(x, ddof=1)) / math.sqrt(4)
    lo, hi = t_interval(x)
    assert isinstance(lo, float) and isinstance(hi, float)
    assert math.isclose(lo, m - half, rel_tol=1e-12) and math.isclose(hi, m + half, rel_tol=1e-12)


def test_t_interval_batched_uses_last_axis() -> None:
    """Catches intervals computed over the wrong axis for the coverage simulation."""
    a = np.array([[1.0, 2.0, 4.0, 7.0], [0.0, 0.0, 1.0, 3.0]])
    lo, hi = t_interval(a)
    assert lo.shape == (2,) and hi.shape == (2,)
    for i in range(2):
        l1, h1 = t_interval(a[i])
        assert math.isclose(lo[i], l1, rel_tol=1e-12) and math.isclose(hi[i], h1, rel_tol=1e-12)


def test_t_interval_fewer_than_two_values_is_nan() -> None:
    """Catches a verdict from a single seed: n < 2 must give NaN intervals with the batch shape."""
    lo, hi = t_interval([3.0])
    assert isinstance(lo, float) and isinstance(hi, float)
    assert math.isnan(lo) and math.isnan(hi)
    lo3, hi3 = t_interval(np.ones((2, 3, 1)))
    assert lo3.shape == (2, 3) and hi3.shape == (2, 3)
    lo2, hi2 = t_interval(np.ones((3, 1)))
    assert lo2.shape == (3,) and hi2.shape == (3,)
    assert np.all(np.isnan(lo2)) and np.all(np.isnan(hi2))
