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
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

from repro import progress_sink
from repro.curvature.base import FrozenOthers, Operator, count_examples, select_params
from repro.errors import NonFiniteError
from repro.landscape.evaluate import Batch, LossFn, classification_loss
from repro.landscape.params import ParamVector, get_params, set_params

__all__ = ["FD_METHODS", "FD_STEP_FACTOR", "HessianOperator", "LambdaOperator", "Operator", "loss_and_grad"]

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


def loss_and_grad(
    model: nn.Module, batches: Sequence[Batch], names: Iterable[str] | None = None,
    loss_fn: LossFn = classification_loss, *, create_graph: bool = False,
) -> tuple[float, ParamVector]:
    """Example-weighted mean loss and its gradient w.r.t. the selected parameters (eval mode)."""
    params = select_params(model, names)
    total = count_examples(batches)
    was = model.training
    model.eval()
    grads = params.zeros_like()
    loss_total = 0.0
    try:
        with FrozenOthers(model, set(params.names)):
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


REUSE_GRAPH_MODES = (False, True, "auto")
# reuse_graph="auto" without a graph_memory_budget: keep graphs up to this fraction of the memory free on the
# operator's device when its first graph is built (CUDA: torch.cuda.mem_get_info; CPU: MemAvailable). The rest is
# headroom for the products themselves (a double backward over one batch) and for whatever else the process holds.
GRAPH_BUDGET_FRACTION = 0.5


def free_memory_bytes(device: torch.device) -> int:
    """Bytes free on ``device`` now: CUDA's free memory, or the host's available memory for the CPU (0 where it
    cannot be read, e.g. other accelerators: ``reuse_graph="auto"`` then keeps nothing unless given a budget)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def _is_vmap_error(e: RuntimeError) -> bool:
    """Whether ``e`` is vmap refusing an op (a missing batching rule, data-dependent control flow, in-place writes
    into an unbatched tensor, ...) rather than a failure a single product would share."""
    msg = str(e).lower()
    return "vmap" in msg or "batching rule" in msg or "batched tensor" in msg or "batchedtensor" in msg


class _SavedBytes:
    """Context: bytes of the distinct storages autograd saves while it is active (the memory a kept graph holds),
    not counting storages in ``exclude`` (the parameters, which the model holds anyway)."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude, self.seen = exclude, {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: Tensor) -> Tensor:
        self.add(t)
        return t

    def add(self, t: Tensor) -> None:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in self.exclude and ptr not in self.seen:
            self.seen[ptr] = int(st.nbytes())

    @property
    def total(self) -> int:
        return sum(self.seen.values())

    def __enter__(self) -> _SavedBytes:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)


class HessianOperator(Operator):
    """v ↦ H v, H = ∇² of the mean loss over ``batches`` w.r.t. the parameters ``names`` (default: all).

    Kept graphs (``reuse_graph``). A product is, per batch, a forward and a backward with ``create_graph`` (the
    first-order gradient graph) and a second backward through it. ``reuse_graph=True`` keeps every batch's graph
    after its first product (as PyHessian does for its single batch), so each later product is one backward per batch
    instead of forward + two backwards -- for a whole solve (Lanczos, SLQ, Hutchinson/Hutch++, a scaled operator
    wrapping this one), over any number of batches. ``reuse_graph="auto"`` keeps them while their measured memory
    fits ``graph_memory_budget`` bytes (default :data:`GRAPH_BUDGET_FRACTION` of the device's free memory when the
    first graph is built) and rebuilds the remaining batches' graphs at every product, batch by batch. ``False``
    (default) keeps nothing. The products are the same in every mode (the same operations on the same tensors).

    Memory: ``graph_bytes[i]`` is what batch i's kept graph holds, measured when it is first built -- the distinct
    storages autograd saves for the double backward (activations of the forward, tensors of the first backward) plus
    the gradient itself, parameters not counted. It is about the gradient (4 bytes per parameter in float32) plus a
    share linear in the batch's padded tokens. Measured on the standard profile's verdict batches (SST-2, 256
    examples in 4 length-sorted batches of 64 × 53/18/10/6 tokens; float32, eager attention, all parameters; CPU,
    2026-12-07): tiny-minilm (15.6 M parameters) 442/179/125/98 MiB per batch, 844 MiB in all (60 MiB gradient +
    ~0.11 MiB per token); minilm-l6 (22.7 M) 1204/433/275/199 MiB, 2.1 GiB in all (87 MiB + ~0.33 MiB per token).
    ``repro bench curvature`` records it for its model as ``reuse.graph_mib_per_batch``.

    Kept graphs live until :meth:`close` (or the end of a ``with`` block), which the instruments call when done;
    the operator stays usable after it (the next product rebuilds). The parameters must not be changed in place while
    graphs are kept; if they are (their autograd version counters moved, e.g. by :func:`set_params`), the next
    product drops the kept graphs and rebuilds them at the new point, as a product without reuse would.

    ``method="finite_difference"``: Hv ≈ (g(θ+hv) − g(θ−hv)) / 2h from two plain gradients per batch (no double
    backward, so SDPA attention works, and nothing is kept between products; ``reuse_graph="auto"`` keeps nothing);
    ``fd_step`` is h for a unit v (default ``FD_STEP_FACTOR·ε^(1/3)``), scaled by 1/‖v‖. The parameters are moved
    for the two gradients and written back from a copy taken when the operator is built (so the operator holds one
    copy of the group).

    Several vectors at once (:meth:`~repro.curvature.base.Operator.matmat`, rows of a ``(k, size)`` tensor): one
    pass over each batch's gradient graph (kept, or built once for the k rows) serves all k, the second backward
    vmapped over them (``torch.autograd.grad(..., is_grads_batched=True)``); counted as k products. Each row is the
    single product up to rounding (float64: ~1e-16 relative on a tiny BERT with eager attention). Memory of the
    second backward grows k-fold. ``method="finite_difference"`` loops over single products; so does the exact
    product, for good, once vmap refuses an op of the model's double backward (``batched_fallback`` says why,
    ``batched`` is False). On the CPU it was not faster per vector
    (:func:`repro.bench.hvp.batched_products_comparison`), so the estimators default to one vector at a time.
    """

    def __init__(self, model: nn.Module, batches: Sequence[Batch], names: Iterable[str] | None = None,
                 loss_fn: LossFn = classification_loss, *, reuse_graph: bool | str = False,
                 graph_memory_budget: int | None = None, method: str = "autograd",
                 fd_step: float | None = None) -> None:
        super().__init__()
        if method not in FD_METHODS:
            raise ValueError(f"method must be one of {FD_METHODS}, got {method!r}")
        if not any(reuse_graph is m or (isinstance(m, str) and reuse_graph == m) for m in REUSE_GRAPH_MODES):
            raise ValueError(f"reuse_graph must be one of {REUSE_GRAPH_MODES}, got {reuse_graph!r}")
        if method == "finite_difference" and reuse_graph is True:
            raise ValueError("reuse_graph applies to the autograd product only: a finite-difference product keeps no "
                             "graph; drop reuse_graph=True")
        if graph_memory_budget is not None and not graph_memory_budget >= 0:
            raise ValueError(f"graph_memory_budget must be a number of bytes >= 0, got {graph_memory_budget}")
        if fd_step is not None and not fd_step > 0:
            raise ValueError(f"fd_step must be positive, got {fd_step}")
        attention = getattr(getattr(model, "config", None), "_attn_implementation", None)
        if method == "autograd" and attention not in (None, "eager"):
            raise ValueError(
                f"the exact Hessian-vector product needs eager attention (a double backward), but the model runs "
                f"{attention!r}: load it with attn_implementation='eager', wrap the solve in "
                f"repro.models.attention_implementation(model, 'eager'), or use method='finite_difference'")
        self.model, self.batches, self.loss_fn = model, list(batches), loss_fn
        self.reuse_graph = reuse_graph
        self.graph_memory_budget = graph_memory_budget
        self.method = method
        self._kept: list[tuple[Tensor | None, ...] | None] = [None] * len(self.batches)
        self.graph_bytes: list[int | None] = [None] * len(self.batches)  # measured at each batch's first build
        self.graph_builds = 0  # forward + create_graph backward passes so far (one per batch and product unkept)
        self._budget: int | None = None
        self._versions: tuple[int, ...] | None = None
        self.params = select_params(model, names)
        self.size = self.params.numel()
        self.dtype = self.params.tensors[0].dtype
        self.device = self.params.tensors[0].device
        self.total = count_examples(self.batches)
        self.fd_step = float(fd_step) if fd_step is not None else FD_STEP_FACTOR * torch.finfo(self.dtype).eps ** (1 / 3)
        self._theta = get_params(model, self.params.names) if method == "finite_difference" else None
        # why :meth:`matmat` loops over single products instead of one batched pass per batch (None: it batches)
        self.batched_fallback: str | None = (
            "method='finite_difference': two plain gradients per product, no second backward to batch"
            if method == "finite_difference" else None)

    @property
    def names(self) -> tuple[str, ...]:
        return self.params.names

    @property
    def batched(self) -> bool:
        """Whether :meth:`matmat` serves several vectors from one pass over each batch (no fallback so far)."""
        return self.batched_fallback is None

    @property
    def kept_batches(self) -> int:
        """How many batches' graphs are kept now."""
        return sum(g is not None for g in self._kept)

    @property
    def kept_graph_bytes(self) -> int:
        """Measured bytes of the graphs kept now."""
        return sum(int(b or 0) for g, b in zip(self._kept, self.graph_bytes) if g is not None)

    def close(self) -> None:
        """Release the kept graphs (the measured sizes stay); a later product rebuilds what it keeps."""
        self._kept = [None] * len(self.batches)
        self._budget = None
        self._versions = None

    def _param_versions(self) -> tuple[int, ...]:
        return tuple(p._version for p in self.model.parameters())

    def _keep(self, i: int) -> bool:
        if self.reuse_graph is True:
            return True
        if self.reuse_graph != "auto" or self.method != "autograd":
            return False
        if self._budget is None:
            self._budget = (int(self.graph_memory_budget) if self.graph_memory_budget is not None
                            else int(GRAPH_BUDGET_FRACTION * free_memory_bytes(self.device)))
        return self.kept_graph_bytes + int(self.graph_bytes[i] or 0) <= self._budget

    def _batch_grads(self) -> Iterator[tuple[tuple[Tensor | None, ...], bool]]:
        """Per batch: its gradient with ``create_graph`` (kept or built now) and whether its graph is kept (then the
        product must retain it)."""
        if self._versions is not None and self._versions != self._param_versions():
            self.close()  # the parameters moved under the kept graphs: rebuild at the new point
        params = list(self.params.tensors)
        measure = self.reuse_graph is not False and self.method == "autograd"
        for i, b in enumerate(self.batches):
            kept = self._kept[i]
            if kept is not None:
                yield kept, True
                continue
            self.graph_builds += 1
            if measure and self.graph_bytes[i] is None:
                with _SavedBytes({p.untyped_storage().data_ptr() for p in self.model.parameters()}) as saved:
                    ls, _, _ = self.loss_fn(self.model, b)
                    g = torch.autograd.grad(ls / self.total, params, create_graph=True, allow_unused=True)
                for gi in g:
                    if gi is not None:
                        saved.add(gi)
                self.graph_bytes[i] = saved.total
            else:
                ls, _, _ = self.loss_fn(self.model, b)
                g = torch.autograd.grad(ls / self.total, params, create_graph=True, allow_unused=True)
            keep = measure and self._keep(i)
            if keep:
                if self._versions is None:
                    self._versions = self._param_versions()
                self._kept[i] = g
            yield g, keep

    def hvp(self, v: ParamVector) -> ParamVector:
        """H v on structured vectors (batch by batch: besides the kept graphs, memory is one batch's double
        backward)."""
        v = v.to(device=self.device)  # a vector from the host (or a file) meets the parameters' device here
        progress_sink.hvps(self.total)
        if self.method == "finite_difference":
            return self._fd_hvp(v)
        params = list(self.params.tensors)
        acc = self._second_backward(list(v.tensors))
        return ParamVector(self.params.names, tuple(torch.zeros_like(p) if a is None else a
                                                    for p, a in zip(params, acc)))

    def _second_backward(self, outputs: list[Tensor], *, batched: bool = False) -> list[Tensor | None]:
        """Σ over the batches of the vector-Jacobian product of each batch's gradient graph with ``outputs`` (one per
        parameter; with ``batched``, each a stack of k rows, vmapped by ``is_grads_batched``): per parameter the
        summed product, None where no batch reached it."""
        params = list(self.params.tensors)
        acc: list[Tensor | None] = [None] * len(params)
        was = self.model.training
        self.model.eval()
        try:
            with FrozenOthers(self.model, set(self.params.names)):
                for g, keep in self._batch_grads():
                    pairs = [(gi, vi) for gi, vi in zip(g, outputs) if gi is not None and gi.requires_grad]
                    if not pairs:
                        continue
                    # H v = ∂(gᵀv)/∂θ, computed as a vector-Jacobian product of g with v (grad_outputs) rather than
                    # by building the scalar gᵀv: no extra graph nodes per product.
                    hv = torch.autograd.grad([gi for gi, _ in pairs], params, grad_outputs=[vi for _, vi in pairs],
                                             allow_unused=True, retain_graph=keep, is_grads_batched=batched)
                    # the first batch's tensors are the accumulators (no zero-filled copy of the group per product)
                    for i, h in enumerate(hv):
                        if h is not None:
                            acc[i] = h if acc[i] is None else acc[i].add_(h)
        finally:
            self.model.train(was)
        return acc

    def _matmat(self, V: Tensor) -> Tensor:
        """The rows' products from one pass over each batch: the second backward through each batch's gradient graph
        (kept or built once for all k rows) is vmapped over the k rows (``is_grads_batched``). Falls back to k single
        products for the finite-difference method, and for good (``batched_fallback`` says why) the first time vmap
        refuses an op of the model's double backward."""
        if V.shape[0] == 1 or self.batched_fallback is not None:
            return super()._matmat(V)
        try:
            return self._batched_hvp(V)
        except RuntimeError as e:
            if isinstance(e, torch.OutOfMemoryError) or not _is_vmap_error(e):
                raise
            # kept graphs were retained (retain_graph=True) and survive; a graph built for this call is dropped
            self.batched_fallback = f"vmap over the second backward failed: {type(e).__name__}: {e}"[:500]
            return super()._matmat(V)

    def _batched_hvp(self, V: Tensor) -> Tensor:
        k = int(V.shape[0])
        params = list(self.params.tensors)
        rows, i = [], 0  # each parameter's k slices of V, shaped (k, *p.shape)
        for p in params:
            rows.append(V[:, i : i + p.numel()].reshape(k, *p.shape))
            i += p.numel()
        acc = self._second_backward(rows, batched=True)
        progress_sink.hvps(self.total * k)
        return torch.cat([torch.zeros((k, p.numel()), dtype=self.dtype, device=self.device) if a is None
                          else a.reshape(k, -1) for p, a in zip(params, acc)], dim=1)

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
