"""Curvature benchmark: λ_max and the top-5 Hessian eigenvalues, ours (Lanczos) against PyHessian's power iteration,
per-product costs, and the finite-difference product against the exact one.

Both solvers run on the same model, batch and parameters, from one process, with the same tolerance number ``tol``.
*Equal tolerance* (:data:`EQUAL_TOLERANCE`) means the same stopping rule: the headline entries run Lanczos with
PyHessian's rule (relative change of the eigenvalue estimates between iterations below ``tol``); the
``*_residual_rule`` entries run Lanczos with its own, stricter rule (relative residual estimate below ``tol``). The
final relative residuals ‖Hv − λv‖/|λ| of every solver are recomputed with one operator, so the accuracy each rule
bought is visible next to its time. Both reuse the gradient graph of the single batch (what PyHessian does), so one
HVP is the same double backward in both. Every timing comes from ``repeats`` runs in rotating order (``topk_repeats`` for top-k) after
untimed warm-up products (:mod:`repro.bench.hvp`); ratios use the best of them (other processes only add time),
medians are recorded too. PyHessian's global-RNG start vector is seeded inside a forked RNG.

Peers (issue 42, :mod:`repro.bench.peers`): curvlinops' ``HessianLinearOperator`` with SciPy's ``eigsh`` and
hessian-eigenthings' Lanczos, in the same rotation, on the same batch and group at the same ``tol`` (their own,
residual-type stopping rules), each recorded under ``peers`` with its status (``"ok"``, ``"not installed"``,
``"failed: <reason>"``), seconds, products, eigenvalues, residuals and the relative difference of its λ_max from
ours; ``fastest_peer`` compares the fastest of all peers (PyHessian included) with ours under the same kind of rule
(goal: at least as fast). ``peer_products``: each peer's product against ours along one random vector.

``reuse`` (issue 42) measures on the verdict analysis's own Hessian batches: ``hessian_examples`` training examples
of a profile (default ``standard``: 256 SST-2 examples, 4 length-sorted batches of 64) from the local GLUE copy
(``data_dir``, else ``$REPRO_DATA_DIR``; synthetic examples only when there is none, marked ``"data": "synthetic"``),
all parameters, as the analysis takes its Hessian. It records the seconds and the forward-equivalents (seconds per
product / seconds per no-grad forward over the same batches) of one exact product with the first-order graphs kept
and rebuilt, and the memory per kept batch graph. ``calibration.hvp_forward_equivalents`` (the kept-graph figure:
what the analysis runs) is what the cost model reads from the published ``bench/results/curvature-<device>.json``
(:func:`recorded_hvp_forwards`).
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from repro.bench.common import (
    RESULTS_DIR,
    collate,
    default_out_path,
    environment,
    pick_device,
    synthetic_examples,
    timed,
    to_device,
    torch_threads,
    unbatch,
)
from repro.bench.hvp import (
    HFWrapper,
    batched_products_comparison,
    finite_difference_comparison,
    per_product_costs,
    pyhessian_session,
    rel_residuals,
    reuse_costs,
    stacked_inputs,
)
from repro.bench.peers import PEER_MODULES, PEER_RULES, peer_product_differences, run_peer
from repro.curvature import HessianOperator, lanczos
from repro.landscape.params import ParamVector
from repro.models.groups import parameter_groups
from repro.storage import write_json

EQUAL_TOLERANCE = (
    "same stopping rule and number: both stop when every wanted eigenvalue estimate changed by less than "
    "tol*(|previous| + 1e-6) since the previous iteration (PyHessian's rule; for Lanczos applied to its Ritz "
    "values, criterion='eigenvalue_change'). Lanczos's residuals ‖Hv − λv‖ come from the Krylov decomposition of "
    "the products it made (no extra product); PyHessian's are recomputed by the benchmark, outside its time. Equal "
    "rule is not equal accuracy: the relative residuals of both are reported next to the times; the *_residual_rule entries show Lanczos stopping on its own relative-residual estimate instead."
)


def _pyhessian(model: nn.Module, batch: dict[str, Tensor], names: Sequence[str], k: int, tol: float,
               max_iter: int, seed: int, device: torch.device) -> dict[str, Any]:
    try:
        session = pyhessian_session(model, names)
        mod = session.__enter__()
    except Exception as e:  # noqa: BLE001
        return {"status": "unavailable", "reason": f"{type(e).__name__}: {e}"}
    original = mod.hessian_vector_product
    count = {"n": 0}

    def counting(*a: Any, **kw: Any) -> Any:
        count["n"] += 1
        return original(*a, **kw)

    mod.hessian_vector_product = counting
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)

            def run() -> tuple[list[float], list[list[Tensor]]]:
                hc = mod.hessian(HFWrapper(model), nn.CrossEntropyLoss(), data=(stacked_inputs(batch), batch["labels"]),
                                 cuda=device.type == "cuda")
                return hc.eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
            (vals, vecs), secs = timed(run, device)
    finally:
        mod.hessian_vector_product = original
        session.__exit__(None, None, None)
    sel = [n for n, _ in model.named_parameters() if n in set(names)]
    return {"status": "ok", "eigenvalues": [float(v) for v in vals], "seconds": secs, "hvps": count["n"],
            "vectors": [ParamVector(tuple(sel), tuple(t.detach() for t in v)) for v in vecs]}


def _ours(model: nn.Module, batch: dict[str, Tensor], names: Sequence[str], k: int, tol: float, max_iter: int,
          seed: int, device: torch.device, criterion: str) -> dict[str, Any]:
    def run() -> Any:
        op = HessianOperator(model, [batch], names, reuse_graph=True)  # the graph is built inside the timing
        return op, lanczos(op, k, tol=tol, max_iter=max_iter, seed=seed, which="LM", return_vectors=True,
                           criterion=criterion)
    (op, r), secs = timed(run, device)
    vecs = [op.params.unflatten(v) for v in r.eigenvectors] if r.eigenvectors is not None else []
    return {"eigenvalues": list(r.eigenvalues), "seconds": secs, "hvps": r.num_matvecs, "converged": r.converged,
            "criterion": criterion, "vectors": vecs, "flat_vectors": r.eigenvectors}


def _summarise(runs: list[dict[str, Any]], check: HessianOperator) -> dict[str, Any]:
    """The last run's numbers (every run is the same seeded computation), the best time (``seconds``: on a shared
    machine other processes only ever add time, so the minimum of identical runs is the least disturbed one, as
    ``timeit`` reports), the median and every time."""
    last = dict(runs[-1])
    last["seconds_all"] = [r["seconds"] for r in runs]
    last["seconds"] = min(last["seconds_all"])
    last["seconds_median"] = statistics.median(last["seconds_all"])
    last["rel_residuals"] = rel_residuals(check, last["eigenvalues"], last.pop("vectors"))
    last.pop("flat_vectors", None)
    return last


def _summarise_peer(runs: list[dict[str, Any]], check: HessianOperator, ours: dict[str, Any]) -> dict[str, Any]:
    """A peer's runs as :func:`_summarise` does ours, plus the relative difference of its λ_max (the first,
    largest-magnitude eigenvalue, as ours) and the largest over its top-k (both sorted) from ours (eigenvalue-change
    rule); a peer that did not run: its status."""
    if not runs or any(r.get("status") != "ok" for r in runs):
        bad = next((r for r in runs if r.get("status") != "ok"), {"status": "not run"})
        return {k: v for k, v in bad.items() if k != "vectors"}
    out = _summarise(runs, check)
    lam, peer_lam = ours["eigenvalues"][0], out["eigenvalues"][0]
    out["relative_difference_lambda_max"] = abs(peer_lam - lam) / abs(lam)
    mine = sorted(ours["eigenvalues"], reverse=True)
    theirs = sorted(out["eigenvalues"], reverse=True)
    out["relative_difference_topk"] = max(abs(t - m) / abs(m) for t, m in zip(theirs, mine))
    return out


def _fastest_peer(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The fastest peer that ran (best time), against ours under the same kind of stopping rule: PyHessian against
    ``ours_lanczos`` (eigenvalue change), the residual-rule peers against ``ours_lanczos_residual_rule``. The goal
    (issue 42): ours at least as fast as the fastest peer."""
    cands = []
    ph = entry.get("pyhessian_power", {})
    if ph.get("status", "ok") == "ok" and "seconds" in ph:
        cands.append(("pyhessian", ph["seconds"], "ours_lanczos"))
    for name, e in entry.get("peers", {}).items():
        if e.get("status") == "ok":
            cands.append((name, e["seconds"], "ours_lanczos_residual_rule" if PEER_RULES[name] == "residual"
                          else "ours_lanczos"))
    if not cands:
        return None
    name, secs, ours_key = min(cands, key=lambda c: c[1])
    ours_s = entry[ours_key]["seconds"]
    return {"peer": name, "peer_seconds": secs, "ours": ours_key, "ours_seconds": ours_s,
            "peer_over_ours": secs / ours_s, "goal": "at least as fast as the fastest peer",
            "goal_met": ours_s <= secs}


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
    repeats: int = 3,
    topk_repeats: int = 1,
    finite_difference: bool = True,
    profile: str | None = "standard",
    task: str = "sst2",
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Time and HVP counts for λ_max (k=1) and top-k (default 5) by Lanczos and by PyHessian at ``tol``; seconds
    per product; the finite-difference product's error and speed (``finite_difference=True``).

    Uses one batch of all examples (PyHessian's single-batch mode). ``batches`` replaces the synthetic examples.
    ``profile`` (None: skipped): the kept-graph measurement on that profile's Hessian batches of ``task`` (see the
    module doc; ``data_dir`` defaults to ``$REPRO_DATA_DIR``).
    Writes ``bench/results/curvature-<device>.json`` by default and returns the dict.
    """
    if repeats < 1 or topk_repeats < 1:
        raise ValueError(f"repeats and topk_repeats must be at least 1, got {repeats} and {topk_repeats}")
    kw = dict(locals())
    with torch_threads(threads):
        return _run(out_path, model_name, device, batches, kw)


def _run(out_path: str | Path | None, model_name: str, device: str | torch.device | None,
         batches: Sequence[dict[str, Tensor]] | None, kw: dict[str, Any]) -> dict[str, Any]:
    dev = pick_device(device)
    n_examples, max_len, group, k = kw["n_examples"], kw["max_len"], kw["group"], kw["k"]
    tol, max_iter, seed, repeats = kw["tol"], kw["max_iter"], kw["seed"], kw["repeats"]
    from repro.models.zoo import load_model

    model = load_model(model_name, "pretrained", 2, seed).to(dev).eval()
    examples = unbatch(list(batches)) if batches is not None else synthetic_examples(n_examples, max_len, seed)
    batch = to_device(collate(examples, len(examples), sort_by_length=True), dev)[0]
    names = parameter_groups(model)[group]
    result: dict[str, Any] = {"benchmark": "curvature", "model": model_name, "examples": len(examples),
                              "group": group, "tol": tol, "seed": seed, "repeats": repeats,
                              "topk_repeats": kw["topk_repeats"],
                              "equal_tolerance": EQUAL_TOLERANCE, **environment(dev),
                              "threads_requested": kw["threads"]}
    # first: the per-product costs, whose untimed warm-up products also warm the solvers' kernels below
    result["per_product"] = per_product_costs(model, batch, names, repeats=max(5, repeats), seed=seed, device=dev)
    # several vectors in one pass (vmap over the second backward; SLQ probes, Hutchinson): looped vs batched
    result["batched_products"] = batched_products_comparison(model, [batch], names, ks=(1, 2, 4, 8),
                                                             repeats=max(3, repeats), seed=seed, device=dev)
    check = HessianOperator(model, [batch], names, reuse_graph=True)
    result["num_params"] = check.size
    if kw["profile"] is not None:
        hess_b, source = verdict_batches(model_name, kw["profile"], kw["task"], kw["data_dir"], dev, seed)
        reuse = reuse_costs(model, hess_b, None, repeats=max(3, repeats), seed=seed, device=dev)
        result["reuse"] = {"profile": kw["profile"], "task": kw["task"], "data": source, **reuse}
        result["calibration"] = {
            "hvp_forward_equivalents": reuse["forward_equivalents_per_product"]["kept_graphs"],
            "hvp_forward_equivalents_rebuilt": reuse["forward_equivalents_per_product"]["rebuilt_graphs"],
            "what": "seconds per exact Hessian-vector product (graphs kept) / seconds per no-grad forward, same "
                    "batches; read by repro.pipeline.jobs.analysis_cost",
            "model": model_name, "profile": kw["profile"], "device": str(dev), "threads": torch.get_num_threads(),
        }
    result["peer_products"] = peer_product_differences(model, batch, names, check, seed)
    top_vector = None
    peer_state: dict[str, Any] = {}

    def unflatten(flat: Tensor) -> Any:
        return check.params.unflatten(flat.to(device=check.device, dtype=check.dtype))
    for label, kk in (("lambda_max", 1), (f"top{k}", k)):
        runs: dict[str, list[dict[str, Any]]] = {"eq": [], "res": [], "ph": [], **{p: [] for p in PEER_MODULES}}
        order = ["ph", "eq", "res", *PEER_MODULES]
        for rep in range(repeats if kk == 1 else kw["topk_repeats"]):
            r0 = rep % len(order)
            for who in order[r0:] + order[:r0]:  # rotate, so no contestant always runs first
                if who == "ph":
                    runs["ph"].append(_pyhessian(model, batch, names, kk, tol, max_iter, seed, dev))
                elif who in PEER_MODULES:
                    runs[who].append(run_peer(who, model, batch, names, kk, tol, max_iter, seed, dev, unflatten,
                                              peer_state))
                else:
                    runs[who].append(_ours(model, batch, names, kk, tol, max_iter, seed, dev,
                                           "eigenvalue_change" if who == "eq" else "residual"))
        if kk == 1:
            top_vector = runs["res"][-1]["flat_vectors"][0]
        ours, ours_res = _summarise(runs["eq"], check), _summarise(runs["res"], check)
        entry: dict[str, Any] = {"ours_lanczos": ours, "ours_lanczos_residual_rule": ours_res}
        if runs["ph"][-1]["status"] == "ok":
            ph = _summarise(runs["ph"], check)
            entry["pyhessian_power"] = ph
            entry["speedup_time"] = ph["seconds"] / ours["seconds"]
            entry["speedup_time_median"] = ph["seconds_median"] / ours["seconds_median"]
            entry["hvp_ratio"] = ph["hvps"] / ours["hvps"]
            entry["speedup_time_residual_rule"] = ph["seconds"] / ours_res["seconds"]
            entry["hvp_ratio_residual_rule"] = ph["hvps"] / ours_res["hvps"]
        else:
            entry["pyhessian_power"] = runs["ph"][-1]
        entry["peers"] = {p: _summarise_peer(runs[p], check, ours) for p in PEER_MODULES}
        entry["fastest_peer"] = _fastest_peer(entry)
        result[label] = entry
    if kw["finite_difference"]:
        sdpa = None
        try:
            sdpa = load_model(model_name, "pretrained", 2, seed, attn_implementation="sdpa").to(dev).eval()
            sdpa.load_state_dict(model.state_dict())
        except Exception as e:  # noqa: BLE001 -- an old transformers without SDPA for this model: eager FD only
            result["finite_difference_sdpa_unavailable"] = f"{type(e).__name__}: {e}"
        result["finite_difference"] = finite_difference_comparison(
            model, sdpa, batch, names, top_vector, repeats=max(5, repeats), tol=tol, max_iter=max_iter, seed=seed,
            device=dev)
    write_json(Path(out_path) if out_path else default_out_path("curvature", dev), result)
    return result


def verdict_batches(model_name: str, profile: str, task: str, data_dir: str | Path | None, device: torch.device,
                    seed: int = 0) -> tuple[list[dict[str, Tensor]], str]:
    """The Hessian batches the verdict analysis uses for ``profile`` (claims.analysis): the run's training split of
    ``task`` (the profile's ``train_size`` subset and ``max_length``, tokenized for ``model_name``), its stratified
    ``hessian_examples`` subset (seed 13), length-sorted batches of ``hessian_batch_size``; and where they came from.
    Without a local GLUE copy (``data_dir``, else ``$REPRO_DATA_DIR``): synthetic examples of the same count and
    batch size, lengths up to 64 tokens (``"synthetic"``)."""
    from repro.config import get_profile
    from repro.data import get_task, prepare_split, subset_indices
    from repro.data.sources import resolve_data_dir
    from repro.models import load_tokenizer

    prof = get_profile(profile)  # an unknown name is an error naming the known ones
    ls = prof.landscape
    local = resolve_data_dir(data_dir)
    if local is None or not Path(local).is_dir():
        examples = synthetic_examples(ls.hessian_examples, 64, seed)
        return to_device(collate(examples, ls.hessian_batch_size, sort_by_length=True), device), "synthetic"
    spec = get_task(task)
    split = prepare_split(spec, spec.train_split, load_tokenizer(model_name), tokenizer_id=model_name,
                          max_length=prof.max_length, subset_size=prof.train_size, subset_seed=prof.data_seed,
                          data_dir=local)
    idx = subset_indices(len(split), min(ls.hessian_examples, len(split)), 13, labels=split.labels.cpu().numpy())
    batches = split.select(idx).batches(ls.hessian_batch_size, sort_by_length=True)
    return [{k: v.to(device) for k, v in b.items()} for b in batches], f"{spec.name} train, {local}"


def recorded_hvp_forwards(device_type: str | None = None, results_dir: str | Path | None = None) -> float | None:
    """The forward-equivalents per exact Hessian-vector product that ``repro bench curvature`` recorded for this
    device type (``cuda`` when available, else ``cpu``) in the published results (``bench/results`` of this
    checkout, or ``results_dir``): ``calibration.hvp_forward_equivalents`` of ``curvature-<device>.json``; None when
    no calibration is recorded."""
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    folder = Path(results_dir) if results_dir is not None else Path(__file__).resolve().parents[2] / RESULTS_DIR
    path = folder / f"curvature-{device_type}.json"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _read_calibration(str(path), stamp)


@functools.lru_cache(maxsize=8)
def _read_calibration(path: str, stamp: int) -> float | None:  # stamp: the file's mtime, so a rewrite is re-read
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f).get("calibration", {}).get("hvp_forward_equivalents")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
