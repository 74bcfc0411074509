"""Gauss-Newton and empirical-Fisher operators for classifiers trained with cross-entropy on logits (curvlinops'
``GGNLinearOperator`` / ``EFLinearOperator``, here as :class:`~repro.curvature.operators.Operator` s).

* GGN: G = (1/N) Σ_i J_iᵀ H_i J_i, with J_i = ∂z_i/∂θ the Jacobian of example i's logits and
  H_i = diag(p_i) − p_i p_iᵀ the Hessian of the cross-entropy w.r.t. the logits (p_i = softmax(z_i)). It drops the
  term Σ_c (∂ℓ/∂z_c) ∇²z_c of the Hessian -- the network's own second derivatives -- so it is positive semi-definite
  by construction (H_i is), and equals the Hessian wherever the logits are linear in θ (a linear classifier, or the
  head of a network with only the head selected).
* Empirical Fisher: F = (1/N) Σ_i g_i g_iᵀ, g_i the gradient of example i's loss at its *observed* label. It is not
  the Fisher information: that takes the expectation over labels drawn from the model, E_{y∼p_i}[g g ᵀ], which for
  cross-entropy equals the GGN; the empirical Fisher uses the data's labels instead, is PSD of rank ≤ N, and can
  differ from both the GGN and the Hessian by far (Kunstner et al. 2019, "Limitations of the empirical Fisher").

Products: J v by forward-mode AD (dual parameters through ``torch.func.functional_call``), then Jᵀ w by one backward
through the same forward pass -- one forward (with tangents) and one backward per batch, no double backward and no
kept graph. Forward-mode AD needs eager attention (the CPU SDPA kernel has no forward derivative; load models with
the project's default ``attn_implementation="eager"``). Eval mode, the other parameters fixed, batches weighted by
example count, as for the Hessian operator.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from repro.curvature.base import FrozenOthers, Operator, count_examples, select_params
from repro.landscape.evaluate import Batch, LogitsFn, classification_logits
from repro.landscape.params import ParamVector


def _load_forward_ad() -> None:
    """torch loads its forward-mode decompositions on first use through ``torch.jit.script``, which warns that it is
    deprecated (torch's own code, torch 2.13); load them once with that one warning silenced, so callers that treat
    warnings as errors (this project's tests) can use forward-mode AD."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
        import torch._decomp.decompositions_for_jvp  # noqa: F401


class _Proxy(nn.Module):
    """Lets ``logits_fn(model, batch)`` call ``model(...)`` with the dual parameters."""

    def __init__(self, model: nn.Module, params: dict[str, Tensor]) -> None:
        super().__init__()
        self._model, self._p = model, params

    def forward(self, *args: object, **kwargs: object) -> object:
        return functional_call(self._model, self._p, args, kwargs, strict=False)


class _JacobianOperator(Operator):
    """Shared machinery: per batch, outputs y(θ) (logits, or per-example losses) and their JVP J_y v in one forward
    pass, a weight w = M(J_y v) per example, and Jᵀ w by a backward through that pass."""

    kind = "jacobian"

    def __init__(self, model: nn.Module, batches: Sequence[Batch], names: Iterable[str] | None = None,
                 logits_fn: LogitsFn = classification_logits) -> None:
        super().__init__()
        self.model, self.batches, self.logits_fn = model, list(batches), logits_fn
        self.params = select_params(model, names)
        self.size = self.params.numel()
        self.dtype = self.params.tensors[0].dtype
        self.device = self.params.tensors[0].device
        self.total = count_examples(self.batches)

    def _outputs(self, logits: Tensor, batch: Batch) -> Tensor:
        raise NotImplementedError

    def _weight(self, y: Tensor, jy: Tensor) -> Tensor:
        raise NotImplementedError

    def apply(self, v: ParamVector) -> ParamVector:
        """The product on structured vectors."""
        _load_forward_ad()
        v = v.to(device=self.device)
        params = list(self.params.tensors)
        acc: list[Tensor | None] = [None] * len(params)
        was = self.model.training
        self.model.eval()
        try:
            with FrozenOthers(self.model, set(self.params.names)):
                for b in self.batches:
                    with fwAD.dual_level():
                        duals = {n: fwAD.make_dual(p, t) for n, p, t in zip(self.params.names, params, v.tensors)}
                        logits = self.logits_fn(_Proxy(self.model, duals), b)
                        out = self._outputs(logits.float() if logits.dtype in (torch.float16, torch.bfloat16)
                                            else logits, b)
                        y, jy = fwAD.unpack_dual(out)
                    if jy is None:  # the outputs do not depend on the selected parameters
                        continue
                    w = self._weight(y.detach(), jy.detach()) / self.total
                    g = torch.autograd.grad(y, params, grad_outputs=w, allow_unused=True)
                    for i, h in enumerate(g):
                        if h is not None:
                            acc[i] = h if acc[i] is None else acc[i].add_(h)
        finally:
            self.model.train(was)
        return ParamVector(self.params.names, tuple(torch.zeros_like(p) if a is None else a
                                                    for p, a in zip(params, acc)))

    def _matvec(self, v: Tensor) -> Tensor:
        return self.apply(self.params.unflatten(v)).flatten()


class GGNOperator(_JacobianOperator):
    """v ↦ G v, the generalised Gauss-Newton matrix of the mean cross-entropy over ``batches`` w.r.t. the
    parameters ``names`` (see the module doc). ``logits_fn(model, batch)`` gives the logits; labels are not needed
    (H_i depends only on p_i)."""

    kind = "ggn"

    def _outputs(self, logits: Tensor, batch: Batch) -> Tensor:
        return logits

    def _weight(self, z: Tensor, jz: Tensor) -> Tensor:
        p = torch.softmax(z, dim=-1)
        return p * jz - p * (p * jz).sum(dim=-1, keepdim=True)  # (diag p − p pᵀ) J v, per example


class EmpiricalFisherOperator(_JacobianOperator):
    """v ↦ F v, F = (1/N) Σ_i g_i g_iᵀ over the examples of ``batches`` at their observed labels
    (``batch["labels"]``); not the true Fisher (see the module doc)."""

    kind = "empirical_fisher"

    def _outputs(self, logits: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(logits, batch["labels"], reduction="none")  # per-example losses

    def _weight(self, losses: Tensor, jl: Tensor) -> Tensor:
        return jl  # g_iᵀ v, the directional derivative of example i's loss
