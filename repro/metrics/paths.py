"""Shape of 1-D paths: how straight a trajectory is, how monotone and how rough the loss along a path is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from repro.landscape.params import ParamVector


@dataclass(frozen=True)
class Straightness:
    displacement: float  # ‖θ_T − θ_0‖
    path_length: float  # Σ ‖θ_{t+1} − θ_t‖
    ratio: float  # displacement / path_length, 1 for a straight line


def trajectory_straightness(snapshots: Sequence[ParamVector] | np.ndarray) -> Straightness:
    """Displacement over path length of a sequence of points (ParamVectors or rows of an array, e.g. projected
    (α, β) coordinates)."""
    if isinstance(snapshots, np.ndarray) or (len(snapshots) and not isinstance(snapshots[0], ParamVector)):
        pts = np.asarray(snapshots, dtype=np.float64)
        steps = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
        disp = float(np.linalg.norm(pts[-1] - pts[0]))
    else:
        steps = sum((snapshots[i + 1] - snapshots[i]).norm() for i in range(len(snapshots) - 1))
        disp = (snapshots[-1] - snapshots[0]).norm()
    return Straightness(disp, steps, disp / steps if steps > 0 else 1.0)


@dataclass(frozen=True)
class Monotonicity:
    fraction_decreasing: float  # share of consecutive steps with y_{t+1} < y_t
    total_variation_ratio: float  # |y_T − y_0| / Σ|Δy|: 1 for a monotone path
    net_change: float


def monotonicity(ys: Sequence[float]) -> Monotonicity:
    y = np.asarray(ys, dtype=np.float64)
    d = np.diff(y)
    tv = float(np.abs(d).sum())
    return Monotonicity(float(np.mean(d < 0)) if len(d) else 1.0,
                        float(abs(y[-1] - y[0]) / tv) if tv > 0 else 1.0, float(y[-1] - y[0]))


def roughness(xs: Sequence[float], ys: Sequence[float]) -> float:
    """RMS of the discrete second derivative of y(x) divided by the range of y: scale-free; 0 for a straight
    line, small for a smooth bowl sampled finely, large for a jagged curve. ``xs`` may be non-uniform."""
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if len(x) < 3:
        return 0.0
    h1, h2 = np.diff(x)[:-1], np.diff(x)[1:]
    d2 = 2 * (h1 * y[2:] - (h1 + h2) * y[1:-1] + h2 * y[:-2]) / (h1 * h2 * (h1 + h2))
    span = float(np.ptp(y)) or 1.0
    width = float(x[-1] - x[0]) or 1.0
    return float(np.sqrt(np.mean(d2**2)) * width**2 / span)
