"""What one Hessian-vector product costs, ours against PyHessian's, and the finite-difference product's error and
speed against the exact one -- the per-product half of the curvature benchmark (:mod:`repro.bench.curvature`).

Every figure is the best (and the median) of ``repeats`` products measured after one untimed warm-up product, with
the contestants interleaved (ours, theirs, ours, theirs, ...), so neither pays the process's one-time costs (the
first forward pass allocates and initialises the CPU kernels: on this project's 2-core machine that made the first
timed solver look 3x slower per product) nor a neighbour's load burst alone. The best of identical runs is the
least disturbed one on a shared machine (other processes only add time).
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from repro.curvature import HessianOperator, lanczos
from repro.landscape.params import ParamVector


class HFWrapper(nn.Module):
    """PyHessian calls ``model(inputs)`` with one tensor: stack ids/mask/types and unpack here."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(input_ids=x[0], attention_mask=x[1], token_type_ids=x[2]).logits


@contextlib.contextmanager
def pyhessian_session(model: nn.Module, names: Sequence[str]) -> Iterator[Any]:
    """The ``pyhessian`` module with only ``names`` requiring grad; requires_grad flags and the ``.grad`` graphs
    PyHessian leaves behind are restored/cleared afterwards, and its reference-cycle warning is silenced. Raises
    ImportError when PyHessian is not installed."""
    import pyhessian  # noqa: F401  (ImportError here, before anything is changed)

    keep = set(names)
    saved = [(p, p.requires_grad) for p in model.parameters()]
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield sys.modules["pyhessian.hessian"]
    finally:
        for p, r in saved:
            p.requires_grad_(r)
            p.grad = None


def stacked_inputs(batch: dict[str, Tensor]) -> Tensor:
    return torch.stack([batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]])


def seconds_of(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t)
    return out


def _sync(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def _unit(size: int, seed: int, op: HessianOperator) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(size, generator=g, dtype=torch.float64)
    return (v / v.norm()).to(device=op.device, dtype=op.dtype)


def per_product_costs(model: nn.Module, batch: dict[str, Tensor], names: Sequence[str], *, repeats: int, seed: int,
                      device: torch.device) -> dict[str, Any]:
    """Seconds per product on the same kept gradient graph type (one batch, ``reuse_graph=True``, as PyHessian):
    our :meth:`Operator.matvec` (flat vector in and out, NaN check) against PyHessian's ``hessian_vector_product``,
    interleaved. Also the first product of each, which builds the graph (forward + backward with create_graph)."""
    sync = _sync(device)
    op = HessianOperator(model, [batch], names, reuse_graph=True)
    v = _unit(op.size, seed, op)
    first = seconds_of(lambda: op.matvec(v), 1, sync)[0]
    result: dict[str, Any] = {"ours_first_product_s": first}
    try:
        ctx = pyhessian_session(model, names)
        mod = ctx.__enter__()
    except ImportError as e:
        result["pyhessian"] = {"status": "unavailable", "reason": f"{type(e).__name__}: {e}"}
        result["ours_s"] = min(seconds_of(lambda: op.matvec(v), repeats, sync))
        return result
    try:
        t = time.perf_counter()
        hc = mod.hessian(HFWrapper(model), nn.CrossEntropyLoss(), data=(stacked_inputs(batch), batch["labels"]),
                         cuda=device.type == "cuda")
        vl = list(op.params.unflatten(v).tensors)
        mod.hessian_vector_product(hc.gradsH, hc.params, vl)
        sync()
        result["pyhessian_first_product_s"] = time.perf_counter() - t
        ours, theirs = [], []
        for _ in range(repeats):
            ours += seconds_of(lambda: op.matvec(v), 1, sync)
            theirs += seconds_of(lambda: mod.hessian_vector_product(hc.gradsH, hc.params, vl), 1, sync)
    finally:
        ctx.__exit__(None, None, None)
    result.update({"ours_s": min(ours), "pyhessian_s": min(theirs), "ours_all_s": ours, "pyhessian_all_s": theirs,
                   "pyhessian_over_ours": min(theirs) / min(ours),
                   "pyhessian_over_ours_median": statistics.median(theirs) / statistics.median(ours)})
    return result


def finite_difference_comparison(model: nn.Module, sdpa_model: nn.Module | None, batch: dict[str, Tensor],
                                 names: Sequence[str], top_vector: Tensor | None, *, repeats: int, tol: float,
                                 max_iter: int, seed: int, device: torch.device) -> dict[str, Any]:
    """The finite-difference product (:class:`HessianOperator` with ``method="finite_difference"``, default step)
    against the exact one: relative error ‖Hv_fd − Hv‖/‖Hv‖ along a random unit vector and along the top
    eigenvector (where the third derivative of the gradient is largest), seconds per product for the exact product
    with a kept graph, the exact product building its graph each time (``reuse_graph=False``), and the
    finite-difference product with eager and with SDPA attention; and λ_max by Lanczos on the FD operator (SDPA)
    against the exact λ_max, both with the eigenvalue-change rule at ``tol``."""
    sync = _sync(device)
    kept = HessianOperator(model, [batch], names, reuse_graph=True)
    fresh = HessianOperator(model, [batch], names)
    # a copy: moving the parameters for the finite differences would invalidate the kept graph of ``model``
    fd_eager = HessianOperator(copy.deepcopy(model), [batch], names, method="finite_difference")
    ops: dict[str, HessianOperator] = {"exact_kept_graph": kept, "exact_fresh_graph": fresh,
                                       "finite_difference_eager": fd_eager}
    if sdpa_model is not None:
        ops["finite_difference_sdpa"] = HessianOperator(sdpa_model, [batch], names, method="finite_difference")
    v = _unit(kept.size, seed + 1, kept)
    out: dict[str, Any] = {"fd_step": fd_eager.fd_step, "dtype": str(kept.dtype).replace("torch.", "")}
    exact_random = kept.matvec(v)
    directions = {"random": (v, exact_random)}
    if top_vector is not None:
        tv = top_vector.to(device=kept.device, dtype=kept.dtype)
        tv = tv / tv.norm()
        directions["top_eigenvector"] = (tv, kept.matvec(tv))
    errors: dict[str, dict[str, float]] = {}
    for label in [k for k in ops if k.startswith("finite")]:
        errors[label] = {d: float((ops[label].matvec(x) - hx).double().norm() / hx.double().norm())
                         for d, (x, hx) in directions.items()}
    out["relative_error"] = errors
    times: dict[str, list[float]] = {k: [] for k in ops}
    for _ in range(repeats):  # interleaved, after the warm-up products above
        for label, op in ops.items():
            times[label] += seconds_of(lambda op=op: op.matvec(v), 1, sync)
    out["seconds_per_product"] = {k: min(t) for k, t in times.items()}
    out["seconds_per_product_median"] = {k: statistics.median(t) for k, t in times.items()}
    out["seconds_per_product_all"] = times
    base = out["seconds_per_product"]["exact_kept_graph"]
    out["speed_over_exact_kept_graph"] = {k: base / t for k, t in out["seconds_per_product"].items()}
    fd_op = ops.get("finite_difference_sdpa", fd_eager)
    exact = lanczos(HessianOperator(model, [batch], names, reuse_graph=True), 1, tol=tol, max_iter=max_iter,
                    seed=seed, which="LM", criterion="eigenvalue_change")
    t = time.perf_counter()
    approx = lanczos(fd_op, 1, tol=tol, max_iter=max_iter, seed=seed, which="LM", criterion="eigenvalue_change")
    sync()
    out["lambda_max"] = {"operator": "finite_difference_sdpa" if "finite_difference_sdpa" in ops else
                         "finite_difference_eager", "exact": exact.eigenvalues[0],
                         "finite_difference": approx.eigenvalues[0],
                         "relative_difference": abs(approx.eigenvalues[0] - exact.eigenvalues[0])
                         / abs(exact.eigenvalues[0]),
                         "hvps": approx.num_matvecs, "seconds": time.perf_counter() - t,
                         "converged": approx.converged}
    return out


def batched_products_comparison(model: nn.Module, batches: Sequence[dict[str, Tensor]], names: Sequence[str] | None,
                                *, ks: Sequence[int] = (1, 2, 4, 8), repeats: int = 3, seed: int = 0,
                                reuse_graph: bool = True, device: torch.device | None = None) -> dict[str, Any]:
    """Several vectors per pass (:meth:`HessianOperator.matmat`, the second backward vmapped over k vectors) against
    k single products (:meth:`~repro.curvature.base.Operator.matvec` in a loop), on the same operator with kept
    graphs (``reuse_graph=True``, after one untimed product that builds them): seconds per product (time of the k
    products / k, best and median of ``repeats``, interleaved looped/batched) at each k, the speed-up, the largest
    relative difference ‖(HV)_i − Hv_i‖/‖Hv_i‖ over the k rows, whether the batched path ran (``batched_available``;
    ``batched_fallback`` says why not), and the products counted (k per call either way). The SLQ and Hutchinson
    estimators' ``batch_vectors`` default is chosen from this measurement."""
    op = HessianOperator(model, batches, names, reuse_graph=reuse_graph)
    dev = device if device is not None else op.device
    sync = _sync(dev)
    g = torch.Generator().manual_seed(int(seed))
    op.matvec(_unit(op.size, seed, op))  # builds (and keeps) the graphs, warms the kernels up
    per_k: dict[str, Any] = {}
    for k in ks:
        V = torch.randn(int(k), op.size, generator=g, dtype=torch.float64)
        V = (V / V.norm(dim=1, keepdim=True)).to(device=op.device, dtype=op.dtype)
        start = op.num_matvecs
        looped_v = torch.stack([op.matvec(V[i]) for i in range(int(k))])
        batched_v = op.matmat(V)  # untimed warm-up of the batched path at this k (and the check)
        counted = op.num_matvecs - start
        rel = max(float((batched_v[i] - looped_v[i]).double().norm() / looped_v[i].double().norm())
                  for i in range(int(k)))
        times: dict[str, list[float]] = {"looped": [], "batched": []}
        for _ in range(repeats):
            times["looped"] += seconds_of(lambda: [op.matvec(V[i]) for i in range(int(k))], 1, sync)
            times["batched"] += seconds_of(lambda: op.matmat(V), 1, sync)
        best = {m: min(t) / k for m, t in times.items()}
        per_k[str(k)] = {
            "seconds_per_product": best,
            "seconds_per_product_median": {m: statistics.median(t) / k for m, t in times.items()},
            "speedup_batched_over_looped": best["looped"] / best["batched"],
            "max_rel_difference": rel, "products_counted": counted, "products_expected": 2 * int(k),
        }
    out: dict[str, Any] = {
        "ks": [int(k) for k in ks], "per_k": per_k, "batched_available": op.batched,
        "batched_fallback": op.batched_fallback, "reuse_graph": reuse_graph, "num_params": op.size,
        "dtype": str(op.dtype).replace("torch.", ""), "device": str(op.device), "threads": torch.get_num_threads(),
        "batch_shapes": [list(b["input_ids"].shape) for b in batches],
        "max_rel_difference": max(v["max_rel_difference"] for v in per_k.values()) if per_k else 0.0,
    }
    op.close()
    return out


def rel_residuals(op: HessianOperator, vals: Sequence[float], vecs: Sequence[ParamVector]) -> list[float]:
    """‖Hv − λv‖/|λ| of each pair, recomputed with ``op`` for unit v (not counted or timed)."""
    out = []
    for lam, v in zip(vals, vecs):
        v = v * (1.0 / v.norm())
        r = op.hvp(v).axpy_(-lam, v)
        out.append(r.norm() / abs(lam) if lam else float("inf"))
    return out


def _no_grad_forward(model: nn.Module, batches: Sequence[dict[str, Tensor]]) -> None:
    from repro.landscape.evaluate import classification_loss

    with torch.no_grad():
        for b in batches:
            classification_loss(model, b)


def reuse_costs(model: nn.Module, batches: Sequence[dict[str, Tensor]], names: Sequence[str] | None, *,
                repeats: int, seed: int, device: torch.device) -> dict[str, Any]:
    """What one exact product over several batches costs with each batch's first-order graph kept between products
    (``reuse_graph=True``) and rebuilt at every product (``reuse_graph=False``), in seconds and in
    *forward-equivalents*: seconds per product / seconds of one no-grad forward pass over the same batches (eval mode,
    the loss included) -- the unit of the cost model (:func:`repro.pipeline.jobs.analysis_cost`). Also the memory
    each kept graph holds (``HessianOperator.graph_bytes``: the storages autograd saves plus the gradient,
    parameters excluded), the first product with the graphs built, and that both give the same product.

    Best (and median) of ``repeats`` after one untimed warm-up of each, interleaved: forward, rebuilt, kept, ...
    """
    sync = _sync(device)
    model.eval()
    fresh = HessianOperator(model, batches, names)
    kept = HessianOperator(model, batches, names, reuse_graph=True)
    v = _unit(fresh.size, seed, fresh)
    _no_grad_forward(model, batches)
    fresh_v = fresh.matvec(v)
    first = seconds_of(lambda: kept.matvec(v), 1, sync)[0]
    kept_v = kept.matvec(v)
    times: dict[str, list[float]] = {"no_grad_forward": [], "rebuilt_graphs": [], "kept_graphs": []}
    for _ in range(repeats):
        times["no_grad_forward"] += seconds_of(lambda: _no_grad_forward(model, batches), 1, sync)
        times["rebuilt_graphs"] += seconds_of(lambda: fresh.matvec(v), 1, sync)
        times["kept_graphs"] += seconds_of(lambda: kept.matvec(v), 1, sync)
    best = {k: min(t) for k, t in times.items()}
    med = {k: statistics.median(t) for k, t in times.items()}
    fwd, fwd_med = best.pop("no_grad_forward"), med.pop("no_grad_forward")
    mib = [b / 2**20 for b in kept.graph_bytes if b is not None]
    shapes = [list(b["input_ids"].shape) for b in batches]
    out: dict[str, Any] = {
        "batches": len(batches), "batch_shapes": shapes, "examples": kept.total, "num_params": kept.size,
        "dtype": str(kept.dtype).replace("torch.", ""),
        "seconds_no_grad_forward": fwd, "seconds_per_product": best, "seconds_per_product_median": med,
        "seconds_all": times, "seconds_first_product_kept": first,
        "forward_equivalents_per_product": {k: t / fwd for k, t in best.items()},
        "forward_equivalents_per_product_median": {k: t / fwd_med for k, t in med.items()},
        "speedup_kept_over_rebuilt": best["rebuilt_graphs"] / best["kept_graphs"],
        "graph_mib_per_batch": mib, "graph_mib_total": sum(mib),
        "graph_mib_per_1k_tokens": [m / (n * L / 1000) for m, (n, L) in zip(mib, shapes)],
        "products_max_rel_difference": float((kept_v - fresh_v).double().norm() / fresh_v.double().norm()),
    }
    kept.close()
    return out
