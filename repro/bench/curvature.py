"""Curvature benchmark: λ_max and the top-5 Hessian eigenvalues, ours (Lanczos) against PyHessian's power iteration.

Both run on the same model, batch and parameters, from one process, with the same tolerance number ``tol``. The
stopping rules differ -- ours stops on the relative residual estimate, PyHessian on the relative change of λ between
iterations -- so the honest comparison is time and HVP count *together with* the final relative residuals
‖Hv − λv‖/|λ| of both, all recomputed with our operator. Both reuse the gradient graph of the single batch (what
PyHessian does), so one HVP costs the same in both. PyHessian's global-RNG start vector is seeded inside a forked RNG.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from repro.bench.common import (
    torch_threads,
    collate,
    default_out_path,
    environment,
    pick_device,
    synthetic_examples,
    timed,
    to_device,
    unbatch,
)
from repro.curvature import HessianOperator, lanczos
from repro.landscape.params import ParamVector
from repro.models.groups import parameter_groups
from repro.storage import write_json


class _HFWrapper(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(input_ids=x[0], attention_mask=x[1], token_type_ids=x[2]).logits


def _rel_residuals(op: HessianOperator, vals: Sequence[float], vecs: Sequence[ParamVector]) -> list[float]:
    out = []
    for lam, v in zip(vals, vecs):
        v = v * (1.0 / v.norm())
        r = op.hvp(v).axpy_(-lam, v)
        out.append(r.norm() / abs(lam) if lam else float("inf"))
    return out


def _pyhessian(model: nn.Module, batch: dict[str, Tensor], names: Sequence[str], k: int, tol: float,
               max_iter: int, seed: int, device: torch.device) -> dict[str, Any]:
    try:
        from pyhessian import hessian
    except Exception as e:  # noqa: BLE001
        return {"status": "unavailable", "reason": f"{type(e).__name__}: {e}"}
    mod = sys.modules["pyhessian.hessian"]
    original = mod.hessian_vector_product
    count = {"n": 0}

    def counting(*a: Any, **kw: Any) -> Any:
        count["n"] += 1
        return original(*a, **kw)

    keep = set(names)
    saved = [(p, p.requires_grad) for p in model.parameters()]
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
    inputs = torch.stack([batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]])
    mod.hessian_vector_product = counting
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), warnings.catch_warnings():
            torch.manual_seed(seed)
            warnings.simplefilter("ignore")
            def run() -> tuple[list[float], list[list[Tensor]]]:
                hc = hessian(_HFWrapper(model), nn.CrossEntropyLoss(), data=(inputs, batch["labels"]),
                             cuda=device.type == "cuda")
                return hc.eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
            (vals, vecs), secs = timed(run, device)
    finally:
        mod.hessian_vector_product = original
        for p, r in saved:
            p.requires_grad_(r)
            p.grad = None
    sel = [n for n, _ in model.named_parameters() if n in keep]
    return {"status": "ok", "eigenvalues": [float(v) for v in vals], "seconds": secs, "hvps": count["n"],
            "vectors": [ParamVector(tuple(sel), tuple(t.detach() for t in v)) for v in vecs]}


def run_curvature_bench(
    out_path: str | Path | None = None,
    *,
    model_name: str = "tiny-minilm",
    device: str | torch.device | None = None,
    batches: Sequence[dict[str, Tensor]] | None = None,
    n_examples: int = 16,
    max_len: int = 32,
    group: str = "encoder",
    k: int = 5,
    tol: float = 1e-3,
    max_iter: int = 40,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Time and HVP counts for λ_max (k=1) and top-k (default 5) by Lanczos and by PyHessian at ``tol``.

    Uses one batch of all examples (PyHessian's single-batch mode). ``batches`` replaces the synthetic examples.
    Writes ``bench/results/curvature-<device>.json`` by default and returns the dict.
    """
    kw = dict(locals())
    with torch_threads(threads):
        return _run(out_path, model_name, device, batches, kw)


def _run(out_path: str | Path | None, model_name: str, device: str | torch.device | None,
         batches: Sequence[dict[str, Tensor]] | None, kw: dict[str, Any]) -> dict[str, Any]:
    dev = pick_device(device)
    n_examples, max_len, group, k = kw["n_examples"], kw["max_len"], kw["group"], kw["k"]
    tol, max_iter, seed = kw["tol"], kw["max_iter"], kw["seed"]
    from repro.models.zoo import load_model

    model = load_model(model_name, "pretrained", 2, seed).to(dev).eval()
    examples = unbatch(list(batches)) if batches is not None else synthetic_examples(n_examples, max_len, seed)
    batch = to_device(collate(examples, len(examples), sort_by_length=True), dev)[0]
    names = parameter_groups(model)[group]
    result: dict[str, Any] = {"benchmark": "curvature", "model": model_name, "examples": len(examples),
                              "group": group, "tol": tol, "seed": seed, **environment(dev), "threads_requested": kw["threads"]}
    check = HessianOperator(model, [batch], names, reuse_graph=True)
    result["num_params"] = check.size
    for label, kk in (("lambda_max", 1), (f"top{k}", k)):
        op = HessianOperator(model, [batch], names, reuse_graph=True)
        r, secs = timed(lambda: lanczos(op, kk, tol=tol, max_iter=max_iter, seed=seed, which="LM",
                                        return_vectors=True), dev)
        vecs = [op.params.unflatten(v) for v in r.eigenvectors] if r.eigenvectors is not None else []
        ours = {"eigenvalues": list(r.eigenvalues), "seconds": secs, "hvps": r.num_matvecs,
                "converged": r.converged, "rel_residuals": _rel_residuals(check, r.eigenvalues, vecs)}
        ph = _pyhessian(model, batch, names, kk, tol, max_iter, seed, dev)
        if ph["status"] == "ok":
            ph["rel_residuals"] = _rel_residuals(check, ph["eigenvalues"], ph.pop("vectors"))
        entry: dict[str, Any] = {"ours_lanczos": ours, "pyhessian_power": ph}
        if ph["status"] == "ok":
            entry["speedup_time"] = ph["seconds"] / secs
            entry["hvp_ratio"] = ph["hvps"] / r.num_matvecs
        result[label] = entry
    write_json(Path(out_path) if out_path else default_out_path("curvature", dev), result)
    return result
