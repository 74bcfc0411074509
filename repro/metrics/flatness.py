"""Flatness of a minimum from saved curves and surfaces: width of a 1-D sub-level interval, area of a 2-D basin.

Both report whether the region reached the edge of the grid: then the number is only a lower bound and a claim that
compares widths must say so (or extend the grid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class FlatnessWidth:
    """Interval [left, right] around the curve's minimum where loss ≤ threshold (linear interpolation)."""

    width: float
    left: float
    right: float
    argmin: float
    min_value: float
    threshold: float
    hit_left_boundary: bool
    hit_right_boundary: bool

    @property
    def hit_boundary(self) -> bool:
        return self.hit_left_boundary or self.hit_right_boundary


def _crossing(x0: float, y0: float, x1: float, y1: float, level: float) -> float:
    if y1 == y0:
        return x0
    return x0 + (level - y0) * (x1 - x0) / (y1 - y0)


def flatness_width(xs: Sequence[float], ys: Sequence[float], *, eps: float = 0.1,
                   relative: bool = False) -> FlatnessWidth:
    """Width of the connected interval around argmin where y ≤ L_min + ε (or L_min·(1 + ε) if ``relative``).

    Edges are linearly interpolated between the last grid point inside and the first outside. ``xs`` must be
    increasing.
    """
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2 or np.any(np.diff(x) <= 0):
        raise ValueError("xs must be increasing and match ys (at least 2 points)")
    i0 = int(np.nanargmin(y))
    lmin = float(y[i0])
    level = lmin * (1 + eps) if relative else lmin + eps
    inside = y <= level  # NaN counts as outside
    lo = i0
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    hi = i0
    while hi < len(x) - 1 and inside[hi + 1]:
        hi += 1
    hit_l, hit_r = lo == 0, hi == len(x) - 1
    left = float(x[0]) if hit_l else _crossing(x[lo - 1], y[lo - 1], x[lo], y[lo], level)
    right = float(x[-1]) if hit_r else _crossing(x[hi], y[hi], x[hi + 1], y[hi + 1], level)
    return FlatnessWidth(right - left, left, right, float(x[i0]), lmin, level, hit_l, hit_r)


@dataclass(frozen=True)
class BasinArea:
    """Connected sub-level set {L ≤ threshold} containing the grid minimum."""

    cells: int  # number of grid points in the basin
    area: float  # cells × (Δα·Δβ), in squared direction units
    fraction: float  # cells / all grid points
    threshold: float
    min_value: float
    argmin: tuple[float, float]
    touches_boundary: bool


def basin_mask(grid: np.ndarray | Sequence[Sequence[float]], level: float) -> np.ndarray:
    """The 4-connected component of the sub-level set {L ≤ level} that holds the grid minimum, as a boolean mask over
    ``grid[i][j]`` (NaN counted outside). One definition shared by :func:`basin_area` and the figures that draw the
    basin's boundary, so the region a reader sees is the one the area counts."""
    g = np.asarray(grid, dtype=np.float64)
    i, j = np.unravel_index(int(np.nanargmin(g)), g.shape)
    labels, _ = ndimage.label(np.nan_to_num(g, nan=np.inf) <= level)
    return labels == labels[i, j]


def basin_area(alphas: Sequence[float], betas: Sequence[float], grid: np.ndarray | Sequence[Sequence[float]], *,
               eps: float = 0.1, relative: bool = False) -> BasinArea:
    """``grid[i][j]`` at (alphas[i], betas[j]); 4-connectivity; cell area from the mean grid spacings."""
    g = np.asarray(grid, dtype=np.float64)
    a, b = np.asarray(alphas, float), np.asarray(betas, float)
    if g.shape != (len(a), len(b)):
        raise ValueError(f"grid shape {g.shape} does not match axes ({len(a)}, {len(b)})")
    i, j = np.unravel_index(int(np.nanargmin(g)), g.shape)
    lmin = float(g[i, j])
    level = lmin * (1 + eps) if relative else lmin + eps
    basin = basin_mask(g, level)
    cells = int(basin.sum())
    da = float(np.mean(np.diff(a))) if len(a) > 1 else 1.0
    db = float(np.mean(np.diff(b))) if len(b) > 1 else 1.0
    touches = bool(basin[0, :].any() or basin[-1, :].any() or basin[:, 0].any() or basin[:, -1].any())
    return BasinArea(cells, cells * abs(da * db), cells / g.size, level, lmin, (float(a[i]), float(b[j])), touches)


@dataclass(frozen=True)
class BisectionWidth:
    """Width of the sub-level interval {L < level} around a centre along one direction, found by evaluating the loss
    (not read off a saved grid): ``left`` and ``right`` are the distances (≥ 0) from the centre to the first crossing
    of ``level`` on each side; a censored side had no crossing within ``radius`` and holds ``radius``, a lower
    bound (claims REGISTRATION_V3 §2)."""

    width: float  # left + right
    left: float
    right: float
    censored_left: bool
    censored_right: bool
    level: float
    radius: float
    evaluations: int  # loss evaluations spent (both sides)

    @property
    def censored(self) -> bool:
        return self.censored_left or self.censored_right


def _first_crossing(loss_at: Callable[[float], float], sign: float, level: float, radius: float, ladder: int,
                    steps: int) -> tuple[float, bool, int]:
    """(distance, censored, evaluations) on one side: the ladder t_k = radius·k/ladder until L(sign·t_k) ≥ level,
    then ``steps`` halvings of [t_{k−1}, t_k] keeping L(lo) < level ≤ L(hi) (NaN counts as crossed: a point where the
    loss is not finite is not inside the basin), the midpoint of the final bracket."""
    evals = 0

    def crossed(t: float) -> bool:
        nonlocal evals
        evals += 1
        v = float(loss_at(sign * t))
        return not v < level  # NaN: crossed

    prev = 0.0
    for k in range(1, ladder + 1):
        t = radius * k / ladder
        if crossed(t):
            lo, hi = prev, t
            for _ in range(steps):
                mid = 0.5 * (lo + hi)
                if crossed(mid):
                    hi = mid
                else:
                    lo = mid
            return 0.5 * (lo + hi), False, evals
        prev = t
    return float(radius), True, evals


def bisection_width(loss_at: Callable[[float], float], *, level: float, radius: float, ladder: int,
                    steps: int = 8) -> BisectionWidth:
    """Distance to the first crossing of ``level`` on each side of the centre t = 0 of ``loss_at(t)`` (t signed, in
    the direction's units), out to ``radius`` (REGISTRATION_V3 §2).

    Why not the grid width (:func:`flatness_width`): a grid's interpolated edge depends on the grid spacing and on
    the grid minimum (which need not be the centre), and its censoring on the grid's edge. Here the reference is the
    centre itself (the caller sets ``level`` = L(centre) + ε), the first crossing is located to within
    radius / ladder / 2^(steps+1) of a point where L changes sign about the level, and a later dip back below the
    level does not widen the interval (the first crossing is the wall of the basin the centre is in). Each side costs
    at most ``ladder + steps`` evaluations; the ladder (rather than bisecting [0, radius] at once) keeps bisection
    from jumping over a narrow wall to a crossing further out.
    """
    if not radius > 0 or ladder < 1 or steps < 0:
        raise ValueError(f"need radius > 0, ladder ≥ 1, steps ≥ 0; got {radius}, {ladder}, {steps}")
    right, cr, er = _first_crossing(loss_at, 1.0, level, radius, ladder, steps)
    left, cl, el = _first_crossing(loss_at, -1.0, level, radius, ladder, steps)
    return BisectionWidth(left + right, left, right, cl, cr, float(level), float(radius), er + el)
