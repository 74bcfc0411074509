"""SLQ spectral density (issue 19) against planted spectra: Gauss-quadrature exactness on the probes it used, the
density's mass, the trace and second moment within their closed-form Hutchinson variances, the outliers' mass, and
deflation that takes the outliers out of the bulk and puts them back as point masses 1/n."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from spectra import known_spectrum

from repro.curvature import DensityResult, LambdaOperator, lanczos, spectral_density
from repro.storage import from_json_dict, to_json_dict

OUTLIERS = [30.0, 20.0, 10.0]
N = 300


@pytest.fixture(scope="module")
def planted() -> tuple[torch.Tensor, np.ndarray]:
    return known_spectrum(OUTLIERS, N, seed=11, rest=1.0)  # bulk: N−3 values evenly in [−1, 1]


def _hutchinson_sd(B: torch.Tensor, probes: int) -> float:
    """Exact sd of the mean of zᵀBz over Rademacher probes: Var = 2(‖B‖_F² − Σ b_ii²)."""
    return math.sqrt(2.0 * (float((B * B).sum()) - float((torch.diagonal(B) ** 2).sum())) / probes)


class _Spy:
    def __init__(self, A: torch.Tensor) -> None:
        self.A, self.seen = A, []

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.seen.append(v.clone())
        return self.A @ v


def test_nodes_and_weights_are_the_gauss_quadrature_of_each_probe(planted) -> None:
    """Σ_j τ_j θ_j^p = vᵀA^p v for p ≤ 2m−1 with v the probe it used (first vector of each run), τ summing to 1."""
    A, _ = planted
    spy = _Spy(A)
    m = 4
    r = spectral_density(LambdaOperator(spy, size=N), num_probes=3, num_steps=m, seed=2)
    assert r.steps == (m, m, m) and r.num_matvecs == 3 * m and len(spy.seen) == 3 * m
    for i in range(3):
        v = spy.seen[i * m]
        assert float(v.norm()) == pytest.approx(1.0, abs=1e-12)
        assert torch.allclose(v.abs(), torch.full((N,), 1 / math.sqrt(N), dtype=torch.float64))  # scaled ±1
        th, tau = np.asarray(r.nodes[i]), np.asarray(r.weights[i])
        assert tau.sum() == pytest.approx(1.0, abs=1e-12) and (tau > 0).all()
        Ap = v.clone()
        for p in range(2 * m):
            assert float(tau @ th**p) == pytest.approx(float(v @ Ap), rel=1e-9, abs=1e-12), p
            Ap = A @ Ap


def test_density_mass_trace_second_moment_and_outliers(planted) -> None:
    A, lam = planted
    probes = 8
    r = spectral_density(LambdaOperator(A), num_probes=probes, num_steps=60, seed=0)
    grid, dens = np.asarray(r.grid), np.asarray(r.density)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-6)
    assert (dens >= 0).all() and r.sigma == pytest.approx(0.01 * (max(max(n) for n in r.nodes)
                                                                 - min(min(n) for n in r.nodes)), rel=1e-12)
    tr = float(lam.sum())
    assert abs(r.trace - tr) <= 4 * _hutchinson_sd(A, probes)
    assert r.first_moment == pytest.approx(r.trace / N, rel=1e-12)
    assert abs(r.second_moment * N - float((A * A).sum())) <= 4 * _hutchinson_sd(A @ A, probes)
    assert 0 < r.trace_stderr < 4 * _hutchinson_sd(A, probes)
    for x in OUTLIERS:  # converged Ritz values at each outlier, carrying the probes' weights (vᵀu)² ~ 1/N
        assert all(min(abs(np.asarray(n) - x)) < 1e-8 for n in r.nodes)
        assert 0.2 / N < r.mass(x - 5 * r.sigma, x + 5 * r.sigma) < 5.0 / N
    assert r.mass(-1.0 - 5 * r.sigma, 1.0 + 5 * r.sigma) == pytest.approx(1.0 - 3 / N, abs=4.0 / N)
    assert r.converged and r.density_change <= r.tol
    assert r.num_matvecs == probes * 60


def test_deflation_removes_the_outliers_from_the_bulk_and_adds_them_back(planted) -> None:
    A, lam = planted
    top = lanczos(LambdaOperator(A), 3, tol=1e-12, max_iter=80, seed=1, return_vectors=True)
    probes = 6
    r = spectral_density(LambdaOperator(A), num_probes=probes, num_steps=40, seed=0, deflate=top)
    np.testing.assert_allclose(r.deflated_eigenvalues, OUTLIERS, rtol=1e-10)
    assert max(max(n) for n in r.nodes) <= 1.0 + 1e-8 and min(min(n) for n in r.nodes) >= -1.0 - 1e-8
    for x in OUTLIERS:  # each outlier is a point mass of exactly 1/N
        assert r.mass(x - 6 * r.sigma, x + 6 * r.sigma) == pytest.approx(1.0 / N, rel=1e-6)
    assert np.trapezoid(np.asarray(r.density), np.asarray(r.grid)) == pytest.approx(1.0, abs=1e-6)
    U = top.eigenvectors.T
    bulk = A - U @ torch.diag(torch.tensor(top.eigenvalues, dtype=torch.float64)) @ U.T  # P A P
    assert abs(r.trace - float(lam.sum())) <= 4 * _hutchinson_sd(bulk, probes)
    assert r.steps == (40,) * probes and r.num_matvecs == 40 * probes


def test_deflating_exact_eigenvectors_of_a_constant_bulk_gives_the_exact_moments() -> None:
    """diag(30, 20, 10, 2, ..., 2) deflated by e_1..e_3: each projected ±1 probe has ‖z‖² = n − 3 exactly and sees
    the constant bulk 2, so the trace and ‖A‖_F² come out exact with zero spread."""
    from repro.curvature import EigenResult

    d = torch.tensor(OUTLIERS + [2.0] * (N - 3), dtype=torch.float64)
    basis = torch.eye(N, dtype=torch.float64)[:3]
    basis[1] += basis[0]  # spans e_1..e_3 without being orthonormal: the function orthonormalises what it is given
    top = EigenResult(tuple(OUTLIERS), (0.0,) * 3, True, 0, 0.0, "given", 0, 2.0 * basis)
    r = spectral_density(LambdaOperator(torch.diag(d)), num_probes=3, num_steps=5, seed=1, deflate=top)
    assert r.trace == pytest.approx(float(d.sum()), rel=1e-12) and r.trace_stderr == pytest.approx(0.0, abs=1e-9)
    assert r.second_moment == pytest.approx(float((d * d).sum()) / N, rel=1e-12)
    assert r.steps == (1,) * 3  # the bulk is one eigenvalue: an invariant subspace after one step
    assert r.mass(2.0 - 7 * r.sigma, 2.0 + 7 * r.sigma) == pytest.approx((N - 3) / N, rel=1e-7)


def test_deflating_approximate_eigenvectors_keeps_the_outliers_out() -> None:
    """Eigenvectors good to ~1e-3: every Krylov vector is projected, so no Ritz value climbs back to an outlier
    (projecting only the probe would let the outliers' leftover components grow back over 40 steps)."""
    from repro.curvature import EigenResult

    A, _ = known_spectrum(OUTLIERS, N, seed=11, rest=1.0)
    exact = lanczos(LambdaOperator(A), 3, tol=1e-12, max_iter=80, seed=1, return_vectors=True)
    g = torch.Generator().manual_seed(0)
    noisy = exact.eigenvectors + 1e-3 * torch.randn(3, N, generator=g, dtype=torch.float64) / math.sqrt(N)
    approx = EigenResult(exact.eigenvalues, exact.residuals, True, 0, 0.0, "given", 0, noisy)
    r = spectral_density(LambdaOperator(A), num_probes=2, num_steps=40, seed=0, deflate=approx)
    assert max(max(n) for n in r.nodes) <= 1.0 + 1e-3


def test_density_change_is_the_total_variation_to_the_half_length_run(planted) -> None:
    """The same seed with ⌈m/2⌉ steps reruns the first half of every probe's Lanczos run: on a common grid and σ,
    ½∫|ρ_m − ρ_{m/2}| is the reported density_change."""
    A, _ = planted
    kw = dict(num_probes=3, seed=6, sigma=0.5, grid_range=(-5.0, 35.0), grid_size=4001)
    full = spectral_density(LambdaOperator(A), num_steps=7, **kw)
    half = spectral_density(LambdaOperator(A), num_steps=4, **kw)
    assert full.grid == half.grid
    tv = 0.5 * np.trapezoid(np.abs(np.asarray(full.density) - np.asarray(half.density)), np.asarray(full.grid))
    assert full.density_change == pytest.approx(tv, rel=1e-9) and tv > 0.01


def test_gaussian_probes_and_early_stop_at_an_invariant_subspace() -> None:
    """A matrix with 3 distinct eigenvalues: every run stops after 3 steps with the exact nodes, and the density is
    three peaks of the eigenvalues' multiplicities / n."""
    d = torch.tensor([1.0] * 10 + [4.0] * 5 + [-2.0] * 5, dtype=torch.float64)
    r = spectral_density(LambdaOperator(torch.diag(d)), num_probes=5, num_steps=10, probe="gaussian", seed=3)
    assert r.steps == (3,) * 5 and r.num_matvecs == 15 and r.probe == "gaussian"
    for n in r.nodes:
        np.testing.assert_allclose(sorted(n), [-2.0, 1.0, 4.0], atol=1e-10)
    assert r.mass(0.5, 1.5) == pytest.approx(0.5, abs=0.25)  # Gaussian probes: weights vary around 10/20
    assert sum(r.mass(c - 0.5, c + 0.5) for c in (-2.0, 1.0, 4.0)) == pytest.approx(1.0, abs=1e-6)


def test_too_few_steps_is_not_converged(planted) -> None:
    A, _ = planted
    r = spectral_density(LambdaOperator(A), num_probes=2, num_steps=4, seed=0)
    assert not r.converged and r.density_change > r.tol


def test_seeded_round_trips_and_refuses_bad_input(planted) -> None:
    A, _ = planted
    state = torch.random.get_rng_state()
    a = spectral_density(LambdaOperator(A), num_probes=2, num_steps=5, seed=4, grid_size=50)
    b = spectral_density(LambdaOperator(A), num_probes=2, num_steps=5, seed=4, grid_size=50)
    c = spectral_density(LambdaOperator(A), num_probes=2, num_steps=5, seed=5, grid_size=50)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a == b and a != c
    assert from_json_dict(DensityResult, to_json_dict(a)) == a
    op = LambdaOperator(A)
    with pytest.raises(ValueError, match="num_probes must be at least 2"):
        spectral_density(op, num_probes=1)
    with pytest.raises(ValueError, match="probe must be one of"):
        spectral_density(op, probe="uniform")
    with pytest.raises(ValueError, match="return_vectors=True"):
        spectral_density(op, deflate=lanczos(op, 1, max_iter=5))
    with pytest.raises(ValueError, match="sigma must be positive"):
        spectral_density(op, sigma=0.0)
    assert op.num_matvecs == 5  # only the lanczos call above spent products
