from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from conftest import label_batches, make_quadratic, quad_loss, synthetic_batches
from spectra import known_spectrum
from repro.curvature import (
    EigenResult,
    HessianOperator,
    LambdaOperator,
    epsilon_sharpness,
    hutchinson_trace,
    hutchpp_trace,
    lanczos,
    loss_and_grad,
    power_iteration,
)
from repro.landscape import ParamVector, get_params
from repro.models.groups import parameter_groups
from repro.storage import from_json_dict, to_json_dict


def _sym(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return (m + m.T) / 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lanczos_top_k_matches_eigvalsh(seed: int) -> None:
    A = _sym(60, seed)
    r = lanczos(LambdaOperator(A), k=5, tol=1e-10, max_iter=60, seed=seed, return_vectors=True)
    ref = np.linalg.eigvalsh(A.numpy())[::-1][:5]
    np.testing.assert_allclose(r.eigenvalues, ref, rtol=1e-6)
    assert r.converged and max(r.residuals) < 1e-6
    assert r.eigenvectors is not None and r.eigenvectors.shape == (5, 60)
    lm = lanczos(LambdaOperator(A), k=3, tol=1e-10, max_iter=60, seed=seed, which="LM")
    ev = np.linalg.eigvalsh(A.numpy())
    np.testing.assert_allclose(lm.eigenvalues, ev[np.argsort(-np.abs(ev))][:3], rtol=1e-6)


# Fixed relative tolerance for eigenvalues of float64 matrices with well-separated top eigenvalues. It does not come
# from the solver's own residuals: a solver that reports small residuals for wrong eigenvalues must still fail.
EIG_RTOL = 1e-8


def test_lanczos_recovers_a_planted_spectrum_and_its_eigenvectors() -> None:
    A, lam = known_spectrum([10.0, 7.0, 5.0], 80, seed=3)
    r = lanczos(LambdaOperator(A), k=3, tol=1e-12, max_iter=80, seed=1, return_vectors=True)
    np.testing.assert_allclose(r.eigenvalues, [10.0, 7.0, 5.0], rtol=EIG_RTOL)
    assert r.eigenvectors is not None
    for lam_i, v in zip(r.eigenvalues, r.eigenvectors):
        assert float(v.norm()) == pytest.approx(1.0, abs=1e-12)
        assert float((A @ v - lam_i * v).norm()) <= 1e-8 * 10.0  # an eigenpair of A, checked independently
    # the reported residuals are the explicit ‖Av − λv‖, not estimates
    for res, lam_i, v in zip(r.residuals, r.eigenvalues, r.eigenvectors):
        assert res == pytest.approx(float((A @ v - lam_i * v).norm()), rel=1e-6, abs=1e-13)


def test_lanczos_largest_algebraic_versus_largest_magnitude() -> None:
    """A Hessian at a saddle has a large negative eigenvalue: 'LA' must skip it, 'LM' must return it first."""
    A, _ = known_spectrum([-20.0, 6.0, 4.0], 60, seed=4)
    la = lanczos(LambdaOperator(A), k=2, tol=1e-12, max_iter=60, seed=0, which="LA")
    lm = lanczos(LambdaOperator(A), k=2, tol=1e-12, max_iter=60, seed=0, which="LM")
    np.testing.assert_allclose(la.eigenvalues, [6.0, 4.0], rtol=EIG_RTOL)
    np.testing.assert_allclose(lm.eigenvalues, [-20.0, 6.0], rtol=EIG_RTOL)
    assert la.converged and lm.converged
    with pytest.raises(ValueError, match="LA"):
        lanczos(LambdaOperator(A), k=1, which="SA")


def test_lanczos_stopped_early_is_not_converged() -> None:
    """Two iterations cannot resolve the top eigenvalue of an 80-dimensional spectrum to 1e-10: the result must say
    so (converged=False, a residual above the tolerance), so a caller that checks it is not fooled."""
    A, _ = known_spectrum([10.0, 9.5, 9.0], 80, seed=5, rest=8.0)
    r = lanczos(LambdaOperator(A), k=1, tol=1e-10, max_iter=2, seed=0)
    assert not r.converged and r.residuals[0] > 1e-10 * abs(r.eigenvalues[0])
    assert r.eigenvalues[0] <= 10.0 + 1e-9  # Ritz values never exceed λ_max (Cauchy interlacing)


def test_power_iteration_with_deflation_recovers_a_planted_spectrum() -> None:
    A, _ = known_spectrum([8.0, -4.0, 2.0], 50, seed=6)
    p = power_iteration(LambdaOperator(A), k=3, tol=1e-14, max_iter=3000, seed=2, return_vectors=True)
    np.testing.assert_allclose(p.eigenvalues, [8.0, -4.0, 2.0], rtol=1e-6)  # largest magnitude first
    assert p.converged and p.eigenvectors is not None
    gram = p.eigenvectors @ p.eigenvectors.T
    torch.testing.assert_close(gram, torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)  # deflation worked
    for lam_i, v in zip(p.eigenvalues, p.eigenvectors):
        assert float((A @ v - lam_i * v).norm()) <= 1e-3 * 8.0


def _hutchinson_sd(A: torch.Tensor, n: int) -> float:
    """Exact standard deviation of the n-probe Rademacher Hutchinson mean: Var(zᵀAz) = 2(‖A‖_F² − Σ a_ii²)."""
    fro2 = float((A * A).sum())
    diag2 = float((torch.diagonal(A) ** 2).sum())
    return float(np.sqrt(2.0 * (fro2 - diag2) / n))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_hutchinson_error_is_within_the_known_variance(seed: int) -> None:
    """|estimate − tr A| ≤ 4σ with σ from the closed-form variance, not from the estimator's own stderr (a wrong
    stderr would widen its own tolerance). With fixed seeds the check is deterministic; 4σ would be exceeded by a
    correct estimator with probability < 1e-4 per seed."""
    A = _sym(40, 100 + seed) + 3.0 * torch.eye(40, dtype=torch.float64)  # trace far from 0
    n = 400
    sd = _hutchinson_sd(A, n)
    t = hutchinson_trace(LambdaOperator(A), num_samples=n, seed=seed)
    assert abs(t.estimate - float(torch.trace(A))) <= 4 * sd
    # and the reported stderr estimates that σ (sample sd of 400 draws: within ±25% with overwhelming probability)
    assert 0.75 * sd <= t.stderr <= 1.25 * sd
    assert t.num_samples == n and t.num_matvecs == n and t.method == "hutchinson" and t.seed == seed


def test_hutchinson_is_exact_on_a_diagonal_matrix() -> None:
    """zᵀDz = tr D for every ±1 probe: any probe that is not Rademacher (0/1, Gaussian, unscaled) shows here."""
    D = torch.diag(torch.linspace(-3.0, 5.0, 30, dtype=torch.float64))
    t = hutchinson_trace(LambdaOperator(D), num_samples=7, seed=3)
    assert t.estimate == pytest.approx(float(torch.trace(D)), abs=1e-12)
    assert t.stderr == pytest.approx(0.0, abs=1e-12)


def test_hutchpp_is_exact_on_a_low_rank_matrix_and_within_variance_otherwise() -> None:
    """Hutch++ sketches H·S with m columns: on a rank-r PSD matrix with r < m the sketch spans its range and the
    estimate is exact. On a full-rank matrix its error is below the plain Hutchinson bound for the same matvecs."""
    g = torch.Generator().manual_seed(8)
    u = torch.randn(60, 4, generator=g, dtype=torch.float64)
    low = u @ u.T
    tp = hutchpp_trace(LambdaOperator(low), num_matvecs=30, seed=0)
    assert tp.estimate == pytest.approx(float(torch.trace(low)), rel=1e-10)
    assert tp.num_samples == 10 and tp.num_matvecs == 30 and tp.method == "hutch++"
    A, _ = known_spectrum([50.0, 30.0, 20.0, 10.0], 60, seed=9, rest=0.5)
    tp = hutchpp_trace(LambdaOperator(A), num_matvecs=30, seed=1)
    assert abs(tp.estimate - float(torch.trace(A))) <= 4 * _hutchinson_sd(A, 30)


def test_eigen_result_round_trips_and_is_seeded() -> None:
    A = _sym(30, 4)
    state = torch.random.get_rng_state()
    a = lanczos(LambdaOperator(A), k=2, seed=3, return_vectors=True)
    b = lanczos(LambdaOperator(A), k=2, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.eigenvalues == b.eigenvalues and a.num_matvecs == b.num_matvecs
    d = a.without_vectors()
    assert from_json_dict(EigenResult, to_json_dict(d)) == d


def test_quadratic_hessian_operator_eigen_and_trace() -> None:
    model = make_quadratic(40, seed=7, psd=True)
    op = HessianOperator(model, label_batches([3, 4]), loss_fn=quad_loss)
    A = model.A.numpy()
    v = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(op.matvec(v), model.A @ v)
    r = lanczos(op, k=4, tol=1e-10, max_iter=40, seed=0)
    np.testing.assert_allclose(r.eigenvalues, np.linalg.eigvalsh(A)[::-1][:4], rtol=1e-6)
    p = power_iteration(op, k=1, tol=1e-10, max_iter=2000, seed=0)
    assert p.eigenvalues[0] == pytest.approx(np.linalg.eigvalsh(A)[-1], rel=1e-4)
    t = hutchinson_trace(op, num_samples=200, seed=1)
    assert abs(t.estimate - np.trace(A)) <= 3 * t.stderr and t.stderr > 0
    tp = hutchpp_trace(op, num_matvecs=60, seed=1)
    assert abs(tp.estimate - np.trace(A)) <= max(3 * tp.stderr, 1e-8 * np.trace(A))


def test_loss_and_grad_on_quadratic() -> None:
    model = make_quadratic(5, seed=1)
    loss, g = loss_and_grad(model, label_batches([2, 3]), loss_fn=quad_loss)
    x = model.x.detach()
    assert loss == pytest.approx(float(model.value().detach()))
    torch.testing.assert_close(g.tensors[0], model.A @ x + model.b)


def test_sharpness_of_a_linear_loss_is_the_box_corner() -> None:
    model = make_quadratic(6, seed=2)
    model.A.zero_()
    x0 = model.x.detach().clone()
    eps = 1e-2
    r = epsilon_sharpness(model, label_batches([4]), epsilon=eps, steps=6, seed=0, loss_fn=quad_loss)
    base = float(model.b @ x0)  # noqa: F841 (readability)
    gain = float((model.b.abs() * eps * (x0.abs() + 1)).sum())
    assert r.base_loss == pytest.approx(base)
    assert r.max_loss == pytest.approx(base + gain, rel=1e-10)
    assert r.sharpness == pytest.approx(100 * gain / (1 + base), rel=1e-10)
    assert torch.equal(model.x.detach(), x0)


def test_sharpness_on_tiny_bert_is_nonnegative_seeded_and_restores(tiny_model) -> None:
    batches = synthetic_batches(1, 4, seed=3)
    before = get_params(tiny_model)
    head = parameter_groups(tiny_model)["head"]
    a = epsilon_sharpness(tiny_model, batches, epsilon=1e-3, steps=3, seed=1, names=head)
    b = epsilon_sharpness(tiny_model, batches, epsilon=1e-3, steps=3, seed=1, names=head)
    assert a == b and a.sharpness >= 0
    assert (get_params(tiny_model) - before).norm() == 0.0


@pytest.fixture(scope="module")
def tiny_double(tiny_bert):
    return copy.deepcopy(tiny_bert).double()


def test_hvp_matches_central_finite_difference(tiny_double) -> None:
    model = tiny_double
    batches = synthetic_batches(2, 3, max_len=8, seed=4)
    names = [n for n in parameter_groups(model)["all"] if "word_embeddings" not in n]
    op = HessianOperator(model, batches, names)
    theta = get_params(model, names)
    g = torch.Generator().manual_seed(0)
    v = ParamVector(theta.names, tuple(torch.randn(t.shape, generator=g, dtype=torch.float64) for t in theta.tensors))
    v.scale_(1.0 / v.norm())
    hv = op.hvp(v)
    h = 1e-4
    from repro.landscape import set_params

    set_params(model, theta, [(h, v)])
    _, gp = loss_and_grad(model, batches, names)
    set_params(model, theta, [(-h, v)])
    _, gm = loss_and_grad(model, batches, names)
    set_params(model, theta)
    fd = (gp - gm) * (1 / (2 * h))
    assert (hv - fd).norm() <= 1e-6 * max(hv.norm(), 1e-12)
    cached = HessianOperator(model, batches, names, reuse_graph=True)
    for _ in range(2):  # the kept graph gives the same product on every call
        assert (cached.hvp(v) - hv).norm() <= 1e-12 * hv.norm()


def test_group_restricted_hvp_is_the_diagonal_block(tiny_double) -> None:
    model = tiny_double
    batches = synthetic_batches(1, 3, max_len=6, seed=5)
    head = parameter_groups(model)["head"]
    full = HessianOperator(model, batches, [n for n in parameter_groups(model)["all"] if "word_emb" not in n])
    block = HessianOperator(model, batches, head)
    assert block.size == sum(p.numel() for n, p in model.named_parameters() if n in head)
    g = torch.Generator().manual_seed(1)
    vb = ParamVector(block.names, tuple(torch.randn(t.shape, generator=g, dtype=torch.float64)
                                        for t in block.params.tensors))
    vf = ParamVector(full.names, tuple(vb.as_dict()[n] if n in head else torch.zeros_like(t)
                                       for n, t in zip(full.names, full.params.tensors)))
    hb, hf = block.hvp(vb), full.hvp(vf).select(block.names)
    assert (hb - hf).norm() <= 1e-10 * hb.norm()
    assert all(p.requires_grad for p in model.parameters())  # restored


class _HFWrapper(nn.Module):
    """PyHessian calls model(inputs) with one tensor: stack ids/mask/types and unpack here."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=x[0], attention_mask=x[1], token_type_ids=x[2]).logits


def test_lambda_max_agrees_with_pyhessian(tiny_model) -> None:
    from pyhessian import hessian

    batch = synthetic_batches(1, 8, max_len=10, seed=6)[0]
    op = HessianOperator(tiny_model, [batch])
    ours = lanczos(op, k=1, tol=1e-4, max_iter=80, seed=0, which="LM")  # float32 model
    assert ours.converged
    inputs = torch.stack([batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]])
    tiny_model.eval()
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(0)  # PyHessian draws its start vector from the global RNG
        warnings.simplefilter("ignore")  # backward(create_graph=True) reference-cycle warning
        hc = hessian(_HFWrapper(tiny_model), nn.CrossEntropyLoss(), data=(inputs, batch["labels"]), cuda=False)
        theirs, _ = hc.eigenvalues(maxIter=300, tol=1e-6, top_n=1)
    for p in tiny_model.parameters():
        p.grad = None  # PyHessian leaves create_graph gradients behind
    assert ours.eigenvalues[0] == pytest.approx(theirs[0], rel=1e-2)
