"""Shared pieces of the benchmarks: device choice, environment record, synthetic batches, timing."""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

RESULTS_DIR = Path("bench/results")  # the published, tracked results: written only when asked for (--results)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch CPU threads (None: unchanged); on a shared CPU, oversubscribed OpenMP threads are
    about 10x slower, so a benchmark may ask for fewer."""
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def pick_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def default_out_path(name: str, device: torch.device) -> Path:
    """Where a benchmark writes when no path is given: under the user's results directory ($REPRO_OUT or ./runs),
    never over the tracked :data:`RESULTS_DIR`."""
    import os

    return Path(os.environ.get("REPRO_OUT", "runs")) / "bench" / f"{name}-{device.type}.json"


def synthetic_examples(n: int, max_len: int, seed: int, num_labels: int = 2) -> list[dict[str, Tensor]]:
    """Single examples: random token ids 1000..2000 with random lengths in [max_len/4, max_len], seeded."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(max(2, max_len // 4), max_len + 1, (1,), generator=g))
        ids = torch.randint(1000, 2000, (length,), generator=g)
        ids[0] = 101  # [CLS]
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
                    "labels": torch.randint(0, num_labels, (), generator=g)})
    return out


def collate(examples: list[dict[str, Tensor]], batch_size: int, *, sort_by_length: bool,
            pad_to: int | None = None) -> list[dict[str, Tensor]]:
    """Batches of examples; sorted by length (little padding) or in order padded to ``pad_to``."""
    ex = sorted(examples, key=lambda e: e["input_ids"].shape[0]) if sort_by_length else list(examples)
    out = []
    for s in range(0, len(ex), batch_size):
        chunk = ex[s : s + batch_size]
        L = pad_to or max(e["input_ids"].shape[0] for e in chunk)
        b = {k: torch.stack([torch.nn.functional.pad(e[k], (0, L - e[k].shape[0])) for e in chunk])
             for k in ("input_ids", "attention_mask", "token_type_ids")}
        b["labels"] = torch.stack([e["labels"] for e in chunk])
        out.append(b)
    return out


def to_device(batches: list[dict[str, Tensor]], device: torch.device) -> list[dict[str, Tensor]]:
    return [{k: v.to(device) for k, v in b.items()} for b in batches]


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t


def unbatch(batches: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
    """Split caller-given batches back into examples (padding removed via the attention mask)."""
    out = []
    for b in batches:
        for i in range(b["labels"].shape[0]):
            n = int(b["attention_mask"][i].sum())
            out.append({k: (v[i, :n].cpu() if v.ndim == 2 else v[i].cpu()) for k, v in b.items()})
    return out


def _unavailable(entry: dict[str, Any], what: str) -> str | None:
    if entry.get("status") in (None, "ok"):
        return None
    return f"{what}: {entry['status']} ({entry.get('reason', 'no reason recorded')}), so it is not compared"


def describe_bench(result: dict[str, Any]) -> list[str]:
    """One line per figure of a benchmark result, each saying what the number means; comparisons that could not run
    say so and why. Printed by ``repro bench``; the JSON has the raw timings."""
    lines = [f"{result.get('benchmark')} benchmark, model {result.get('model')}, {result.get('examples')} examples, "
             f"device {result.get('device')}, {result.get('threads')} threads"]
    if result.get("benchmark") == "grid":
        ours = result.get("ours", {})
        lines.append(f"  ours: {ours.get('points_per_s', float('nan')):.2f} grid points/s "
                     f"({ours.get('example_evals_per_s', float('nan')):.0f} example evaluations/s)")
        r = result.get("ratios", {})
        if "ours_over_ceiling" in r:
            lines.append(f"  ours / ceiling = {r['ours_over_ceiling']:.2f}: share of the rate of bare forward passes "
                         "on the same batches (1.0 = moving the parameters costs nothing)")
        if "ours_over_naive" in r:
            lines.append(f"  ours / naive = {r['ours_over_naive']:.2f}: speed-up over the loss-landscape-style loop "
                         "(model copy per point, fixed padding, float32); above 1 = ours is faster")
        if "sdpa_over_eager" in r:
            diff = result.get("ours_sdpa", {}).get("max_abs_diff_vs_eager", float("nan"))
            lines.append(f"  sdpa / eager attention = {r['sdpa_over_eager']:.2f}: the same surface with the fused "
                         f"kernel (largest loss difference {diff:.1e}); above 1 = sdpa is faster")
        if "sdpa_useful_over_matmul_ceiling" in r:
            mc = result.get("matmul_ceiling", {}).get("float32", {}).get("gflops", float("nan"))
            sd = result.get("ours_sdpa", {})
            lines.append(f"  sdpa (the analysis' grids): {sd.get('useful_gflops', float('nan')):.1f} GFLOP/s on real "
                         f"tokens = {r['sdpa_useful_over_matmul_ceiling']:.2f} of the float32 matmul ceiling at the "
                         f"model's shapes ({mc:.1f} GFLOP/s); goal 0.7 -- "
                         f"{'met' if r['sdpa_useful_over_matmul_ceiling'] >= 0.7 else 'NOT met'}")
        if "bf16_over_float32" in r:
            b16 = result.get("ours_sdpa_bf16", {})
            lines.append(f"  bf16 / float32 grids = {r['bf16_over_float32']:.2f} (native bf16 matmuls: "
                         f"{b16.get('native_bf16')}; largest loss difference "
                         f"{b16.get('max_abs_diff_vs_float32', float('nan')):.1e}); above 1 = bf16 is faster")
        if "ours_vmap_over_ceiling" in r:
            lines.append(f"  ours with vmap / ceiling = {r['ours_vmap_over_ceiling']:.2f}: the same with "
                         f"{result.get('ours_vmap', {}).get('vmap_points')} grid points per forward pass")
        elif "ours_vmap" in result:
            lines.append(_unavailable(result["ours_vmap"], "  ours with vmap") or "  ours with vmap: not compared")
        if "ours_over_loss_landscapes" in r:
            lines.append(f"  ours / loss-landscapes = {r['ours_over_loss_landscapes']:.2f}: speed-up over the PyPI "
                         "package's random_plane; above 1 = ours is faster")
        elif "loss_landscapes" in result:
            lines.append(_unavailable(result["loss_landscapes"], "  loss-landscapes (PyPI)")
                         or "  loss-landscapes: not compared")
        else:
            lines.append("  loss-landscapes (PyPI): not run")
    elif result.get("benchmark") == "curvature":
        if result.get("equal_tolerance"):
            lines.append("  equal tolerance = " + result["equal_tolerance"])
        pp = result.get("per_product") or {}
        if "pyhessian_over_ours" in pp:
            lines.append(f"  one Hessian-vector product (kept graph, best of the interleaved runs): ours {pp['ours_s']:.3f} s, PyHessian "
                         f"{pp['pyhessian_s']:.3f} s; PyHessian / ours = {pp['pyhessian_over_ours']:.2f} (above 1 = "
                         "ours is faster)")
        for key in [k for k, v in result.items() if (k == "lambda_max" or k.startswith("top")) and isinstance(v, dict)]:
            entry = result[key]
            ours = entry.get("ours_lanczos", {})
            res = max(ours.get("rel_residuals") or [float("nan")])
            lines.append(f"  {key}: ours (Lanczos) {ours.get('hvps')} Hessian-vector products in "
                         f"{ours.get('seconds', float('nan')):.2f} s, worst relative residual ‖Hv − λv‖/|λ| = "
                         f"{res:.1e}, converged: {ours.get('converged')}")
            ph = entry.get("pyhessian_power", {})
            if ph.get("status") == "ok":
                ph_res = max(ph.get("rel_residuals") or [float("nan")])
                lines.append(f"    PyHessian (power iteration): {ph.get('hvps')} products in "
                             f"{ph.get('seconds', float('nan')):.2f} s, worst relative residual {ph_res:.1e}")
                lines.append(f"    time ratio PyHessian / ours = {entry.get('speedup_time', float('nan')):.2f} "
                             f"(above 1 = ours is faster); product ratio = {entry.get('hvp_ratio', float('nan')):.2f} "
                             "(above 1 = ours needs fewer); compare them with the residuals, not alone")
            else:
                lines.append("    " + (_unavailable(ph, "PyHessian") or "PyHessian: not run"))
            strict = entry.get("ours_lanczos_residual_rule")
            if strict:
                s_res = max(strict.get("rel_residuals") or [float("nan")])
                ratio = entry.get("speedup_time_residual_rule")
                lines.append(f"    ours with its residual rule: {strict.get('hvps')} products in "
                             f"{strict.get('seconds', float('nan')):.2f} s, worst relative residual {s_res:.1e}"
                             + (f"; time ratio PyHessian / ours = {ratio:.2f}" if ratio is not None else ""))
            for peer, pe in (entry.get("peers") or {}).items():
                if pe.get("status") == "ok":
                    pe_res = max(pe.get("rel_residuals") or [float("nan")])
                    lines.append(f"    {peer} ({pe.get('solver')}): {pe.get('hvps')} products in "
                                 f"{pe.get('seconds', float('nan')):.2f} s, worst relative residual {pe_res:.1e}, "
                                 f"λ_max relative difference from ours "
                                 f"{pe.get('relative_difference_lambda_max', float('nan')):.1e}")
                else:
                    lines.append(f"    {peer}: {pe.get('status')}" + (f" ({pe['reason']})" if pe.get("reason")
                                                                       and pe.get("status") == "not installed" else ""))
            if "peers" in entry:
                fp = entry.get("fastest_peer")
                if fp:
                    lines.append(f"    fastest peer: {fp['peer']} {fp['peer_seconds']:.2f} s vs ours "
                                 f"({fp['ours'].replace('_', ' ')}) {fp['ours_seconds']:.2f} s; peer / ours = "
                                 f"{fp['peer_over_ours']:.2f} (above 1 = ours is faster)")
                    lines.append("    goal: at least as fast as the fastest peer -- "
                                 + ("met" if fp.get("goal_met") else "NOT met"))
                else:
                    lines.append("    goal: at least as fast as the fastest peer -- no peer ran, not compared")
        for peer, pp in (result.get("peer_products") or {}).items():
            if pp.get("status") == "ok":
                lines.append(f"  {peer}'s Hessian-vector product vs ours (one random vector): relative difference "
                             f"{pp['relative_difference']:.1e}")
        bp = result.get("batched_products")
        if bp:
            per_k = bp.get("per_k", {})
            lines.append("  several vectors per pass (batched / looped speed, above 1 = batching pays): "
                         + ", ".join(f"k={k} {v['speedup_batched_over_looped']:.2f}" for k, v in per_k.items())
                         + f"; largest difference {bp.get('max_rel_difference', float('nan')):.1e}"
                         + ("" if bp.get("batched_available") else f" (fell back: {bp.get('batched_fallback')})"))
        fd = result.get("finite_difference")
        if fd:
            err = fd.get("relative_error", {})
            sec = fd.get("seconds_per_product", {})
            speed = fd.get("speed_over_exact_kept_graph", {})
            for label, e in err.items():
                lines.append(f"  {label.replace('_', ' ')} product (step {fd.get('fd_step', float('nan')):.1e}, "
                             f"{fd.get('dtype')}): relative error "
                             + ", ".join(f"{d.replace('_', ' ')} {x:.1e}" for d, x in e.items())
                             + f"; {sec.get(label, float('nan')):.3f} s per product = "
                             f"{speed.get(label, float('nan')):.2f}x the exact product's speed (kept graph)")
            if "exact_fresh_graph" in sec:
                lines.append(f"  exact product building its graph each time (several batches): "
                             f"{sec['exact_fresh_graph']:.3f} s ({speed.get('exact_fresh_graph', float('nan')):.2f}x)")
            lm = fd.get("lambda_max")
            if lm:
                lines.append(f"  λ_max by Lanczos on the {lm.get('operator', '').replace('_', ' ')} operator: "
                             f"{lm.get('finite_difference', float('nan')):.5g} vs exact {lm.get('exact', float('nan')):.5g}"
                             f" (relative difference {lm.get('relative_difference', float('nan')):.1e}), "
                             f"{lm.get('hvps')} products in {lm.get('seconds', float('nan')):.2f} s")
    return lines
