"""Lanczos, the tridiagonal solver and power iteration against independent float64 oracles.

Why: a Lanczos run's result is a claim about a Krylov subspace -- its Ritz values, its residuals, when it stopped and
how many products it spent. The oracle here rebuilds the Krylov space of the *same* seeded start vector with plain
numpy (Gram-Schmidt twice, Rayleigh-Ritz by a dense ``eigh``) and derives from it, step by step, the Ritz values,
their residuals ‖Ax − θx‖ and the first step at which the documented stopping rule fires. A solver that checks its
rule at the wrong steps, measures the tolerance absolutely instead of relative to |λ_1|, waits for every Ritz pair
instead of the k wanted ones, or misses an invariant subspace then spends a different number of products or returns
different numbers, and fails here even when its eigenvalues would still look right. ``tridiagonal_eigh`` is checked
against a dense float64 ``eigh`` and through its fallback chain; power iteration where its dtype and its relative
stopping rule matter.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import scipy.linalg
import torch
from spectra import known_spectrum

from repro.curvature import LambdaOperator
from repro.curvature.eigen import (
    _order,
    _start,
    lanczos,
    power_iteration,
    tridiagonal_eigh,
)


def _seeded_start(n: int, seed: int) -> np.ndarray:
    """The documented start vector: a float64 normal draw from a private generator seeded with ``seed``, normalised."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=g, dtype=torch.float64).numpy()
    return v / np.linalg.norm(v)


def _wanted(theta: np.ndarray, which: str) -> np.ndarray:
    key = [(-t if which == "LA" else -abs(t), i) for i, t in enumerate(theta)]  # Python's sort, ties by index
    return np.array([i for _, i in sorted(key)])


def _ritz_history(A: np.ndarray, v0: np.ndarray, k: int, m_max: int, which: str
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """For m = 1..m_max: the k wanted Ritz values of A on K_m(A, v0) and their explicit residuals ‖Ax − θx‖."""
    n = A.shape[0]
    basis = np.zeros((n, 0))
    v = v0.copy()
    out = []
    for _ in range(m_max):
        for _ in range(2):
            v = v - basis @ (basis.T @ v)
        basis = np.column_stack([basis, v / np.linalg.norm(v)])
        theta, y = np.linalg.eigh(basis.T @ A @ basis)
        idx = _wanted(theta, which)[:k]
        x = basis @ y[:, idx]
        out.append((theta[idx], np.linalg.norm(A @ x - x * theta[idx], axis=0)))
        v = A @ basis[:, -1]
    return out


@cache
def _spectrum(name: str) -> np.ndarray:
    if name == "top3":
        return known_spectrum([10.0, 9.0, 8.5], 60, seed=0, rest=1.0)[0].numpy()
    if name == "saddle":
        return known_spectrum([-12.0, 10.0, 9.0], 60, seed=1, rest=1.0)[0].numpy()
    if name == "narrow":  # every eigenvalue in [1, 1.2]: the first Krylov vectors are already good Ritz vectors
        return known_spectrum([1.2], 40, seed=2, rest=0.1)[0].numpy() + 1.1 * np.eye(40)
    raise KeyError(name)


# (spectrum, scale, k, which, tol, check_every (None: the default), max_iter, seed)
_CASES = [
    ("top3", 1.0, 2, "LA", 1e-8, None, 60, 0),
    ("top3", 1.0, 2, "LA", 1e-8, 1, 60, 0),
    ("top3", 1.0, 2, "LA", 1e-8, 3, 60, 0),
    ("top3", 1e3, 2, "LA", 1e-8, 1, 60, 0),  # the rule is relative: scaling A must not change when it stops
    ("top3", 1e-3, 2, "LA", 1e-8, 1, 60, 0),
    ("top3", 1.0, 3, "LA", 1e-5, 1, 60, 0),
    ("saddle", 1.0, 2, "LM", 1e-8, 1, 60, 2),
    ("saddle", 1.0, 2, "LA", 1e-8, 1, 60, 0),
    ("narrow", 1.0, 2, "LA", 0.2, 1, 40, 0),  # loose enough to be met at the first step that has k Ritz values
    ("top3", 1.0, 1, "LA", 1e-8, 1, 1, 0),  # one product: the Rayleigh quotient of the start vector
]


@pytest.mark.parametrize(("spectrum", "scale", "k", "which", "tol", "check_every", "max_iter", "seed"), _CASES)
def test_lanczos_stops_where_the_rayleigh_ritz_oracle_meets_the_rule_with_its_ritz_pairs(
        spectrum: str, scale: float, k: int, which: str, tol: float, check_every: int | None, max_iter: int,
        seed: int) -> None:
    """The documented rule: at every ``check_every``-th step m ≥ k (and at the last one) stop when each wanted Ritz
    pair has ‖Ax − θx‖ ≤ tol·max|θ_wanted|. The oracle finds that step m* from an independent Rayleigh-Ritz of the
    same Krylov space; Lanczos must spend exactly m* products (the residuals come from the Krylov decomposition of the
    products already made), return the oracle's Ritz values and explicit residuals at m*, and set ``converged`` from
    those residuals; with ``explicit_residuals=True`` the same numbers cost m* + k products. The test refuses cases in which a
    checked step's residual is within a factor 2 of the threshold, so rounding cannot decide it."""
    A = scale * _spectrum(spectrum)
    n = A.shape[0]
    hist = _ritz_history(A, _seeded_start(n, seed), k, max_iter, which)
    checked = [m for m in range(k, max_iter + 1) if m % (check_every or 1) == 0 or m == max_iter]
    ratio = {m: float((hist[m - 1][1] / (tol * np.abs(hist[m - 1][0]).max())).max()) for m in checked}
    stop = next((m for m in checked if ratio[m] <= 1.0), max_iter)
    assert all(not 0.5 <= ratio[m] <= 2.0 for m in checked if m <= stop), "ambiguous case: pick another"
    kwargs = {} if check_every is None else {"check_every": check_every}
    op = LambdaOperator(torch.from_numpy(A))
    r = lanczos(op, k=k, tol=tol, max_iter=max_iter, seed=seed, which=which, return_vectors=True, **kwargs)
    theta, res = hist[stop - 1]
    assert r.num_matvecs == stop == op.num_matvecs
    np.testing.assert_allclose(r.eigenvalues, theta, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(r.residuals, res, rtol=1e-4, atol=1e-12 * scale)
    assert r.converged is bool((np.asarray(r.residuals) <= tol * np.abs(theta).max()).all())
    assert r.converged is (ratio[stop] <= 1.0)
    assert r.eigenvectors is not None and r.eigenvectors.shape == (k, n)
    vecs = r.eigenvectors.numpy()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(vecs @ A - vecs * np.asarray(r.eigenvalues)[:, None], axis=1),
                               r.residuals, rtol=1e-6, atol=1e-13 * scale)
    again = lanczos(LambdaOperator(torch.from_numpy(A)), k=k, tol=tol, max_iter=max_iter, seed=seed, which=which,
                    explicit_residuals=True, **kwargs)
    assert again.num_matvecs == stop + k and again.eigenvalues == r.eigenvalues
    np.testing.assert_allclose(again.residuals, r.residuals, rtol=1e-6, atol=1e-13 * scale)


def test_lanczos_defaults_and_every_field() -> None:
    """Defaults are one eigenpair, tol 1e-4, at most 100 steps, seed 0, no vectors, a check at every step; products
    spent on the operator before the call are not counted; the result names its method, tolerance and seed."""
    A = known_spectrum([10.0, 9.0, 8.5], 60, seed=0, rest=1.0)[0]
    op = LambdaOperator(A)
    op.matvec(torch.ones(60, dtype=torch.float64))
    op.matvec(torch.ones(60, dtype=torch.float64))
    r = lanczos(op)
    explicit = lanczos(LambdaOperator(A), k=1, tol=1e-4, max_iter=100, seed=0, which="LA", check_every=1)
    assert r == explicit and r.eigenvectors is None and explicit.eigenvectors is None
    assert len(r.eigenvalues) == len(r.residuals) == 1 and r.eigenvalues[0] == pytest.approx(10.0, rel=1e-4)
    assert (r.method, r.tol, r.seed) == ("lanczos", 1e-4, 0)
    assert r.num_matvecs == op.num_matvecs - 2 > 1
    assert r.converged is True and 0.0 <= r.residuals[0] <= 1e-4 * r.eigenvalues[0]


def test_lanczos_default_iteration_cap_is_100_steps() -> None:
    """With a rule that cannot fire (tol 0) on a 150-dimensional spectrum, the run ends after 100 Krylov steps: 100
    products (the residual comes from them), and it says it did not converge."""
    A = torch.from_numpy(np.diag(np.linspace(1.0, 2.0, 150)))
    r = lanczos(LambdaOperator(A), tol=0.0)
    assert r.num_matvecs == 100 and r.converged is False and r.residuals[0] > 0.0
    assert 1.9 < r.eigenvalues[0] <= 2.0 + 1e-12


def test_lanczos_stops_at_an_invariant_subspace_with_exact_ritz_values() -> None:
    """A matrix with three distinct eigenvalues (each of multiplicity 10, at the 1e6 scale) has a three-dimensional
    Krylov space: even with tol 0 Lanczos must stop after three products (β₃ is rounding noise, relative to ‖A‖)
    with the two largest eigenvalues exact, and return a result rather than nothing."""
    g = torch.Generator().manual_seed(5)
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    lam = torch.tensor([3e6] * 10 + [2e6] * 10 + [1e6] * 10, dtype=torch.float64)
    A = q @ torch.diag(lam) @ q.T
    r = lanczos(LambdaOperator(A), k=2, tol=0.0, max_iter=30, seed=0)
    assert r is not None and r.num_matvecs == 3
    np.testing.assert_allclose(r.eigenvalues, [3e6, 2e6], rtol=1e-12)
    assert max(r.residuals) <= 1e-8 * 3e6


def test_lanczos_on_the_zero_operator_meets_even_a_zero_tolerance() -> None:
    """Every vector is an exact eigenvector of 0 with residual exactly 0, which meets ``tol=0`` (≤, not <)."""
    r = lanczos(LambdaOperator(torch.zeros(5, 5, dtype=torch.float64)), k=1, tol=0.0, max_iter=5, seed=0)
    assert r.eigenvalues == (0.0,) and r.residuals == (0.0,) and r.converged is True and r.num_matvecs == 1


def test_order_is_stable_for_ties_in_both_modes() -> None:
    """Ties keep the solver's ascending order (so 'LM' returns −λ before +λ): compared with Python's stable sort on
    a long array, where numpy's default (unstable) sort does reorder ties."""
    vals = np.sort(np.repeat(np.arange(-20.0, 21.0), 5))  # ascending, as a tridiagonal solver returns them
    la = sorted(range(vals.size), key=lambda i: -vals[i])
    lm = sorted(range(vals.size), key=lambda i: -abs(vals[i]))
    assert _order(vals, "LA").tolist() == la
    assert _order(vals, "LM").tolist() == lm
    assert vals[_order(vals, "LM")[:2]].tolist() == [-20.0, -20.0]


@pytest.mark.parametrize("seed", [0, 7])
def test_start_is_the_seeded_draw_in_the_operators_precision(seed: int) -> None:
    """The start vector is a unit normal draw of the given seed in the operator's precision (float64 for float64
    operators, float32 for float32 ones and below), normalised by its float64 norm."""
    A32 = torch.eye(12, dtype=torch.float32)
    v = _start(LambdaOperator(A32), seed)
    assert v.dtype == torch.float32 and v.device == A32.device
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(12, generator=g, dtype=torch.float32)
    np.testing.assert_array_equal(v.numpy(), (raw / torch.linalg.vector_norm(raw.double()).float()).numpy())
    assert float(torch.linalg.vector_norm(v.double())) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(_start(LambdaOperator(A32.double()), seed).numpy(), _seeded_start(12, seed))


# -- tridiagonal_eigh ------------------------------------------------------------------------------------------------


def _dense(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.diag(d) + np.diag(e, 1) + np.diag(e, -1)


def _assert_eigh_of(w: np.ndarray, v: np.ndarray, t: np.ndarray) -> None:
    """w ascending equal to a dense float64 eigh, v orthonormal eigenvectors of t, all float64."""
    scale = np.abs(t).max()
    assert w.dtype == np.float64 and v.dtype == np.float64
    np.testing.assert_allclose(w, np.linalg.eigvalsh(t), rtol=0, atol=1e-13 * scale * len(w))
    np.testing.assert_allclose(v.T @ v, np.eye(len(w)), atol=1e-12)
    assert np.abs(t @ v - v * w).max() <= 1e-12 * scale


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.longdouble])
@pytest.mark.parametrize("column", [False, True])
def test_tridiagonal_eigh_solves_any_float_input_in_float64(dtype: type, column: bool) -> None:
    """Lower-precision (or extended) inputs and column-shaped arrays are the same matrix: the answer is that of the
    float64 dense matrix with the same entries, in float64, without warnings."""
    rng = np.random.default_rng(11)
    d = rng.standard_normal(9).astype(dtype)
    e = rng.standard_normal(8).astype(dtype)
    t = _dense(d.astype(np.float64), e.astype(np.float64))
    if column:
        d, e = d.reshape(-1, 1), e.reshape(-1, 1)
    w, v = tridiagonal_eigh(d, e)
    assert w.shape == (9,) and v.shape == (9, 9)
    _assert_eigh_of(w, v, t)


def test_tridiagonal_eigh_names_the_right_number_of_off_diagonal_entries() -> None:
    with pytest.raises(ValueError, match=r"a 4x4 tridiagonal matrix needs 3 off-diagonal entries, got 1"):
        tridiagonal_eigh([1.0, 2.0, 3.0, 4.0], [0.5])


def _spy(monkeypatch: pytest.MonkeyPatch, fake: dict[str, Callable[[np.ndarray, np.ndarray], tuple]] | None = None
         ) -> list[tuple[str, np.ndarray | None, np.ndarray | None]]:
    """Replace scipy's tridiagonal solver by a recorder; ``fake[driver]`` replaces one driver's answer."""
    real = scipy.linalg.eigh_tridiagonal
    calls: list[tuple[str, np.ndarray | None, np.ndarray | None]] = []

    def spy(d, e, *, lapack_driver="auto", **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append((lapack_driver, None if d is None else np.array(d), None if e is None else np.array(e)))
        if fake and lapack_driver in fake:
            return fake[lapack_driver](d, e)
        return real(d, e, lapack_driver=lapack_driver, **kw)

    monkeypatch.setattr(scipy.linalg, "eigh_tridiagonal", spy)
    return calls


def test_tridiagonal_eigh_returns_mrrrs_answer_for_this_matrix_on_the_first_try(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """MRRR is asked about exactly the given matrix, and its answer is returned as is: a call that failed on every
    input would silently fall through to the dense solver that issue 8 replaced."""
    rng = np.random.default_rng(4)
    d, e = rng.standard_normal(12), rng.standard_normal(11)
    ref = scipy.linalg.eigh_tridiagonal(d, e, lapack_driver="stemr")
    calls = _spy(monkeypatch)
    w, v = tridiagonal_eigh(d, e)
    assert [c[0] for c in calls] == ["stemr"]
    np.testing.assert_array_equal(calls[0][1], d)
    np.testing.assert_array_equal(calls[0][2], e)
    np.testing.assert_array_equal(w, ref[0])
    np.testing.assert_array_equal(v, ref[1])


@pytest.mark.parametrize("bad", ["eigenvalues", "eigenvectors"])
def test_tridiagonal_eigh_treats_a_non_finite_answer_as_a_failure(monkeypatch: pytest.MonkeyPatch, bad: str
                                                                   ) -> None:
    """A driver that returns NaN eigenvalues *or* NaN eigenvectors has failed: the next driver's answer is used."""
    rng = np.random.default_rng(6)
    d, e = rng.standard_normal(10), rng.standard_normal(9)

    def nan_answer(d, e):  # noqa: ANN001, ANN202
        w, v = np.linalg.eigh(_dense(np.asarray(d), np.asarray(e)))
        return (np.full_like(w, np.nan), v) if bad == "eigenvalues" else (w, np.full_like(v, np.nan))

    calls = _spy(monkeypatch, {"stemr": nan_answer})
    w, v = tridiagonal_eigh(d, e)
    assert [c[0] for c in calls] == ["stemr", "stev"]
    _assert_eigh_of(w, v, _dense(d, e))


def test_tridiagonal_eigh_when_every_solver_fails_raises_one_error_naming_each(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """If MRRR raises, QL/QR returns NaN and the dense solver raises too, one LinAlgError says what each did."""

    def raises(d, e):  # noqa: ANN001, ANN202
        raise np.linalg.LinAlgError("MRRR gave up")

    def nans(d, e):  # noqa: ANN001, ANN202
        return np.full(len(d), np.nan), np.full((len(d), len(d)), np.nan)

    def dense_fails(t):  # noqa: ANN001, ANN202
        raise np.linalg.LinAlgError("dense gave up")

    _spy(monkeypatch, {"stemr": raises, "stev": nans})
    monkeypatch.setattr(np.linalg, "eigh", dense_fails)
    with pytest.raises(np.linalg.LinAlgError,
                       match=r"stemr: MRRR gave up.*stev: non-finite result.*dense: dense gave up"):
        tridiagonal_eigh([1.0, 2.0, 3.0], [0.5, 0.5])


# -- power iteration -------------------------------------------------------------------------------------------------


def test_power_iteration_keeps_a_float32_operators_dtype_through_deflation() -> None:
    """Every iterate, the first included, lives in the operator's dtype: deflating the second pair against the first
    mixes them, and the returned vectors are float32 unit eigenvectors of the planted spectrum."""
    A = known_spectrum([8.0, -4.0, 1.0], 20, seed=3, rest=0.5)[0].float()
    p = power_iteration(LambdaOperator(A), k=2, tol=1e-7, max_iter=500, seed=1, return_vectors=True)
    assert p.eigenvectors is not None and p.eigenvectors.dtype == torch.float32
    np.testing.assert_allclose(p.eigenvalues, [8.0, -4.0], rtol=1e-4)
    z = power_iteration(LambdaOperator(torch.zeros(4, 4)), k=1, seed=0, return_vectors=True)
    assert z.converged and z.eigenvectors is not None and z.eigenvectors.dtype == torch.float32


def test_power_iteration_with_no_iterations_estimates_nothing() -> None:
    """``max_iter=0``: nothing is estimated, so it is refused (issue 19) before any product, instead of returning a
    placeholder eigenvalue 0.0 with a NaN residual and no vector."""
    op = LambdaOperator(torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="max_iter must be at least 1"):
        power_iteration(op, k=1, max_iter=0, seed=0)
    assert op.num_matvecs == 0


def test_power_iteration_without_convergence_returns_the_vector_its_numbers_describe() -> None:
    """The eigenvalue and residual reported for a pair must be those of the vector returned for it, converged or
    not, so a caller can recompute ‖Av − λv‖ from the result alone."""
    A = known_spectrum([3.0, 2.0, 1.0, 0.5], seed=1)[0]
    r = power_iteration(LambdaOperator(A), k=1, tol=1e-30, max_iter=3, seed=0, return_vectors=True)
    assert r.converged is False and r.eigenvectors is not None
    v = r.eigenvectors[0]
    assert r.eigenvalues[0] == pytest.approx(float(v @ A @ v), rel=1e-12)
    assert r.residuals[0] == pytest.approx(float((A @ v - r.eigenvalues[0] * v).norm()), rel=1e-9)
