"""GGN and empirical-Fisher operators (issue 19) against dense float64 matrices built from explicit Jacobians
(torch.autograd.functional.jacobian): equal to Jᵀ H_z J and to Σ g gᵀ / N, PSD, and the GGN is the Hessian for a
linear classifier with cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from classifier_fixture import CountingClassifier, batches, ce_loss, logits_of
from conftest import synthetic_batches
from dense_oracles import dense_empirical_fisher, dense_ggn, dense_hessian, operator_matrix
from repro.curvature import EmpiricalFisherOperator, GGNOperator, HessianOperator, lanczos
from repro.models.groups import parameter_groups


def _net():
    return CountingClassifier(seed=2).eval(), batches([5, 4], seed=7)


def test_ggn_is_jt_hz_j_and_psd() -> None:
    model, data = _net()
    ref = dense_ggn(model, data)
    op = GGNOperator(model, data, logits_fn=logits_of)
    G = operator_matrix(op)
    torch.testing.assert_close(G, ref, rtol=1e-10, atol=1e-12)
    ev = torch.linalg.eigvalsh(G)
    assert float(ev.min()) >= -1e-12 * float(ev.max())
    H = dense_hessian(model, data)
    assert float((G - H).norm()) > 1e-3 * float(H.norm())  # a tanh network: the GGN is not its Hessian
    assert op.num_matvecs == op.size


def test_empirical_fisher_is_the_mean_gradient_outer_product() -> None:
    model, data = _net()
    ref = dense_empirical_fisher(model, data)
    Fm = operator_matrix(EmpiricalFisherOperator(model, data, logits_fn=logits_of))
    torch.testing.assert_close(Fm, ref, rtol=1e-10, atol=1e-12)
    ev = torch.linalg.eigvalsh(Fm)
    assert float(ev.min()) >= -1e-12 * float(ev.max())
    assert int((ev > 1e-10 * float(ev.max())).sum()) <= 9  # rank ≤ number of examples
    torch.testing.assert_close(Fm, Fm.T, rtol=0, atol=1e-14)


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.lin = nn.Linear(4, 3, dtype=torch.float64)
        with torch.no_grad():
            for p in self.lin.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_ggn_equals_the_hessian_of_a_linear_classifier() -> None:
    model, data = _Linear().eval(), batches([6, 3], seed=2)
    G = operator_matrix(GGNOperator(model, data, logits_fn=logits_of))
    H = operator_matrix(HessianOperator(model, data, loss_fn=ce_loss))
    torch.testing.assert_close(G, H, rtol=1e-10, atol=1e-12)


def test_ggn_of_a_bert_group_is_the_explicit_jacobian_product(tiny_model) -> None:
    """Hugging Face path (dual parameters through functional_call): G v for the top layer of tiny-random equals
    Σ_i J_iᵀ H_i J_i v / N with J from torch.autograd.functional.jacobian; and λ_max of the GGN is ≥ 0."""
    from torch.func import functional_call

    model = tiny_model.double()
    data = synthetic_batches(1, 3, max_len=6, seed=1)
    names = parameter_groups(model)["high"]
    op = GGNOperator(model, data, names)
    named = dict(model.named_parameters())
    shapes = [named[n].shape for n in names]
    flat0 = torch.cat([named[n].detach().flatten() for n in names])
    b = data[0]
    inputs = {k: v for k, v in b.items() if k != "labels"}

    def logits(flat: torch.Tensor) -> torch.Tensor:
        ps, i = {}, 0
        for n, s in zip(names, shapes):
            k = s.numel()
            ps[n] = flat[i : i + k].view(s)
            i += k
        return functional_call(model, ps, (), inputs, strict=False).logits

    model.eval()
    J = torch.autograd.functional.jacobian(logits, flat0)  # [B, C, P]
    p = torch.softmax(logits(flat0).detach(), -1)
    v = torch.randn(flat0.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = sum(J[i].T @ ((torch.diag(p[i]) - torch.outer(p[i], p[i])) @ (J[i] @ v)) for i in range(3)) / 3
    gv = op.matvec(v)
    assert float((gv - ref).norm()) <= 1e-9 * float(ref.norm())
    assert float(v @ gv) >= 0
    top = lanczos(op, 1, tol=1e-3, max_iter=20, seed=0)
    assert top.eigenvalues[0] >= 0
    ef = EmpiricalFisherOperator(model, data, names)
    g_i = [torch.autograd.functional.jacobian(
        lambda f: F.cross_entropy(logits(f), b["labels"], reduction="none"), flat0)]
    Jl = g_i[0]
    torch.testing.assert_close(ef.matvec(v), Jl.T @ (Jl @ v) / 3, rtol=1e-9, atol=1e-14)
