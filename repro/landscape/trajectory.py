"""Projection of training snapshots onto the plane θ1 + span(δ1, δ2) (paper §5, Figure 4).

The coordinates are the least-squares solution of G·c = [⟨θ_t−θ1, δ1⟩, ⟨θ_t−θ1, δ2⟩] with the 2×2 Gram matrix G, so
they are right even when δ1 and δ2 are not orthogonal (δ1 and a cross-task δ2 usually are not: they share the
pre-training start). Each point also carries its off-plane residual: a projection says little about a trajectory
that mostly leaves the plane, and the relative residual makes that visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from repro.landscape.params import ParamVector


@dataclass(frozen=True)
class TrajectoryProjection:
    """Coordinates (α_t, β_t) of θ_t ≈ θ1 + α_t d1 + β_t d2; ``residual`` = ‖θ_t − projection‖ and
    ``relative_residual`` = residual / ‖θ_t − θ1‖ (0 where θ_t = θ1 to within 1e-12·‖θ1‖)."""

    alphas: tuple[float, ...]
    betas: tuple[float, ...]
    residual: tuple[float, ...]
    relative_residual: tuple[float, ...]
    steps: tuple[int, ...] = ()
    gram: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.0), (0.0, 1.0))


def project_onto_plane(
    snapshots: Sequence[ParamVector],
    origin: ParamVector,
    d1: ParamVector,
    d2: ParamVector,
    *,
    steps: Sequence[int] = (),
) -> TrajectoryProjection:
    """Least-squares coordinates of each snapshot in the affine plane origin + span(d1, d2) (float64 dots).

    Computed on ``origin``'s device; snapshots and directions on another device are moved there (one at a time)."""
    device = origin.tensors[0].device if origin.tensors else None
    d1, d2 = d1.to(device=device), d2.to(device=device)  # no copy when they are already there
    g = np.array([[d1.dot(d1), d1.dot(d2)], [d2.dot(d1), d2.dot(d2)]], dtype=np.float64)
    if np.linalg.matrix_rank(g) < 2:
        raise ValueError("d1 and d2 are linearly dependent (or zero); the plane is not defined")
    alphas, betas, res, rel = [], [], [], []
    at_origin = 1e-12 * max(1.0, origin.norm())
    for s in snapshots:
        r = s.to(device=device) - origin  # snapshots are often read to the host while θ1 sits on the GPU
        rhs = np.array([r.dot(d1), r.dot(d2)], dtype=np.float64)
        a, b = np.linalg.solve(g, rhs)
        rr = r.dot(r)
        # ‖r − a d1 − b d2‖² = ‖r‖² − cᵀ rhs at the least-squares solution; recompute directly for accuracy
        off = r.clone().axpy_(-a, d1).axpy_(-b, d2)
        resid = off.norm()
        alphas.append(float(a))
        betas.append(float(b))
        res.append(resid)
        # Points within float rounding of the origin have no meaningful relative residual (0/0): report 0.
        rel.append(resid / np.sqrt(rr) if np.sqrt(rr) > at_origin else 0.0)
    return TrajectoryProjection(
        tuple(alphas), tuple(betas), tuple(res), tuple(rel), tuple(int(x) for x in steps),
        ((float(g[0, 0]), float(g[0, 1])), (float(g[1, 0]), float(g[1, 1]))),
    )
