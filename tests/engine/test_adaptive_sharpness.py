"""Adaptive sharpness (Andriushchenko et al. 2023; issue 19) against closed forms: on a quadratic at its minimum the
ℓ2 value is (ρ²/2)·λ_max(D A D), D = diag|θ|; on a linear loss the ℓ2 and ℓ∞ values are ρ‖|θ|⊙b‖₂ and ρΣ|θ_i b_i|;
the ℓ∞ value of a 3-dimensional quadratic is its best box corner (brute force)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Quadratic, label_batches, quad_loss
from repro.curvature import AdaptiveSharpnessResult, adaptive_sharpness
from repro.storage import from_json_dict, to_json_dict

INF = float("inf")


def _at_minimum(A: torch.Tensor, x_star: torch.Tensor) -> Quadratic:
    """f(x) = ½xᵀAx − (A x*)ᵀx: gradient 0 at x* (the model's parameter), f(x*+δ) − f(x*) = ½δᵀAδ."""
    return Quadratic(A, -(A @ x_star), x_star)


def _psd(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return m @ m.T / n + 0.1 * torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("rho", [1e-3, 0.3])
def test_l2_value_on_a_quadratic_is_the_scaled_top_eigenvalue(rho: float) -> None:
    A = _psd(6, 1)
    x = torch.tensor([0.5, -2.0, 1.0, 0.1, -0.7, 3.0], dtype=torch.float64)
    model = _at_minimum(A, x)
    D = torch.diag(x.abs())
    exact = rho**2 / 2 * float(torch.linalg.eigvalsh(D @ A @ D)[-1])
    r = adaptive_sharpness(model, label_batches([3]), rho=rho, p=2, steps=60, seed=0, loss_fn=quad_loss)
    assert r.sharpness <= exact * (1 + 1e-9)  # a lower bound of the maximum, never above it
    assert r.sharpness == pytest.approx(exact, rel=1e-6)
    assert r.perturbation_norm == pytest.approx(rho, rel=1e-9)  # the maximum sits on the sphere
    assert r.num_gradients == 1 + 61 and r.base_loss == pytest.approx(float(model.value().detach()), rel=1e-12)
    assert torch.equal(model.x.detach(), x)


def test_linear_loss_closed_forms_and_unperturbed_zero_weights() -> None:
    """L = bᵀx: max over ‖γ‖₂ ≤ ρ of bᵀ(c⊙γ) is ρ‖c⊙b‖₂, over the box ρΣ|c_i b_i|; a zero weight (c_i = 0) cannot
    move, however large its gradient."""
    x = torch.tensor([1.0, -0.5, 0.0, 2.0], dtype=torch.float64)
    b = torch.tensor([0.3, 2.0, 100.0, -1.0], dtype=torch.float64)
    model = Quadratic(torch.zeros(4, 4, dtype=torch.float64), b, x)
    rho = 0.01
    l2 = adaptive_sharpness(model, label_batches([2]), rho=rho, p=2, steps=40, seed=1, loss_fn=quad_loss)
    linf = adaptive_sharpness(model, label_batches([2]), rho=rho, p=INF, steps=6, seed=1, loss_fn=quad_loss)
    assert l2.sharpness == pytest.approx(rho * float((x.abs() * b).norm()), rel=1e-9)
    assert linf.sharpness == pytest.approx(rho * float((x.abs() * b).abs().sum()), rel=1e-12)
    assert linf.perturbation_norm == pytest.approx(rho, rel=1e-12) and linf.p == INF
    off = adaptive_sharpness(model, label_batches([2]), rho=rho, p=INF, steps=6, seed=1, loss_fn=quad_loss,
                             offset=0.5)  # c = |θ| + 0.5: the zero weight moves now
    assert off.sharpness == pytest.approx(rho * float(((x.abs() + 0.5) * b).abs().sum()), rel=1e-12)


def _corners(M: np.ndarray, rho: float) -> float:
    return max(0.5 * rho**2 * float(np.array(s) @ M @ np.array(s)) for s in itertools.product([-1, 1], repeat=3))


def test_linf_value_of_a_3d_quadratic_is_its_best_corner() -> None:
    A = _psd(3, 5)
    x = torch.tensor([1.5, -0.4, 0.8], dtype=torch.float64)
    D = np.diag(np.abs(x.numpy()))
    exact = _corners(D @ A.numpy() @ D, 0.1)
    r = adaptive_sharpness(_at_minimum(A, x), label_batches([1]), rho=0.1, p=INF, steps=8, restarts=4, seed=0,
                           loss_fn=quad_loss)
    assert r.sharpness == pytest.approx(exact, rel=1e-12) and r.restarts == 4 and r.num_gradients == 1 + 4 * 9


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([2.0, INF]), st.floats(1e-3, 0.5))
def test_never_above_the_maximum_and_within_the_ball(seed: int, p: float, rho: float) -> None:
    A = _psd(3, seed)
    x = torch.randn(3, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    D = np.diag(np.abs(x.numpy()))
    M = D @ A.numpy() @ D
    bound = _corners(M, rho) if p == INF else 0.5 * rho**2 * float(np.linalg.eigvalsh(M)[-1])
    r = adaptive_sharpness(_at_minimum(A, x), label_batches([1]), rho=rho, p=p, steps=3, seed=seed,
                           loss_fn=quad_loss)
    assert -1e-15 <= r.sharpness <= bound * (1 + 1e-9) + 1e-15
    assert r.perturbation_norm <= rho * (1 + 1e-12)


def test_seeded_restored_round_trips_and_refuses_bad_input() -> None:
    A = _psd(4, 2)
    x = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    model = _at_minimum(A, x)
    state = torch.random.get_rng_state()
    a = adaptive_sharpness(model, label_batches([2]), rho=0.1, steps=2, seed=3, loss_fn=quad_loss)
    b = adaptive_sharpness(model, label_batches([2]), rho=0.1, steps=2, seed=3, loss_fn=quad_loss)
    assert a == b and torch.equal(state, torch.random.get_rng_state())
    assert from_json_dict(AdaptiveSharpnessResult, to_json_dict(a)) == a
    inf = adaptive_sharpness(model, label_batches([2]), rho=0.1, p=INF, steps=1, loss_fn=quad_loss)
    assert from_json_dict(AdaptiveSharpnessResult, to_json_dict(inf)).p == INF
    with pytest.raises(ValueError, match="p must be 2"):
        adaptive_sharpness(model, label_batches([2]), p=1, loss_fn=quad_loss)
    with pytest.raises(ValueError, match="rho must be positive"):
        adaptive_sharpness(model, label_batches([2]), rho=0.0, loss_fn=quad_loss)
    with pytest.raises(ValueError, match="restarts >= 1"):
        adaptive_sharpness(model, label_batches([2]), restarts=0, loss_fn=quad_loss)
    assert not math.isnan(a.sharpness)
