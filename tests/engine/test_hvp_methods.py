"""The Hessian-vector product's two methods (issue 19): the autograd product restructured for speed must give the
same matrix, and the finite-difference product must be the central difference it claims (error ∝ h², exact on a
quadratic, runs with SDPA attention, leaves the parameters untouched). Also Lanczos' PyHessian-style stopping rule,
which the curvature benchmark uses to compare at equal tolerance."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from classifier_fixture import CountingClassifier, batches, ce_loss
from conftest import label_batches, make_quadratic, quad_loss, synthetic_batches
from dense_oracles import dense_hessian, operator_matrix
from spectra import known_spectrum

from repro.curvature import HessianOperator, LambdaOperator, lanczos
from repro.curvature.operators import FD_STEP_FACTOR
from repro.errors import NonFiniteError
from repro.landscape import get_params
from repro.models.groups import parameter_groups


def _net() -> tuple[CountingClassifier, list[dict[str, torch.Tensor]]]:
    return CountingClassifier(seed=3).eval(), batches([5, 3], seed=2)


def test_autograd_product_is_the_dense_hessian_over_several_batches() -> None:
    """The accumulation over batches (the first batch's product is the accumulator) is the example-weighted mean
    loss's Hessian, checked against torch.autograd.functional.hessian, with and without a kept graph."""
    model, data = _net()
    ref = dense_hessian(model, data)
    for reuse in (False, True):
        H = operator_matrix(HessianOperator(model, data, loss_fn=ce_loss, reuse_graph=reuse))
        torch.testing.assert_close(H, ref, rtol=1e-10, atol=1e-12)


def test_finite_difference_product_matches_the_dense_hessian_in_float64() -> None:
    model, data = _net()
    ref = dense_hessian(model, data)
    op = HessianOperator(model, data, loss_fn=ce_loss, method="finite_difference")
    assert op.fd_step == pytest.approx(FD_STEP_FACTOR * np.finfo(np.float64).eps ** (1 / 3), rel=1e-12)
    H = operator_matrix(op)
    assert float((H - ref).norm() / ref.norm()) < 1e-7
    assert op.num_matvecs == op.size


def test_finite_difference_error_falls_as_h_squared() -> None:
    """Central differences: halving h quarters the truncation error (a one-sided difference would only halve it)."""
    model, data = _net()
    ref = dense_hessian(model, data)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(ref.shape[0], generator=g, dtype=torch.float64)
    v /= v.norm()
    errs = []
    for h in (0.04, 0.02, 0.01):
        op = HessianOperator(model, data, loss_fn=ce_loss, method="finite_difference", fd_step=h)
        errs.append(float((op.matvec(v) - ref @ v).norm()))
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    assert all(3.6 < r < 4.4 for r in ratios), (errs, ratios)


def test_finite_difference_step_is_per_unit_of_the_vector() -> None:
    """h = fd_step/‖v‖: the points θ ± hv are the same for v and 10·v, so the product is exactly linear in the scale."""
    model, data = _net()
    op = HessianOperator(model, data, loss_fn=ce_loss, method="finite_difference", fd_step=0.05)
    g = torch.Generator().manual_seed(1)
    v = torch.randn(op.size, generator=g, dtype=torch.float64)
    torch.testing.assert_close(op.matvec(10.0 * v), 10.0 * op.matvec(v), rtol=1e-12, atol=0)
    assert torch.equal(op.matvec(torch.zeros(op.size, dtype=torch.float64)), torch.zeros(op.size, dtype=torch.float64))


def test_finite_difference_is_exact_on_a_quadratic_and_restores_the_parameters() -> None:
    model = make_quadratic(9, seed=4)
    x0 = model.x.detach().clone()
    op = HessianOperator(model, label_batches([2, 3]), loss_fn=quad_loss, method="finite_difference", fd_step=0.3)
    v = torch.randn(9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(op.matvec(v), model.A @ v, rtol=1e-10, atol=1e-12)
    assert torch.equal(model.x.detach(), x0)  # written back bit for bit


def test_finite_difference_runs_with_sdpa_attention_and_matches_the_exact_product(tiny_bert) -> None:
    """The fused SDPA kernel has no double backward (the autograd product is refused); two plain gradients do not need
    one. Same weights as the eager model, float64: the two products agree."""
    from repro.models.zoo import load_model

    eager = copy.deepcopy(tiny_bert).double()
    sdpa = load_model("tiny-random", "pretrained", 2, seed=0, attn_implementation="sdpa").double().eval()
    sdpa.load_state_dict(eager.state_dict())
    data = synthetic_batches(1, 3, max_len=8, seed=7)
    names = parameter_groups(eager)["high"] + parameter_groups(eager)["head"]
    exact = HessianOperator(eager, data, names)
    fd = HessianOperator(sdpa, data, names, method="finite_difference")
    with pytest.raises(ValueError, match="needs eager attention"):  # refused up front, naming the fix
        HessianOperator(sdpa, data, names)
    v = torch.randn(exact.size, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    hv = exact.matvec(v)
    before = get_params(sdpa)
    assert float((fd.matvec(v) - hv).norm() / hv.norm()) < 1e-6
    assert (get_params(sdpa) - before).norm() == 0.0


def test_hessian_operator_rejects_bad_method_options() -> None:
    model, data = _net()
    with pytest.raises(ValueError, match="method must be one of"):
        HessianOperator(model, data, loss_fn=ce_loss, method="fd")
    with pytest.raises(ValueError, match="drop reuse_graph=True"):
        HessianOperator(model, data, loss_fn=ce_loss, method="finite_difference", reuse_graph=True)
    with pytest.raises(ValueError, match="fd_step must be positive"):
        HessianOperator(model, data, loss_fn=ce_loss, method="finite_difference", fd_step=0.0)


def test_the_non_finite_check_sees_nan_and_inf_but_not_a_finite_sum_overflow() -> None:
    """The check is a float64 sum with an elementwise fallback: a NaN or ±Inf entry is refused, while finite entries
    whose sum overflows (two entries near float64's maximum) are not."""
    for bad in (float("nan"), float("inf"), -float("inf")):
        op = LambdaOperator(lambda v, bad=bad: torch.tensor([1.0, bad, 2.0], dtype=torch.float64), size=3)
        with pytest.raises(NonFiniteError):
            op.matvec(torch.ones(3, dtype=torch.float64))
    big = LambdaOperator(lambda v: torch.full((3,), 1.5e308, dtype=torch.float64), size=3)
    assert float(big.matvec(torch.ones(3, dtype=torch.float64))[0]) == 1.5e308


# -- Lanczos with PyHessian's stopping rule --------------------------------------------------------------------------


def _ritz_top(A: torch.Tensor, m: int, seed: int) -> float:
    """The top Ritz value after exactly m Lanczos steps (a tolerance of 0 never stops early)."""
    return lanczos(LambdaOperator(A), 1, tol=0.0, max_iter=m, seed=seed).eigenvalues[0]


@pytest.mark.parametrize("tol", [1e-2, 1e-4])
def test_eigenvalue_change_rule_stops_at_the_first_small_relative_change(tol: float) -> None:
    A, _ = known_spectrum([10.0, 9.0, 8.0], 60, seed=2, rest=7.0)
    r = lanczos(LambdaOperator(A), 1, tol=tol, max_iter=60, seed=1, criterion="eigenvalue_change")
    m = r.num_matvecs  # m steps (the residuals need no further product)
    ritz = [_ritz_top(A, j, 1) for j in range(1, m + 1)]
    changes = [abs(ritz[j] - ritz[j - 1]) / (abs(ritz[j - 1]) + 1e-6) for j in range(1, m)]
    assert changes[-1] < tol and all(c >= tol for c in changes[:-1])
    assert r.eigenvalues[0] == pytest.approx(ritz[-1], rel=1e-12)
    assert r.converged and r.method == "lanczos-eigenvalue-change" and r.tol == tol
    v_res = lanczos(LambdaOperator(A), 1, tol=tol, max_iter=60, seed=1)  # the residual rule: explicit residuals
    assert v_res.method == "lanczos" and r.residuals[0] > 0


def test_eigenvalue_change_rule_not_fired_is_not_converged_and_bad_criterion_is_refused() -> None:
    A, _ = known_spectrum([10.0, 9.9, 9.8], 80, seed=3, rest=9.0)
    r = lanczos(LambdaOperator(A), 1, tol=1e-12, max_iter=3, seed=0, criterion="eigenvalue_change")
    assert not r.converged and r.num_matvecs == 3
    small = lanczos(LambdaOperator(A[:4, :4]), 1, tol=1e-30, max_iter=10, seed=0, criterion="eigenvalue_change")
    assert small.converged  # an invariant subspace at m = n: the Ritz values are exact
    with pytest.raises(ValueError, match="criterion must be"):
        lanczos(LambdaOperator(A), 1, criterion="change")


def test_krylov_residuals_see_an_operator_that_is_not_symmetric() -> None:
    """The residual comes from every projection coefficient of every product (the Hessenberg matrix), not from the
    tridiagonal band: a non-symmetric operator, whose coefficients above the band are not β, shows a residual equal
    to the one a fresh product gives (‖Ay − θy‖), far above a symmetric operator's."""
    A, _ = known_spectrum([5.0, 3.0], 30, seed=4, rest=1.0)
    g = torch.Generator().manual_seed(9)
    skew = torch.randn(30, 30, generator=g, dtype=torch.float64)
    B = A + 0.05 * (skew - skew.T)
    r = lanczos(LambdaOperator(B), 1, tol=1e-10, max_iter=30, seed=0, return_vectors=True)
    y = r.eigenvectors[0]
    fresh = float((B @ y - r.eigenvalues[0] * y).norm())
    assert r.residuals[0] == pytest.approx(fresh, rel=1e-8) and fresh > 1e-3
    sym = lanczos(LambdaOperator(A), 1, tol=1e-10, max_iter=30, seed=0)
    assert sym.residuals[0] < 1e-9


def test_krylov_basis_stays_orthonormal_through_cancellation() -> None:
    """A spectrum whose Ritz values converge quickly (heavy cancellation in Hq_j, where one Gram-Schmidt pass loses
    orthogonality): after 40 steps the Ritz vectors are still orthonormal and their residuals explicit-accurate."""
    A, _ = known_spectrum([100.0, 99.0, 98.0, 97.0], 200, seed=6, rest=1e-3)
    r = lanczos(LambdaOperator(A), 4, tol=1e-13, max_iter=40, seed=0, return_vectors=True)
    V = r.eigenvectors
    torch.testing.assert_close(V @ V.T, torch.eye(4, dtype=torch.float64), rtol=0, atol=1e-10)
    for lam, v, res in zip(r.eigenvalues, V, r.residuals):
        assert res == pytest.approx(float((A @ v - lam * v).norm()), rel=1e-6, abs=1e-12)
