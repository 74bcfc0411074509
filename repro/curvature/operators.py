"""Linear operators: what a matrix-vector product is. Algorithms (Lanczos, power iteration, trace) see only this.

:class:`HessianOperator` is the Hessian of the example-weighted mean loss over fixed batches with respect to a
parameter group (the other parameters are held fixed), applied by double backward. It needs eager attention: the
fused SDPA kernels have no second derivative. The model is put in eval mode (dropout would make H random).

``method="finite_difference"`` replaces the double backward by a central difference of two gradients,
Hv ≈ (g(θ+hv) − g(θ−hv)) / 2h: no second derivative is needed, so it runs with SDPA attention, and no graph is kept.
Its error is h²/6 · D³g(θ)[v,v,v] (the third derivative of the gradient g = ∇L, i.e. ∇⁴L, along v: the even terms
cancel) plus rounding of about ε‖g‖/h; see :data:`FD_STEP_FACTOR` for the default step.

Every product is checked for NaN/Inf (:class:`~repro.errors.NonFiniteError`): a diverged model gives a NaN Hessian,
and a NaN fed into Lanczos or a trace estimate would otherwise come out as a wrong number or a solver failure far from
its cause. The check is one sum per product (a NaN or Inf entry makes the sum non-finite; only then are the entries
inspected one by one, so a finite product whose sum overflows is not refused).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

from repro.errors import NonFiniteError
from repro.landscape.evaluate import Batch, LossFn, classification_loss
from repro.landscape.params import ParamVector, get_params, model_params, set_params

# The finite-difference step is h = FD_STEP_FACTOR · ε^(1/3) / ‖v‖ (ε: machine epsilon of the parameters' dtype, so
# 9.9e-4 in float32, 1.2e-6 in float64, for a unit v). ε^(1/3) is the textbook balance of truncation (∝ h²) against
# rounding (∝ ε/h) when the gradient and its third derivative have the same scale. Along the sharpest directions of a
# BERT encoder the third derivative is far larger. Measured on tiny-minilm's encoder (float32, 16 examples): along
# the top eigenvector the relative error is 1.6e-3 at this step, 16 % at h = 1e-2 and 100 % at 3e-2; along a random
# direction (small ‖Hv‖) the product is rounding-limited, ~1e-8/(h‖Hv‖): 16 % at this step, 0.1 % only at h ≈ 0.3.
# No one step serves both in float32: this one serves the top of the spectrum (λ_max, Lanczos), and traces from
# random probes want float64 (error ~1e-9 there at this step) or the exact product.
FD_STEP_FACTOR = 0.2
FD_METHODS = ("autograd", "finite_difference")


class Operator(ABC):
    """A symmetric linear map on flat vectors of length ``size``; counts its matvecs."""

    size: int
    dtype: torch.dtype
    device: torch.device

    def __init__(self) -> None:
        self.num_matvecs = 0

    @abstractmethod
    def _matvec(self, v: Tensor) -> Tensor: ...

    def as_linear_operator(self):  # noqa: ANN201 (scipy.sparse.linalg.LinearOperator, imported lazily)
        """This operator as a SciPy ``LinearOperator`` (:func:`repro.curvature.interop.as_linear_operator`)."""
        from repro.curvature.interop import as_linear_operator

        return as_linear_operator(self)

    def matvec(self, v: Tensor) -> Tensor:
        """H v on the operator's device and dtype (``v`` is moved there if needed); NaN/Inf raise
        :class:`NonFiniteError`."""
        if v.shape != (self.size,):
            raise ValueError(f"expected a vector of shape ({self.size},), got {tuple(v.shape)}")
        self.num_matvecs += 1
        out = self._matvec(v.to(device=self.device, dtype=self.dtype))
        # one reduction (NaN/Inf propagate through a sum); the elementwise check only if the sum is not finite, so a
        # finite product whose sum overflows is not refused
        if not math.isfinite(float(out.sum())) and not bool(torch.isfinite(out).all()):
            raise NonFiniteError(
                f"{type(self).__name__}: a matrix-vector product has NaN/Inf entries (product #{self.num_matvecs}); "
                "the loss or its curvature is not finite at this point (a diverged run?) -- record the point as "
                "failed rather than its curvature"
            )
        return out


class LambdaOperator(Operator):
    """An operator from a function, or from an explicit (symmetric) matrix: makes algorithms testable."""

    def __init__(self, fn: Callable[[Tensor], Tensor] | Tensor, size: int | None = None,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
        super().__init__()
        if isinstance(fn, Tensor):
            mat = fn
            self._fn: Callable[[Tensor], Tensor] = lambda v: mat @ v
            size, dtype, device = mat.shape[0], mat.dtype, mat.device
        else:
            self._fn = fn
        if size is None:
            raise ValueError("size is required for a function operator")
        self.size = int(size)
        self.dtype = dtype or torch.float64
        self.device = torch.device(device or "cpu")

    def _matvec(self, v: Tensor) -> Tensor:
        return self._fn(v)


def _select(model: nn.Module, names: Iterable[str] | None) -> ParamVector:
    return model_params(model, names)


class _FrozenOthers:
    """Context: only the selected parameters require grad (others are constants, and cheaper)."""

    def __init__(self, model: nn.Module, keep: set[str]) -> None:
        self.model, self.keep = model, keep
        self.saved: list[tuple[Tensor, bool]] = []

    def __enter__(self) -> None:
        for n, p in self.model.named_parameters():
            self.saved.append((p, p.requires_grad))
            p.requires_grad_(n in self.keep)

    def __exit__(self, *exc: object) -> None:
        for p, r in self.saved:
            p.requires_grad_(r)


def loss_and_grad(
    model: nn.Module, batches: Sequence[Batch], names: Iterable[str] | None = None,
    loss_fn: LossFn = classification_loss, *, create_graph: bool = False,
) -> tuple[float, ParamVector]:
    """Example-weighted mean loss and its gradient w.r.t. the selected parameters (eval mode)."""
    params = _select(model, names)
    total = _count(batches)
    was = model.training
    model.eval()
    grads = params.zeros_like()
    loss_total = 0.0
    try:
        with _FrozenOthers(model, set(params.names)):
            for b in batches:
                ls, _, _ = loss_fn(model, b)
                loss = ls / total
                g = torch.autograd.grad(loss, list(params.tensors), create_graph=create_graph, allow_unused=True)
                for acc, gi in zip(grads.tensors, g):
                    if gi is not None:
                        acc.add_(gi.detach())
                loss_total += float(loss.detach())
    finally:
        model.train(was)
    if not math.isfinite(loss_total):
        raise NonFiniteError(f"the loss is {loss_total} at this point (a diverged run?): its gradient, sharpness and "
                             "curvature are undefined")
    return loss_total, grads


def _count(batches: Sequence[Batch]) -> int:
    n = sum(int(b["labels"].shape[0]) for b in batches)
    if n == 0:
        raise ValueError("no examples")
    return n


class HessianOperator(Operator):
    """v ↦ H v, H = ∇² of the mean loss over ``batches`` w.r.t. the parameters ``names`` (default: all).

    ``reuse_graph=True`` builds the first-order gradient graph once and keeps it (as PyHessian does for a single
    batch): each matvec is then one backward instead of forward + two backwards, at the price of holding every
    batch's graph in memory. The parameters must not change while the operator is in use.

    ``method="finite_difference"``: Hv ≈ (g(θ+hv) − g(θ−hv)) / 2h from two plain gradients per batch (no double
    backward, so SDPA attention works, and nothing is kept between products); ``fd_step`` is h for a unit v
    (default ``FD_STEP_FACTOR·ε^(1/3)``), scaled by 1/‖v‖. The parameters are moved for the two gradients and
    written back from a copy taken when the operator is built (so the operator holds one copy of the group).
    """

    def __init__(self, model: nn.Module, batches: Sequence[Batch], names: Iterable[str] | None = None,
                 loss_fn: LossFn = classification_loss, *, reuse_graph: bool = False, method: str = "autograd",
                 fd_step: float | None = None) -> None:
        super().__init__()
        if method not in FD_METHODS:
            raise ValueError(f"method must be one of {FD_METHODS}, got {method!r}")
        if method == "finite_difference" and reuse_graph:
            raise ValueError("reuse_graph applies to the autograd product only: a finite-difference product keeps no "
                             "graph; drop reuse_graph=True")
        if fd_step is not None and not fd_step > 0:
            raise ValueError(f"fd_step must be positive, got {fd_step}")
        self.model, self.batches, self.loss_fn = model, list(batches), loss_fn
        self.reuse_graph = reuse_graph
        self.method = method
        self._grads: list[tuple[Tensor | None, ...]] | None = None
        self.params = _select(model, names)
        self.size = self.params.numel()
        self.dtype = self.params.tensors[0].dtype
        self.device = self.params.tensors[0].device
        self.total = _count(self.batches)
        self.fd_step = float(fd_step) if fd_step is not None else FD_STEP_FACTOR * torch.finfo(self.dtype).eps ** (1 / 3)
        self._theta = get_params(model, self.params.names) if method == "finite_difference" else None

    @property
    def names(self) -> tuple[str, ...]:
        return self.params.names

    def _batch_grads(self) -> Iterator[tuple[Tensor | None, ...]]:
        params = list(self.params.tensors)
        if self._grads is not None:
            yield from self._grads
            return
        kept = []
        for b in self.batches:
            ls, _, _ = self.loss_fn(self.model, b)
            g = torch.autograd.grad(ls / self.total, params, create_graph=True, allow_unused=True)
            if self.reuse_graph:
                kept.append(g)
            yield g
        if self.reuse_graph:
            self._grads = kept

    def hvp(self, v: ParamVector) -> ParamVector:
        """H v on structured vectors (batch by batch, so memory is one batch's double-backward graph)."""
        v = v.to(device=self.device)  # a vector from the host (or a file) meets the parameters' device here
        if self.method == "finite_difference":
            return self._fd_hvp(v)
        params = list(self.params.tensors)
        acc: list[Tensor | None] = [None] * len(params)
        was = self.model.training
        self.model.eval()
        try:
            with _FrozenOthers(self.model, set(self.params.names)):
                for g in self._batch_grads():
                    pairs = [(gi, vi) for gi, vi in zip(g, v.tensors) if gi is not None and gi.requires_grad]
                    if not pairs:
                        continue
                    # H v = ∂(gᵀv)/∂θ, computed as a vector-Jacobian product of g with v (grad_outputs) rather than
                    # by building the scalar gᵀv: no extra graph nodes per product.
                    hv = torch.autograd.grad([gi for gi, _ in pairs], params, grad_outputs=[vi for _, vi in pairs],
                                             allow_unused=True, retain_graph=self.reuse_graph)
                    # the first batch's tensors are the accumulators (no zero-filled copy of the group per product)
                    for i, h in enumerate(hv):
                        if h is not None:
                            acc[i] = h if acc[i] is None else acc[i].add_(h)
        finally:
            self.model.train(was)
        return ParamVector(self.params.names, tuple(torch.zeros_like(p) if a is None else a
                                                    for p, a in zip(params, acc)))

    def _fd_hvp(self, v: ParamVector) -> ParamVector:
        norm = v.norm()
        if norm == 0.0:
            return self.params.zeros_like()
        h = self.fd_step / norm
        theta = self._theta
        assert theta is not None
        try:
            set_params(self.model, theta, [(h, v)])
            _, gp = loss_and_grad(self.model, self.batches, self.params.names, self.loss_fn)
            set_params(self.model, theta, [(-h, v)])
            _, gm = loss_and_grad(self.model, self.batches, self.params.names, self.loss_fn)
        finally:
            set_params(self.model, theta)
        return gp.axpy_(-1.0, gm).scale_(0.5 / h)

    def _matvec(self, v: Tensor) -> Tensor:
        return self.hvp(self.params.unflatten(v)).flatten()
