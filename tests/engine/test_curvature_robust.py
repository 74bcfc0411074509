"""Robustness of the curvature engine (issue 8): the tridiagonal solver, non-finite products, non-convergence.

A real GPU run died in ``torch.linalg.eigh`` ("failed to converge") on the Lanczos tridiagonal matrix of a run whose
training had gone bad. These tests pin the replacement (LAPACK's tridiagonal solvers in float64, with fallbacks)
against numpy's dense ``eigh``, including badly conditioned and repeated-eigenvalue matrices, and check that a NaN
product is a :class:`NonFiniteError` a caller can record while a solver that runs out of iterations is a flag.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import label_batches, make_quadratic, quad_loss
from repro.curvature import (
    HessianOperator,
    LambdaOperator,
    epsilon_sharpness,
    hutchinson_trace,
    hutchpp_trace,
    lanczos,
    loss_and_grad,
    power_iteration,
)
from repro.curvature.eigen import tridiagonal_eigh
from repro.errors import NonFiniteError, ReproError
from repro.landscape import get_params


def _dense(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.diag(d) + np.diag(e, 1) + np.diag(e, -1)


def _check_eigh(d: np.ndarray, e: np.ndarray, rtol: float = 1e-10) -> None:
    """Eigenvalues equal numpy's dense eigh; eigenvectors orthonormal with small residuals (relative to ‖T‖)."""
    w, v = tridiagonal_eigh(d, e)
    t = _dense(d, e)
    ref = np.linalg.eigvalsh(t)
    scale = max(np.abs(ref).max(), np.finfo(float).tiny)
    assert w.dtype == np.float64 and v.dtype == np.float64
    assert np.all(np.diff(w) >= 0), "eigenvalues ascending"
    np.testing.assert_allclose(w, ref, rtol=0, atol=rtol * scale * len(d))
    np.testing.assert_allclose(v.T @ v, np.eye(len(d)), atol=1e-10 * len(d))
    assert np.abs(t @ v - v * w).max() <= 1e-10 * scale * len(d)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_tridiagonal_eigh_matches_dense_eigh_on_random_matrices(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    _check_eigh(rng.standard_normal(m), rng.standard_normal(m - 1))


def test_tridiagonal_eigh_badly_conditioned() -> None:
    """Diagonal spanning 24 orders of magnitude, tiny couplings: eigenvalues to ‖T‖-relative accuracy."""
    rng = np.random.default_rng(0)
    d = np.logspace(-12, 12, 30) * rng.choice([-1.0, 1.0], 30)
    e = 1e-8 * rng.standard_normal(29)
    _check_eigh(d, e)


def test_tridiagonal_eigh_exactly_repeated_eigenvalues() -> None:
    """Decoupled identical blocks (zero off-diagonals, as when Lanczos meets an invariant subspace): every
    eigenvalue has multiplicity 4, and the eigenvectors must still be orthonormal."""
    block_d, block_e = np.array([2.0, 1.0, 3.0]), np.array([0.5, 0.25])
    d = np.tile(block_d, 4)
    e = np.concatenate([np.append(block_e, 0.0)] * 4)[:-1]
    _check_eigh(d, e)
    w, _ = tridiagonal_eigh(d, e)
    assert len(np.unique(np.round(w, 10))) == 3


def test_tridiagonal_eigh_wilkinson_near_degenerate_pairs() -> None:
    """Wilkinson's W21+: its largest eigenvalues come in pairs that agree to ~1e-14, the hard case for solvers."""
    d = np.abs(np.arange(-10, 11)).astype(float)
    e = np.ones(20)
    _check_eigh(d, e)
    w, _ = tridiagonal_eigh(d, e)
    assert abs(w[-1] - w[-2]) < 1e-12  # the pair is there, resolved as two eigenvalues


def test_tridiagonal_eigh_single_and_constant() -> None:
    w, v = tridiagonal_eigh([3.5], [])
    assert w.tolist() == [3.5] and v.tolist() == [[1.0]]
    _check_eigh(np.full(10, 7.0), np.zeros(9))  # 7·I: one eigenvalue, multiplicity 10


def test_tridiagonal_eigh_ignores_extra_off_diagonal_and_rejects_short_one() -> None:
    d, e = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 99.0])
    np.testing.assert_allclose(tridiagonal_eigh(d, e)[0], np.linalg.eigvalsh(_dense(d, e[:2])))
    with pytest.raises(ValueError, match="off-diagonal"):
        tridiagonal_eigh(d, e[:1])
    with pytest.raises(ValueError, match="empty"):
        tridiagonal_eigh([], [])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_tridiagonal_eigh_non_finite_is_non_finite_error(bad: float) -> None:
    with pytest.raises(NonFiniteError, match="NaN/Inf"):
        tridiagonal_eigh([1.0, bad, 2.0], [0.1, 0.1])
    with pytest.raises(NonFiniteError):
        tridiagonal_eigh([1.0, 2.0], [bad])


def test_tridiagonal_eigh_falls_back_when_lapack_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """If MRRR reports a failure the QL/QR solver is used; if both fail, the dense solver. Same answer."""
    real = scipy.linalg.eigh_tridiagonal
    calls: list[str] = []

    def flaky(d, e, *, lapack_driver="auto", **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append(lapack_driver)
        if lapack_driver in fail:
            raise np.linalg.LinAlgError(f"{lapack_driver} did not converge")
        return real(d, e, lapack_driver=lapack_driver, **kw)

    monkeypatch.setattr(scipy.linalg, "eigh_tridiagonal", flaky)
    rng = np.random.default_rng(3)
    d, e = rng.standard_normal(25), rng.standard_normal(24)
    for fail in ({"stemr"}, {"stemr", "stev"}):
        calls.clear()
        _check_eigh(d, e)
        assert calls == ["stemr", "stev"]


# -- Lanczos and power iteration: non-convergence is a flag ----------------------------------------------------------


def test_lanczos_runs_out_of_iterations_as_a_flag_not_an_error() -> None:
    A = torch.from_numpy(np.diag(np.linspace(1.0, 1.001, 200)))  # tightly clustered top: slow convergence
    r = lanczos(LambdaOperator(A), k=3, tol=1e-14, max_iter=4, seed=0)
    assert r.converged is False and len(r.eigenvalues) == 3 and all(math.isfinite(x) for x in r.residuals)
    p = power_iteration(LambdaOperator(A), k=1, tol=1e-14, max_iter=3, seed=0)
    assert p.converged is False and math.isfinite(p.eigenvalues[0])


def test_lanczos_full_length_run_on_a_near_degenerate_spectrum() -> None:
    """Running to n iterations on eigenvalues 1e-10 apart (many nearly equal Ritz values) must neither fail nor lose
    the top eigenvalue."""
    n = 80
    vals = np.concatenate([1.0 + 1e-10 * np.arange(40), np.linspace(-1.0, 0.5, 40)])
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((n, n)))
    A = torch.from_numpy(q @ np.diag(vals) @ q.T)
    r = lanczos(LambdaOperator(A), k=2, tol=1e-13, max_iter=n, seed=0)
    assert abs(r.eigenvalues[0] - vals.max()) < 1e-8
    assert r.num_matvecs <= n + 2


def test_lanczos_keeps_the_operators_dtype_and_device() -> None:
    A = torch.from_numpy(np.diag(np.arange(1.0, 31.0))).float()
    r = lanczos(LambdaOperator(A), k=2, tol=1e-5, max_iter=30, seed=0, return_vectors=True)
    assert r.eigenvectors is not None
    assert r.eigenvectors.dtype == torch.float32 and r.eigenvectors.device == A.device
    np.testing.assert_allclose(r.eigenvalues, [30.0, 29.0], rtol=1e-4)


def test_matvec_moves_the_vector_to_the_operators_dtype() -> None:
    A = torch.from_numpy(np.diag(np.arange(1.0, 6.0)))
    out = LambdaOperator(A).matvec(torch.ones(5, dtype=torch.float32))
    assert out.dtype == torch.float64 and out.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


# -- non-finite products are NonFiniteError --------------------------------------------------------------------------


def _nan_after(calls: int, n: int = 20) -> LambdaOperator:
    """A symmetric operator whose products turn NaN from the ``calls``-th on (a model that diverges mid-run)."""
    A = torch.from_numpy(np.diag(np.arange(1.0, n + 1.0)))
    count = {"n": 0}

    def fn(v: torch.Tensor) -> torch.Tensor:
        count["n"] += 1
        out = A @ v
        return out * float("nan") if count["n"] >= calls else out

    return LambdaOperator(fn, size=n)


@pytest.mark.parametrize("calls", [1, 3])
@pytest.mark.parametrize("algo", ["lanczos", "power", "hutchinson", "hutch++"])
def test_non_finite_product_raises_non_finite_error(algo: str, calls: int) -> None:
    op = _nan_after(calls)
    run = {
        "lanczos": lambda: lanczos(op, k=2, tol=1e-12, max_iter=20),
        "power": lambda: power_iteration(op, k=1, tol=1e-12, max_iter=20),
        "hutchinson": lambda: hutchinson_trace(op, 10),
        "hutch++": lambda: hutchpp_trace(op, 12),
    }[algo]
    with pytest.raises(NonFiniteError, match="NaN/Inf") as e:
        run()
    assert isinstance(e.value, ReproError)  # the CLI and the claims plan handle the family
    assert op.num_matvecs == calls


def test_inf_product_raises_non_finite_error() -> None:
    op = LambdaOperator(lambda v: v * float("inf"), size=4)
    with pytest.raises(NonFiniteError):
        op.matvec(torch.ones(4, dtype=torch.float64))


def _poisoned_quadratic() -> nn.Module:
    """A quadratic whose curvature (and so its loss) has a NaN entry: what a diverged network looks like."""
    model = make_quadratic(8, seed=0, psd=True)
    model.A[3, 3] = float("nan")
    return model


def test_hessian_operator_of_a_nan_model_raises_non_finite_error() -> None:
    op = HessianOperator(_poisoned_quadratic(), label_batches([2]), loss_fn=quad_loss)
    with pytest.raises(NonFiniteError):
        lanczos(op, k=1, max_iter=5)


def test_loss_and_grad_and_sharpness_of_a_nan_model_raise_and_restore_parameters() -> None:
    model = _poisoned_quadratic()
    before = get_params(model)
    with pytest.raises(NonFiniteError, match="loss is nan"):
        loss_and_grad(model, label_batches([2]), loss_fn=quad_loss)
    with pytest.raises(NonFiniteError):
        epsilon_sharpness(model, label_batches([2]), loss_fn=quad_loss, steps=2)
    for a, b in zip(before.tensors, get_params(model).tensors):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def test_hessian_operator_on_a_finite_model_is_unaffected_by_the_check() -> None:
    """The check must not reject ordinary products: the quadratic's Hessian is A, exactly."""
    model = make_quadratic(10, seed=2, psd=True)
    op = HessianOperator(model, label_batches([3]), loss_fn=quad_loss)
    v = torch.randn(10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(op.matvec(v), model.A @ v)
