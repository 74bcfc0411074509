"""Power iteration (PyHessian's method), field by field against a planted spectrum.

Why: the report and the bench compare our λ_max with PyHessian's; a power iteration that returns an unnormalised
Rayleigh quotient, a residual of the wrong sign, a converged flag from the last eigenpair only, or a matvec count
that includes earlier work would make that comparison wrong without any test on the *value* of λ_max failing.
"""

from __future__ import annotations

import math

import pytest
import torch

from repro.curvature import LambdaOperator
from repro.curvature.eigen import power_iteration
from spectra import known_spectrum


def test_defaults_and_every_field() -> None:
    A = known_spectrum([5.0, 1.0, 0.5, 0.25, 0.1, 0.05])[0]
    op = LambdaOperator(A)
    op.matvec(torch.ones(6, dtype=torch.float64))  # earlier work must not be counted
    before = op.num_matvecs
    r = power_iteration(op)
    assert len(r.eigenvalues) == 1 and r.eigenvalues[0] == pytest.approx(5.0, rel=1e-3)
    assert r.method == "power" and r.seed == 0 and r.tol == 1e-3 and r.eigenvectors is None
    assert r.num_matvecs == op.num_matvecs - before > 1
    assert r.converged is True and len(r.residuals) == 1 and r.residuals[0] >= 0.0


def test_residual_is_that_of_the_returned_pair() -> None:
    """On convergence the reported residual is ‖Hv − λv‖ of the returned unit v with λ = vᵀHv, recomputed here;
    without convergence exactly ``max_iter`` products are spent and the flag is False."""
    A = known_spectrum([3.0, 2.0, 1.0, 0.5])[0]
    r = power_iteration(LambdaOperator(A), k=1, tol=1e-6, max_iter=1000, seed=3, return_vectors=True)
    v = r.eigenvectors[0]
    assert r.converged and float(v.norm()) == pytest.approx(1.0, abs=1e-12)
    lam = float(v @ A @ v)
    assert r.eigenvalues[0] == pytest.approx(lam, rel=1e-12)
    assert r.residuals[0] == pytest.approx(float((A @ v - lam * v).norm()), rel=1e-9, abs=1e-12)
    for iters in (1, 2, 5):
        n = power_iteration(LambdaOperator(A), k=1, tol=1e-30, max_iter=iters, seed=3)
        assert n.num_matvecs == iters and n.converged is False  # tol 1e-30 never fires


def test_first_iterate_is_a_rayleigh_quotient_of_a_unit_vector() -> None:
    """One matvec: λ must lie in [λ_min, λ_max] (an unnormalised start vector gives ‖v‖²× that)."""
    A = known_spectrum([2.0, 1.5, 1.0, 0.5, 0.2] + [0.1] * 45)[0]
    r = power_iteration(LambdaOperator(A), k=1, tol=1e-30, max_iter=1, seed=0)
    assert 0.1 - 1e-12 <= r.eigenvalues[0] <= 2.0 + 1e-12


def test_seeded_start_is_deterministic_and_ignores_the_global_generator() -> None:
    A = known_spectrum([4.0, 3.9, 1.0, 0.5, 0.1])[0]
    torch.manual_seed(1)
    a = power_iteration(LambdaOperator(A), k=2, tol=1e-30, max_iter=4, seed=7, return_vectors=True)
    torch.manual_seed(2)
    b = power_iteration(LambdaOperator(A), k=2, tol=1e-30, max_iter=4, seed=7, return_vectors=True)
    c = power_iteration(LambdaOperator(A), k=2, tol=1e-30, max_iter=4, seed=8, return_vectors=True)
    assert a.eigenvalues == b.eigenvalues and torch.equal(a.eigenvectors, b.eigenvectors)
    assert a.eigenvalues != c.eigenvalues and c.seed == 8


@pytest.mark.parametrize(("scale", "tol"), [(1.0, 1e-4), (1e-3, 1e-4), (1e-7, 1e-3), (5e-6, 1e-3)])
def test_stopping_rule_is_the_relative_change_of_lambda(scale: float, tol: float) -> None:
    """Stops at the first t with |λ_t − λ_{t−1}| / (|λ_{t−1}| + 1e-6) < tol: compare with a hand loop (also at
    λ ~ 1e-3, where a guard of 1 instead of 1e-6 would stop far too early, and at |λ| ≤ 1e-6, where the guard
    dominates: one of the wrong sign stops at the second product)."""
    A = scale * known_spectrum([1.0, 0.9, 0.5, 0.1], seed=4)[0]
    r = power_iteration(LambdaOperator(A), k=1, tol=tol, max_iter=500, seed=5, return_vectors=True)
    g = torch.Generator().manual_seed(5)
    v = torch.randn(4, generator=g, dtype=torch.float64)
    v = v / v.norm()
    prev, n = None, 0
    while True:
        hv = A @ v
        n += 1
        lam = float(hv @ v)
        if prev is not None and abs(lam - prev) / (abs(prev) + 1e-6) < tol:
            break
        prev, v = lam, hv / hv.norm()
    assert n > 2 and r.converged and r.num_matvecs == n and r.eigenvalues[0] == pytest.approx(lam, rel=1e-12)


def test_zero_operator_converges_at_once_and_k_pairs_all_count() -> None:
    z = power_iteration(LambdaOperator(torch.zeros(3, 3, dtype=torch.float64)), k=1, seed=0)
    assert z.converged and z.eigenvalues == (0.0,) and z.num_matvecs == 1 and z.residuals == (0.0,)
    # 2x2 with λ = 1, 0.999: the first pair cannot converge in 3 products; the second, deflated to the one unit
    # vector left, stops after 2. The result's flag is that of *every* pair, not of the last one.
    A = known_spectrum([1.0, 0.999], seed=2)[0]
    first = power_iteration(LambdaOperator(A), k=1, tol=1e-12, max_iter=3, seed=0)
    r = power_iteration(LambdaOperator(A), k=2, tol=1e-12, max_iter=3, seed=0)
    assert first.converged is False and first.num_matvecs == 3
    assert r.num_matvecs == 5 and r.converged is False
    A = known_spectrum([10.0, 1.0, 0.01], seed=2)[0]
    ok = power_iteration(LambdaOperator(A), k=2, tol=1e-6, max_iter=2000, seed=0)
    assert ok.converged and [round(x, 3) for x in ok.eigenvalues] == [10.0, 1.0]
    assert all(math.isfinite(x) for x in ok.residuals)


def test_default_iteration_cap_is_100() -> None:
    """PyHessian's default cap: with a rule that never fires, exactly 100 products."""
    r = power_iteration(LambdaOperator(known_spectrum([1.0, 0.5, 0.2])[0]), tol=0.0)
    assert r.num_matvecs == 100 and r.converged is False
