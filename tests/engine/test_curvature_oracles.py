"""Oracles for the curvature primitives that the algorithm tests in test_curvature.py take for granted.

The trace estimators are checked against the probes they actually used (recorded by a spying operator): the estimate
must be the probe mean and the standard error the *sample* standard deviation over √n, in float64, whatever the
matrix. ε-sharpness is checked against closed forms on separable quadratics, where the maximum over Keskar's box
|δ_i| ≤ ε(|θ_i| + offset) is attained at a known corner. The Hessian operator is checked against
``torch.autograd.functional.hessian`` of the example-weighted mean loss on a tiny float64 network, including a
parameter the loss does not use and a batch whose loss is linear in the parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conftest import label_batches, make_quadratic, quad_loss
from repro.curvature import (
    HessianOperator,
    LambdaOperator,
    SharpnessResult,
    TraceResult,
    epsilon_sharpness,
    hutchinson_trace,
    hutchpp_trace,
    loss_and_grad,
)
from repro.errors import NonFiniteError

# -- trace estimators -----------------------------------------------------------------------------------------------


class _Spy:
    """A matrix operator's function that records every vector it is applied to (the estimators' probes)."""

    def __init__(self, A: Tensor) -> None:
        self.A = A
        self.seen: list[Tensor] = []

    def __call__(self, v: Tensor) -> Tensor:
        self.seen.append(v.detach().clone())
        return self.A @ v


def _spied(A: Tensor) -> tuple[LambdaOperator, _Spy]:
    spy = _Spy(A)
    return LambdaOperator(spy, size=A.shape[0], dtype=A.dtype), spy


def _sym(n: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return ((m + m.T) / 2 + 2.0 * torch.eye(n, dtype=torch.float64)).to(dtype)


def _quad_forms(A: Tensor, probes: list[Tensor]) -> np.ndarray:
    a = A.double().numpy()
    return np.array([float(p.double().numpy() @ a @ p.double().numpy()) for p in probes])


def test_hutchinson_is_the_probe_mean_with_the_sample_standard_error() -> None:
    """estimate = mean(zᵀAz) and stderr = sd(zᵀAz, ddof=1)/√n over the probes it used, to float64 precision; the
    probes are ±1 vectors of the operator's length and dtype; the matvec count is this call's own (the operator had
    been used before); the defaults are 100 probes and seed 0."""
    A = _sym(7, 1)
    op, spy = _spied(A)
    op.matvec(torch.ones(7, dtype=torch.float64))  # an operator already used by someone else
    spy.seen.clear()
    n = 5
    t = hutchinson_trace(op, num_samples=n, seed=11)
    assert len(spy.seen) == n
    for z in spy.seen:
        assert z.shape == (7,) and z.dtype == torch.float64
        assert set(z.tolist()) <= {-1.0, 1.0}
    q = _quad_forms(A, spy.seen)
    assert np.std(q, ddof=1) > 0.1  # the quadratic forms differ: a zero or mis-scaled stderr shows below
    assert t.estimate == pytest.approx(float(q.mean()), rel=1e-13)
    assert t.stderr == pytest.approx(float(np.std(q, ddof=1)) / math.sqrt(n), rel=1e-12)
    assert (t.num_samples, t.num_matvecs, t.method, t.seed) == (n, n, "hutchinson", 11)
    assert op.num_matvecs == n + 1
    d = hutchinson_trace(LambdaOperator(A))
    assert (d.num_samples, d.num_matvecs, d.seed) == (100, 100, 0)
    assert d == hutchinson_trace(LambdaOperator(A), num_samples=100, seed=0)


def test_hutchinson_rejects_a_single_probe_naming_the_minimum() -> None:
    with pytest.raises(ValueError, match="need at least 2 samples"):
        hutchinson_trace(LambdaOperator(torch.eye(3, dtype=torch.float64)), num_samples=1)


def _two_runs(estimator: Callable[..., TraceResult], A: Tensor, seed: int, global_seed: int) -> tuple[TraceResult, list[Tensor]]:
    op, spy = _spied(A)
    torch.manual_seed(global_seed)
    return estimator(op, 9, seed=seed), spy.seen


@pytest.mark.parametrize("estimator", [hutchinson_trace, hutchpp_trace], ids=["hutchinson", "hutch++"])
def test_trace_probes_come_from_the_seed_alone(estimator: Callable[..., TraceResult]) -> None:
    """Same seed → the same probes and result whatever the global RNG holds (the global RNG is neither read nor
    advanced); another seed → other probes."""
    A = _sym(12, 2)
    state = torch.random.get_rng_state()
    a, pa = _two_runs(estimator, A, seed=4, global_seed=1)
    b, pb = _two_runs(estimator, A, seed=4, global_seed=2)
    c, pc = _two_runs(estimator, A, seed=5, global_seed=1)
    torch.random.set_rng_state(state)
    assert a == b and all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(pa, pc, strict=True)) and a != c


def test_hutchpp_is_the_sketch_trace_plus_the_deflated_probe_mean() -> None:
    """Hutch++ with budget 3m: m ±1 sketch probes S, then the m columns of an orthonormal basis Q of A·S (exact part
    tr(QᵀAQ)), then m probes projected off Q. estimate = Σ qᵢᵀAqᵢ + mean(zᵀAz) and stderr = sd(zᵀAz, ddof=1)/√m over
    the probes it used, to float64 precision; the matvec count is this call's own; the default seed is 0."""
    n, m = 14, 4  # n > 3m: below that the trace is computed exactly (test_curvature_small_fixes.py)
    A = _sym(n, 3)
    op, spy = _spied(A)
    op.matvec(torch.ones(n, dtype=torch.float64))
    spy.seen.clear()
    t = hutchpp_trace(op, num_matvecs=3 * m, seed=7)
    assert len(spy.seen) == 3 * m
    S = torch.stack(spy.seen[:m], dim=1)
    Q = torch.stack(spy.seen[m : 2 * m], dim=1)
    Z = spy.seen[2 * m :]
    assert set(S.flatten().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(Q.T @ Q, torch.eye(m, dtype=torch.float64), rtol=0, atol=1e-12)
    proj = Q @ Q.T
    torch.testing.assert_close(proj @ (A @ S), A @ S, rtol=0, atol=1e-10)  # Q spans A·S
    for z in Z:  # residual probes are projected off the sketched subspace
        assert float((Q.T @ z).abs().max()) < 1e-12
    exact = float(np.trace(Q.numpy().T @ A.numpy() @ Q.numpy()))
    q = _quad_forms(A, Z)
    assert np.std(q, ddof=1) > 0.1
    assert t.estimate == pytest.approx(exact + float(q.mean()), rel=1e-13)
    assert t.stderr == pytest.approx(float(np.std(q, ddof=1)) / math.sqrt(m), rel=1e-12)
    assert (t.num_samples, t.num_matvecs, t.method, t.seed) == (m, 3 * m, "hutch++", 7)
    d = hutchpp_trace(LambdaOperator(_sym(100, 3)))  # 100 > 99: Hutch++ proper, the sketch basis has 33 columns
    assert (d.num_samples, d.num_matvecs, d.seed) == (33, 99, 0)


def test_hutchpp_uses_at_least_three_probes_per_stage() -> None:
    """A budget under 9 matvecs still sketches with 3 columns (and so spends 9); a budget of 9 spends exactly 9
    (on a 13-dimensional operator: larger than the 3m = 12 matvecs of the largest budget here)."""
    A = _sym(13, 4)
    for budget in (2, 9):
        t = hutchpp_trace(LambdaOperator(A), num_matvecs=budget, seed=0)
        assert (t.num_samples, t.num_matvecs) == (3, 9)
    assert hutchpp_trace(LambdaOperator(A), num_matvecs=12, seed=0).num_samples == 4


def test_hutchpp_on_a_float32_operator_keeps_its_dtype_and_is_exact_on_low_rank() -> None:
    """The sketch basis is computed in float64 and handed back in the operator's dtype: on a float32 rank-2 matrix
    the probes are float32 and the estimate is the trace to float32 precision."""
    g = torch.Generator().manual_seed(5)
    u = torch.randn(20, 2, generator=g, dtype=torch.float64)
    A = (u @ u.T).float()
    op, spy = _spied(A)
    t = hutchpp_trace(op, num_matvecs=12, seed=0)
    assert all(v.dtype == torch.float32 for v in spy.seen)
    assert t.estimate == pytest.approx(float(torch.trace(A.double())), rel=1e-5)


# -- operators ------------------------------------------------------------------------------------------------------


def test_operator_errors_name_what_to_pass() -> None:
    """A wrong-length vector is a ValueError stating the expected shape; a function operator without ``size`` says
    size is required; a NaN product says to record the point as failed."""
    op = LambdaOperator(torch.eye(5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected a vector of shape \(5,\), got \(4,\)"):
        op.matvec(torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="size is required"):
        LambdaOperator(lambda v: v)
    bad = LambdaOperator(lambda v: v * float("nan"), size=3)
    with pytest.raises(NonFiniteError, match="record the point as failed rather than its curvature"):
        bad.matvec(torch.ones(3, dtype=torch.float64))


def test_operators_report_their_device_and_dtype() -> None:
    """Algorithms allocate their vectors on ``op.device`` in ``op.dtype``: both are real torch objects."""
    f = LambdaOperator(lambda v: v, size=3)
    assert f.device == torch.device("cpu") and f.dtype == torch.float64 and f.size == 3
    m = LambdaOperator(torch.eye(4, dtype=torch.float32))
    assert m.device == torch.device("cpu") and m.dtype == torch.float32 and m.size == 4
    h = HessianOperator(make_quadratic(6, seed=0), label_batches([2]), loss_fn=quad_loss)
    assert h.device == torch.device("cpu") and h.dtype == torch.float64 and h.size == 6


class _TinyNet(nn.Module):
    """A 4→3→2 tanh network in float64 with a parameter the loss never touches (frozen adapters, tied heads...)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(3, 4, generator=g, dtype=torch.float64))
        self.b1 = nn.Parameter(torch.randn(3, generator=g, dtype=torch.float64))
        self.w2 = nn.Parameter(torch.randn(2, 3, generator=g, dtype=torch.float64))
        self.b2 = nn.Parameter(torch.randn(2, generator=g, dtype=torch.float64))
        self.unused = nn.Parameter(torch.randn(2, generator=g, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x @ self.w1.T + self.b1) @ self.w2.T + self.b2


class _Counter:
    """Summed cross-entropy of _TinyNet that counts its forward passes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: nn.Module, batch) -> tuple[Tensor, Tensor, int]:
        self.calls += 1
        logits = model(batch["x"])
        loss = F.cross_entropy(logits, batch["labels"], reduction="sum")
        return loss, (logits.argmax(-1) == batch["labels"]).sum(), int(batch["labels"].shape[0])


def _net_batches(sizes: list[int], seed: int = 1) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(s, 4, generator=g, dtype=torch.float64), "labels": torch.randint(0, 2, (s,), generator=g)}
            for s in sizes]


def _reference(model: _TinyNet, batches: list[dict[str, Tensor]]) -> tuple[float, Tensor, Tensor]:
    """Loss, gradient and Hessian of Σ_batches Σ_examples CE / N as a function of the flat parameter vector, by
    ``torch.autograd.functional``."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat0 = torch.cat([p.detach().flatten() for _, p in model.named_parameters()])
    total = sum(int(b["labels"].shape[0]) for b in batches)

    def f(flat: Tensor) -> Tensor:
        params, i = {}, 0
        for n, s in zip(names, shapes):
            k = math.prod(s)
            params[n] = flat[i : i + k].reshape(s)
            i += k
        out = flat.new_zeros(())
        for b in batches:
            logits = torch.func.functional_call(model, params, (b["x"],))
            out = out + F.cross_entropy(logits, b["labels"], reduction="sum")
        return out / total

    loss = float(f(flat0))
    grad = torch.autograd.functional.jacobian(f, flat0)
    hess = torch.autograd.functional.hessian(f, flat0)
    return loss, grad, hess


def test_hessian_operator_and_loss_and_grad_match_autograd_over_unequal_batches() -> None:
    """H (column by column through matvec), the loss and the gradient of the example-weighted mean over batches of
    2, 3 and 1 examples equal torch.autograd.functional's, including the zero rows of a parameter the loss never
    uses; the model is left in train mode as found; a single one-example batch is a valid input."""
    model = _TinyNet().train()
    batches = _net_batches([2, 3, 1])
    loss_ref, grad_ref, hess_ref = _reference(model, batches)
    op = HessianOperator(model, batches, loss_fn=_Counter())
    assert op.size == 25 and op.names == ("w1", "b1", "w2", "b2", "unused")
    H = torch.stack([op.matvec(e) for e in torch.eye(op.size, dtype=torch.float64)], dim=1)
    assert op.num_matvecs == op.size
    torch.testing.assert_close(H, hess_ref, rtol=1e-10, atol=1e-12)
    assert float(hess_ref[-2:].abs().max()) == 0.0 and float(hess_ref[:-2, :-2].abs().max()) > 0.1
    loss, grad = loss_and_grad(model, batches, loss_fn=_Counter())
    assert loss == pytest.approx(loss_ref, rel=1e-13)
    torch.testing.assert_close(grad.flatten(), grad_ref, rtol=1e-12, atol=1e-14)
    assert model.training
    one = batches[2:]
    loss_ref1, grad_ref1, hess_ref1 = _reference(model, one)
    loss1, grad1 = loss_and_grad(model, one, loss_fn=_Counter())
    assert loss1 == pytest.approx(loss_ref1, rel=1e-13)
    torch.testing.assert_close(grad1.flatten(), grad_ref1, rtol=1e-12, atol=1e-14)
    v = torch.linspace(-1.0, 1.0, 25, dtype=torch.float64)
    torch.testing.assert_close(HessianOperator(model, one, loss_fn=_Counter()).matvec(v), hess_ref1 @ v,
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError):
        loss_and_grad(model, [], loss_fn=_Counter())


def test_reuse_graph_trades_forward_passes_for_memory_and_is_off_by_default() -> None:
    """By default every product recomputes each batch's forward pass (nothing held between products); with
    ``reuse_graph=True`` the forwards run once and later products reuse the kept graphs -- with the same result."""
    model = _TinyNet()
    batches = _net_batches([2, 3])
    v = torch.linspace(-1.0, 1.0, 25, dtype=torch.float64)
    fresh_count, kept_count = _Counter(), _Counter()
    fresh = HessianOperator(model, batches, loss_fn=fresh_count)
    kept = HessianOperator(model, batches, loss_fn=kept_count, reuse_graph=True)
    assert fresh.reuse_graph is False and kept.reuse_graph is True
    a = [fresh.matvec(v) for _ in range(3)]
    b = [kept.matvec(v) for _ in range(3)]
    assert fresh_count.calls == 3 * len(batches)
    assert kept_count.calls == len(batches)
    for x in a[1:] + b:
        torch.testing.assert_close(x, a[0], rtol=1e-13, atol=0)


def test_a_batch_with_no_curvature_still_counts_in_the_mean() -> None:
    """f = Σ_b n_b·ℓ_b / N with ℓ linear (no Hessian) on the first batch and ½xᵀAx + bᵀx on the second: H = A·n₂/N.
    The linear batch contributes nothing to the product but later batches must still be visited."""
    model = make_quadratic(6, seed=3)

    def loss_fn(m: nn.Module, batch) -> tuple[Tensor, Tensor, int]:
        n = int(batch["labels"].shape[0])
        value = m.b @ m.x if bool(batch["linear"]) else m.value()
        return value * n, torch.zeros((), dtype=torch.float64), n

    batches = [{"labels": torch.zeros(3, dtype=torch.long), "linear": torch.tensor(True)},
               {"labels": torch.zeros(2, dtype=torch.long), "linear": torch.tensor(False)}]
    op = HessianOperator(model, batches, loss_fn=loss_fn)
    v = torch.linspace(-1.0, 2.0, 6, dtype=torch.float64)
    torch.testing.assert_close(op.matvec(v), model.A @ v * (2 / 5), rtol=1e-13, atol=1e-15)


# -- ε-sharpness ------------------------------------------------------------------------------------------------------


class _Separable(nn.Module):
    """L = ½ Σ a_i x_i² + ½ Σ c_j y_j² (a, c > 0) in float64: convex and separable, so the maximum over Keskar's box
    |δ_i| ≤ ε(|θ_i| + offset) is at the corner |θ_i + δ_i| = |θ_i| + ε(|θ_i| + offset), reached by sign ascent."""

    def __init__(self, x0: Tensor, y0: Tensor, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("a", torch.rand(x0.shape[0], generator=g, dtype=torch.float64) + 0.5)
        self.register_buffer("c", torch.rand(y0.shape[0], generator=g, dtype=torch.float64) + 0.5)
        self.x = nn.Parameter(x0.clone())
        self.y = nn.Parameter(y0.clone())

    def value(self) -> Tensor:
        return 0.5 * (self.a * self.x**2).sum() + 0.5 * (self.c * self.y**2).sum()

    def at(self, x: Tensor, y: Tensor) -> float:
        return float(0.5 * (self.a * x**2).sum() + 0.5 * (self.c * y**2).sum())


def _corner(t: Tensor, eps: float, offset: float) -> Tensor:
    return t.abs() + eps * (t.abs() + offset)


@pytest.mark.parametrize("offset", [1.0, 0.0])
def test_sharpness_of_a_convex_quadratic_is_the_box_corner_field_by_field(offset: float) -> None:
    """Sign ascent from the seeded start moves each coordinate by half the half-width towards the corner on θ's side
    (the gradient a·(θ+δ) keeps θ's sign inside the box), so after 4 steps every coordinate is at its corner, even
    one that started at the opposite one: max_loss is the closed form, every visited point (the start, 4 steps)
    costs one gradient plus one for the base point, and every field is reported as given."""
    x0 = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    y0 = torch.tensor([0.3, -0.7], dtype=torch.float64)
    model = _Separable(x0, y0)
    eps = 1e-2
    r = epsilon_sharpness(model, label_batches([3, 2]), epsilon=eps, steps=4, seed=3, loss_fn=quad_loss,
                          param_group="all", offset=offset)
    base = model.at(x0, y0)
    top = model.at(_corner(x0, eps, offset), _corner(y0, eps, offset))
    assert r == SharpnessResult(sharpness=pytest.approx(100 * (top - base) / (1 + base), rel=1e-12),
                                base_loss=pytest.approx(base, rel=1e-14), max_loss=pytest.approx(top, rel=1e-13),
                                epsilon=eps, steps=4, num_gradients=6, seed=3, param_group="all")
    assert type(r.epsilon) is float and type(r.steps) is int and type(r.seed) is int
    assert torch.equal(model.x.detach(), x0) and torch.equal(model.y.detach(), y0)  # restored


def test_sharpness_counts_one_gradient_per_visited_point() -> None:
    model = _Separable(torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64))
    for steps in (0, 1, 5):
        r = epsilon_sharpness(model, label_batches([1]), epsilon=1e-3, steps=steps, loss_fn=quad_loss)
        assert (r.steps, r.num_gradients) == (steps, steps + 2)


def test_sharpness_perturbs_only_the_named_parameters() -> None:
    """With names=["x"] the box is over x alone (y stays at θ): the maximum is the corner in x with y unmoved."""
    x0 = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    y0 = torch.tensor([3.0, -4.0], dtype=torch.float64)
    model = _Separable(x0, y0, seed=1)
    eps = 1e-2
    r = epsilon_sharpness(model, label_batches([2]), epsilon=eps, steps=3, names=["x"], loss_fn=quad_loss)
    assert r.max_loss == pytest.approx(model.at(_corner(x0, eps, 1.0), y0), rel=1e-13)


def test_sharpness_with_no_steps_is_the_seeded_uniform_start() -> None:
    """steps=0 evaluates the base point and the start δ₀ = (2U − 1)·ε(|θ| + 1), U the float64 uniforms of
    torch.Generator(seed) drawn tensor by tensor: on the linear loss bᵀx the reported maximum is
    base + max(0, bᵀδ₀) (the same seed gives the same start on every machine and release)."""
    model = make_quadratic(8, seed=5)
    model.A.zero_()
    x0 = model.x.detach().clone()
    eps = 1e-2
    half = eps * (x0.abs() + 1)
    gains = []
    for seed in range(6):
        r = epsilon_sharpness(model, label_batches([2]), epsilon=eps, steps=0, seed=seed, loss_fn=quad_loss)
        u = torch.rand(8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        gain = float(model.b @ ((2 * u - 1) * half))
        gains.append(gain)
        assert r.base_loss == pytest.approx(float(model.b @ x0), rel=1e-14)
        assert r.max_loss == pytest.approx(r.base_loss + max(0.0, gain), rel=1e-13, abs=1e-15)
    assert min(gains) < 0 < max(gains)  # both branches of the max are exercised


def test_sharpness_defaults_are_keskars_epsilon_ten_half_steps_seed_zero() -> None:
    """The defaults are ε = 1e-3 (Keskar et al.), 10 steps of half the half-width, seed 0. The loss is concave with
    its maximum inside the box, so the visited points (and the reported maximum) depend on every one of them."""
    model = make_quadratic(5, seed=6)
    with torch.no_grad():
        model.A.copy_(-torch.diag(torch.linspace(1.0, 2.0, 5, dtype=torch.float64)))
        model.x.zero_()  # θ = 0: the box is |δ_i| ≤ 1e-3 and the base loss 0
        model.b.copy_(-(model.A @ torch.full((5,), 6e-4, dtype=torch.float64)))  # maximum at δ = 6e-4: inside
    batches = label_batches([2])
    explicit = epsilon_sharpness(model, batches, epsilon=1e-3, steps=10, step_fraction=0.5, seed=0, loss_fn=quad_loss)
    assert epsilon_sharpness(model, batches, loss_fn=quad_loss) == explicit
    for other in ({"epsilon": 1.001e-3}, {"steps": 11}, {"step_fraction": 1.5}, {"seed": 1}):
        assert epsilon_sharpness(model, batches, loss_fn=quad_loss, **other) != explicit
