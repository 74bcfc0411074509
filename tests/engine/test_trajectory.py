from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.landscape import ParamVector, pca_directions, project_onto_plane


def _vec(seed: int, n: int = 7) -> ParamVector:
    g = torch.Generator().manual_seed(seed)
    return ParamVector(("a", "b"), (torch.randn(n, generator=g, dtype=torch.float64),
                                    torch.randn(3, 2, generator=g, dtype=torch.float64)))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), coords=st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), min_size=1,
                                                    max_size=4), skew=st.floats(0, 0.9), off=st.floats(0, 2))
def test_projection_recovers_coordinates_and_residual(seed: int, coords, skew: float, off: float) -> None:
    origin, d1, e = _vec(seed), _vec(seed + 1), _vec(seed + 2)
    # d2 deliberately non-orthogonal to d1
    e_perp = e.clone().axpy_(-e.dot(d1) / d1.dot(d1), d1)
    d2 = e_perp.clone().axpy_(skew * e_perp.norm() / d1.norm(), d1)
    # a unit normal to the plane
    n = _vec(seed + 3)
    for d in (d1, d2):
        basis = [d1, d2]
        g = np.array([[x.dot(y) for y in basis] for x in basis])
        c = np.linalg.solve(g, [n.dot(d1), n.dot(d2)])
        n = n.clone().axpy_(-c[0], d1).axpy_(-c[1], d2)
    n.scale_(1.0 / n.norm())
    snaps = [origin.clone().axpy_(a, d1).axpy_(b, d2).axpy_(off, n) for a, b in coords]
    p = project_onto_plane(snaps, origin, d1, d2)
    np.testing.assert_allclose(p.alphas, [a for a, _ in coords], atol=1e-8)
    np.testing.assert_allclose(p.betas, [b for _, b in coords], atol=1e-8)
    np.testing.assert_allclose(p.residual, [off] * len(coords), atol=1e-8)
    for (a, b), rel in zip(coords, p.relative_residual):
        full = (origin.clone().axpy_(a, d1).axpy_(b, d2).axpy_(off, n) - origin).norm()
        at_origin = 1e-12 * max(1.0, origin.norm())  # closer than rounding to θ1: relative residual is 0 by definition
        assert rel == pytest.approx(off / full if full > at_origin else 0.0, abs=1e-8)


def test_projection_rejects_degenerate_plane() -> None:
    d = _vec(1)
    with pytest.raises(ValueError):
        project_onto_plane([_vec(2)], _vec(0), d, d * 2.0)


def test_pca_directions_recover_a_line_trajectory() -> None:
    end, u = _vec(0), _vec(1)
    snaps = [end.clone().axpy_(t, u) for t in np.linspace(0, 5, 6)]
    (p1, p2) = pca_directions(snaps, end, k=2)
    assert abs(p1.vector.cosine(u)) == pytest.approx(1.0, abs=1e-10)
    assert p1.vector.norm() == pytest.approx(1.0)
    assert "explained variance ratio 1.0000" in p1.info.note
