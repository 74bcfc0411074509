"""The current peers of ``repro bench curvature`` (issue 42) besides PyHessian: curvlinops' Hessian operator with
SciPy's ARPACK (``eigsh``), and hessian-eigenthings' Lanczos. Each runs on the same model, batch, parameter group and
tolerance number as ours; a peer that is not installed is recorded as ``"not installed"``, one that raises as
``"failed: <reason>"``, and the benchmark goes on.

* ``curvlinops`` (curvlinops-for-pytorch 3.0.1): ``HessianLinearOperator(model_func, CrossEntropyLoss(), params,
  [(inputs, labels)], batch_size_fn=..., num_data=..., check_deterministic=False).to_scipy()``, then
  ``scipy.sparse.linalg.eigsh(A, k, which="LM", tol=tol, v0=v0, maxiter=max_iter)`` -- ARPACK's stopping rule (Ritz
  value accurate to a relative ``tol``; defaults otherwise, e.g. ``ncv = max(2k+1, 20)``). ``which="LM"`` (largest
  magnitude) as ours and PyHessian: on a small batch the largest-magnitude eigenvalue can be negative, and ``"LA"``
  would then find a different eigenvalue than the one compared. Its product is
  forward-over-reverse (``torch.func.jvp`` of ``jacrev``); products are counted per vector by wrapping the SciPy
  operator's ``matvec``. Known: torch's second-order forward-mode derivative of ``layer_norm`` is wrong
  (pytorch/pytorch#196700, open; torch 2.13), so its product is wrong in the rows of LayerNorm weights whenever they
  are in the group -- ``peer_products`` records each peer's product against ours along one random vector.
* ``hessian_eigenthings`` (hessian-eigenthings 1.0.0a5): ``HessianOperator(model, [batch], loss_fn,
  param_filter=...)`` (double backward) and ``lanczos(op, k=k, max_iter=m, tol=tol, which="LM", seed=seed,
  reorthogonalize=True)``. Its Lanczos runs a fixed number of steps ``m`` and only reports which Ritz pairs pass its
  residual test ``|β_m s_m,i| < tol·|λ_i|``: the benchmark gives it the smallest ``m`` at which all k pass, found by
  one untimed probe of ``max_iter`` steps (``lanczos_tridiagonal``) from the same start vector -- an oracle, the most
  favourable step count it could be given.

Both are timed with their operator built inside the timing (as ours), with only the group requiring grad (as for
PyHessian).
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from repro.bench.common import timed
from repro.landscape.evaluate import classification_logits, model_inputs

# peer name -> the module it is imported as (the PyPI distribution in brackets in the docs above)
PEER_MODULES = {"curvlinops": "curvlinops", "hessian_eigenthings": "hessian_eigenthings"}
# the stopping rule each peer's result is compared with ours under (ours_lanczos_residual_rule for both)
PEER_RULES = {"curvlinops": "residual", "hessian_eigenthings": "residual"}


def import_peer(name: str) -> Any:
    """The peer's module; ImportError when it is not installed. linear_operator (a curvlinops dependency) calls the
    deprecated ``torch.jit.script`` at import under torch 2.13: that one warning is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
        return importlib.import_module(PEER_MODULES[name])


@contextlib.contextmanager
def only_group_requires_grad(model: nn.Module, names: Sequence[str]) -> Iterator[None]:
    keep = set(names)
    saved = [(p, p.requires_grad) for p in model.parameters()]
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
    try:
        with warnings.catch_warnings():  # forward-mode AD loads its decompositions via torch.jit.script (torch 2.13)
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated",
                                    category=DeprecationWarning)
            yield
    finally:
        for p, r in saved:
            p.requires_grad_(r)
            p.grad = None


class DictInputModel(nn.Module):
    """curvlinops calls ``model_func(X)`` with one input: here X is the batch dict without labels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        return classification_logits(self.model, x)


def curvlinops_data(batches: Sequence[dict[str, Tensor]]) -> list[tuple[dict[str, Tensor], Tensor]]:
    """Our batch dicts as curvlinops' ``(X, y)`` pairs (X: the model inputs)."""
    return [(model_inputs(b), b["labels"]) for b in batches]


def curvlinops_hessian(cl: Any, model: nn.Module, batches: Sequence[dict[str, Tensor]], names: Sequence[str]) -> Any:
    """curvlinops' ``HessianLinearOperator`` of the example-weighted mean cross-entropy over ``batches`` w.r.t. the
    parameters ``names`` (model order, as ours)."""
    keep = set(names)
    params = [p for n, p in model.named_parameters() if n in keep]
    data = curvlinops_data(batches)
    return cl.HessianLinearOperator(DictInputModel(model), nn.CrossEntropyLoss(), params, data,
                                    batch_size_fn=lambda x: int(x["input_ids"].shape[0]),
                                    num_data=sum(int(y.shape[0]) for _, y in data), check_deterministic=False)


def _hf_mean_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    return nn.functional.cross_entropy(classification_logits(model, batch), batch["labels"])


def eigenthings_hessian(he: Any, model: nn.Module, batch: dict[str, Tensor], names: Sequence[str]) -> Any:
    keep = set(names)
    return he.HessianOperator(model, [batch], _hf_mean_loss, param_filter=lambda n, _p: n in keep)


def _counting(matvec: Callable[[Any], Any], count: dict[str, int]) -> Callable[[Any], Any]:
    def counted(x: Any) -> Any:
        shape = np.shape(x)
        count["n"] += 1 if len(shape) < 2 else int(shape[1])  # SciPy may pass a column (n, 1)
        return matvec(x)
    return counted


def _curvlinops(cl: Any, model: nn.Module, batch: dict[str, Tensor], names: Sequence[str], k: int, tol: float,
                max_iter: int, seed: int, device: torch.device, unflatten: Callable[[Tensor], Any],
                state: dict[str, Any]) -> dict[str, Any]:
    from scipy.sparse.linalg import LinearOperator, eigsh

    count = {"n": 0}
    size = sum(p.numel() for n, p in model.named_parameters() if n in set(names))
    v0 = np.random.default_rng(seed).standard_normal(size)

    def run() -> tuple[np.ndarray, np.ndarray]:
        sp = curvlinops_hessian(cl, model, [batch], names).to_scipy()
        a = LinearOperator(sp.shape, matvec=_counting(sp.matvec, count), dtype=sp.dtype)
        return eigsh(a, k=k, which="LM", tol=tol, v0=v0, maxiter=max_iter)
    (vals, vecs), secs = timed(run, device)
    order = np.argsort(np.abs(vals))[::-1]  # largest magnitude first, as ours
    return {"eigenvalues": [float(vals[i]) for i in order], "seconds": secs, "hvps": count["n"],
            "solver": "scipy.sparse.linalg.eigsh (ARPACK)", "which": "LM", "rule": PEER_RULES["curvlinops"],
            "vectors": [unflatten(torch.as_tensor(np.ascontiguousarray(vecs[:, i]))) for i in order]}


def _probe_steps(he: Any, op: Any, k: int, tol: float, max_iter: int, seed: int) -> tuple[int, bool]:
    """The fewest Lanczos steps m (k <= m <= max_iter) at which hessian-eigenthings' residual test passes for all of
    the k largest-magnitude Ritz values, from one run of max_iter steps (its steps do not depend on max_iter with
    reorthogonalization on); (max_iter, False) if none."""
    n = op.size
    max_iter = min(max_iter, n)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v0 = torch.randn(n, dtype=op.dtype, generator=gen).to(op.device)  # as its lanczos draws it
    td = he.lanczos_tridiagonal(op, v0, max_iter, reorthogonalize=True)
    alphas, betas = td.alphas.double().cpu(), td.betas.double().cpu()
    for m in range(k, td.iterations + 1):
        t = torch.diag(alphas[:m]) + torch.diag(betas[: m - 1], 1) + torch.diag(betas[: m - 1], -1)
        theta, s = torch.linalg.eigh(t)
        sel = torch.argsort(theta.abs(), descending=True)[:k]
        beta = float(betas[m - 1]) if m < td.iterations else float(td.last_beta)
        if bool(((s[-1, sel].abs() * beta) < tol * theta[sel].abs().clamp(min=1e-12)).all()):
            return m, True
    return max_iter, False


def _eigenthings(he: Any, model: nn.Module, batch: dict[str, Tensor], names: Sequence[str], k: int, tol: float,
                 max_iter: int, seed: int, device: torch.device, unflatten: Callable[[Tensor], Any],
                 state: dict[str, Any]) -> dict[str, Any]:
    key = f"eigenthings_steps_k{k}"
    if key not in state:  # untimed, once per k
        state[key] = _probe_steps(he, eigenthings_hessian(he, model, batch, names), k, tol, max_iter, seed)
    steps, found = state[key]
    count = {"n": 0}

    def run() -> Any:
        op = eigenthings_hessian(he, model, batch, names)
        op.matvec = _counting(op.matvec, count)  # its lanczos calls operator.matvec
        return he.lanczos(op, k=k, max_iter=steps, tol=tol, which="LM", seed=seed, reorthogonalize=True)
    r, secs = timed(run, device)
    return {"eigenvalues": [float(x) for x in r.eigenvalues], "seconds": secs, "hvps": count["n"],
            "solver": "hessian_eigenthings.lanczos", "which": "LM", "rule": PEER_RULES["hessian_eigenthings"],
            "steps": steps, "steps_found_by_probe": found,
            "converged": bool(r.converged.all()),
            "vectors": [unflatten(r.eigenvectors[i].detach()) for i in range(r.eigenvectors.shape[0])]}


_RUNNERS = {"curvlinops": _curvlinops, "hessian_eigenthings": _eigenthings}


def run_peer(name: str, model: nn.Module, batch: dict[str, Tensor], names: Sequence[str], k: int, tol: float,
             max_iter: int, seed: int, device: torch.device, unflatten: Callable[[Tensor], Any],
             state: dict[str, Any]) -> dict[str, Any]:
    """One timed top-``k`` solve by peer ``name``: ``{"status": "ok", "eigenvalues", "seconds", "hvps", "vectors",
    ...}``, or ``{"status": "not installed" | "failed: <reason>", "reason"}``. ``unflatten`` turns a flat vector
    (the group in model order) into the benchmark's ParamVector; ``state`` carries what is measured once per
    benchmark (hessian-eigenthings' step count)."""
    try:
        mod = import_peer(name)
    except ImportError as e:
        return {"status": "not installed", "reason": f"{type(e).__name__}: {e}"}
    try:
        with only_group_requires_grad(model, names):
            out = _RUNNERS[name](mod, model, batch, names, k, tol, max_iter, seed, device, unflatten, state)
    except Exception as e:  # noqa: BLE001 -- a peer's failure is recorded, the benchmark goes on
        reason = f"{type(e).__name__}: {e}"
        return {"status": f"failed: {reason}", "reason": reason}
    return {"status": "ok", **out}


def peer_product_differences(model: nn.Module, batch: dict[str, Tensor], names: Sequence[str], ours: Any,
                             seed: int) -> dict[str, Any]:
    """Each peer's Hessian-vector product against ours (``ours``: a HessianOperator on the same batch and group)
    along one seeded random unit vector: ‖H_peer v − H_ours v‖/‖H_ours v‖ (not timed)."""
    out: dict[str, Any] = {}
    v = ref = None
    for name in PEER_MODULES:
        try:
            mod = import_peer(name)
        except ImportError as e:
            out[name] = {"status": "not installed", "reason": f"{type(e).__name__}: {e}"}
            continue
        if v is None:  # ours, once, when some peer is installed
            g = torch.Generator().manual_seed(seed + 2)
            v = torch.randn(ours.size, generator=g, dtype=torch.float64)
            v = (v / v.norm()).to(device=ours.device, dtype=ours.dtype)
            ref = ours.matvec(v).double()
        try:
            with only_group_requires_grad(model, names):
                if name == "curvlinops":
                    hv = curvlinops_hessian(mod, model, [batch], names) @ v
                else:
                    hv = eigenthings_hessian(mod, model, batch, names).matvec(v)
            rel = float((hv.detach().double() - ref).norm() / ref.norm())
            out[name] = {"status": "ok", "relative_difference": rel}
        except Exception as e:  # noqa: BLE001
            reason = f"{type(e).__name__}: {e}"
            out[name] = {"status": f"failed: {reason}", "reason": reason}
    return out
