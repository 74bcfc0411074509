"""Dense float64 references for the curvature operators, built with ``torch.autograd.functional`` on a flat parameter
vector -- independent of the operators' own HVP / JVP / VJP code: the Hessian, the Gauss-Newton matrix Jᵀ H_z J from
explicit logit Jacobians, the empirical Fisher from explicit per-example gradients, and any operator as a matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

Batch = dict[str, Tensor]


def _flat(model: nn.Module, names: Sequence[str] | None) -> tuple[list[str], list[torch.Size], Tensor]:
    named = dict(model.named_parameters())
    sel = [n for n, _ in model.named_parameters() if names is None or n in set(names)]
    return sel, [named[n].shape for n in sel], torch.cat([named[n].detach().flatten() for n in sel])


def _unflat(sel: list[str], shapes: list[torch.Size], flat: Tensor) -> dict[str, Tensor]:
    out, i = {}, 0
    for n, s in zip(sel, shapes):
        k = int(torch.Size(s).numel())
        out[n] = flat[i : i + k].view(s)
        i += k
    return out


def logits_function(model: nn.Module, names: Sequence[str] | None, x_key: str = "x"
                    ) -> tuple[Callable[[Tensor, Batch], Tensor], Tensor]:
    """(logits(flat θ, batch), flat θ0) with the other parameters held at the model's values (eval mode)."""
    sel, shapes, flat0 = _flat(model, names)
    model.eval()

    def logits(flat: Tensor, batch: Batch) -> Tensor:
        return functional_call(model, _unflat(sel, shapes, flat), (batch[x_key],), strict=False)

    return logits, flat0


def dense_hessian(model: nn.Module, batches: Sequence[Batch], names: Sequence[str] | None = None) -> Tensor:
    logits, flat0 = logits_function(model, names)
    total = sum(int(b["labels"].shape[0]) for b in batches)

    def loss(flat: Tensor) -> Tensor:
        return sum(F.cross_entropy(logits(flat, b), b["labels"], reduction="sum") for b in batches) / total

    return torch.autograd.functional.hessian(loss, flat0)


def dense_ggn(model: nn.Module, batches: Sequence[Batch], names: Sequence[str] | None = None) -> Tensor:
    """(1/N) Σ_i J_iᵀ (diag p_i − p_i p_iᵀ) J_i with J_i = ∂z_i/∂θ the explicit Jacobian of example i's logits."""
    logits, flat0 = logits_function(model, names)
    total = sum(int(b["labels"].shape[0]) for b in batches)
    G = torch.zeros(flat0.numel(), flat0.numel(), dtype=torch.float64)
    for b in batches:
        J = torch.autograd.functional.jacobian(lambda f: logits(f, b), flat0)  # [B, C, P]
        p = torch.softmax(logits(flat0, b).detach(), dim=-1)
        for i in range(J.shape[0]):
            Hz = torch.diag(p[i]) - torch.outer(p[i], p[i])
            G += J[i].T @ Hz @ J[i]
    return G / total


def dense_empirical_fisher(model: nn.Module, batches: Sequence[Batch], names: Sequence[str] | None = None) -> Tensor:
    """(1/N) Σ_i g_i g_iᵀ, g_i the explicit gradient of example i's cross-entropy."""
    logits, flat0 = logits_function(model, names)
    total = sum(int(b["labels"].shape[0]) for b in batches)
    Fm = torch.zeros(flat0.numel(), flat0.numel(), dtype=torch.float64)
    for b in batches:
        J = torch.autograd.functional.jacobian(
            lambda f: F.cross_entropy(logits(f, b), b["labels"], reduction="none"), flat0)  # [B, P]
        Fm += J.T @ J
    return Fm / total


def operator_matrix(op) -> Tensor:  # noqa: ANN001 (any repro Operator)
    """The operator's matrix, column by column from its matvec on the standard basis (float64)."""
    eye = torch.eye(op.size, dtype=torch.float64)
    return torch.stack([op.matvec(eye[i].to(op.dtype)).double() for i in range(op.size)], dim=1)
