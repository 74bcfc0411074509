"""Training-throughput benchmark (issue 42): how fast does a profile's training step run, and how close is it to the
machine's matrix-multiply rate at the model's own shapes?

All figures come from one run, on one device, on real SST-2 training examples tokenized at the profile's
``max_length`` and cut into batches of its (pretrained arm's) ``batch_size``:

* ``random``: today's training order (:func:`repro.training.loop.epoch_batches`, ``length_bucketed`` off);
* ``bucketed``: the length-bucketed order of the same seed and epochs (``length_bucketed`` on);

each timed over ``steps`` optimizer steps after ``warmup`` untimed ones, from the same starting model, with the
training loop's step (forward, cross-entropy, backward, global-norm clipping, AdamW; bf16 autocast on CUDA only).
Reported per arm: steps/s, examples/s, real and padded tokens/s, and the achieved GFLOP/s.

``ceiling``: the rate of bare matrix multiplies at the model's shapes, measured in the same run: for T tokens (the
median padded tokens of one random batch), [T x H] x [H x 3H] (Q, K and V together), [T x H] x [H x H] (attention
output), [T x H] x [H x I] and [T x I] x [I x H] (feed-forward), in float32 and -- where the device supports it
natively (detected: ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` on the CPU, ``torch.cuda.is_bf16_supported()``
on CUDA; otherwise recorded as skipped with the reason) -- bfloat16. The combined ceiling is the rate of one layer's
four multiplies done back to back (their FLOPs over the sum of their times). It leaves out the attention's batched
[L x d] x [d x L] products, the element-wise work and the optimizer, so it is an upper bound and the ratio
achieved / ceiling a conservative efficiency.

FLOPs are counted, not measured (:func:`forward_flops_per_sequence`): a multiply-add is 2 FLOPs, and a sequence of
L tokens through a BERT encoder of n layers, hidden size H, intermediate size I, with C labels costs

    forward(L) = n * (L * (8 H^2 + 4 H I) + 4 L^2 H) + 2 H^2 [pooler, if the model has one] + 2 H C

per layer and token: Q, K, V and the output projection 4 x 2H^2, the feed-forward 2 x 2HI; the attention scores
Q K^T and their product with V 2LH each per token (over all heads), the "sequence-length term". Embedding lookups,
layer norms, softmax, GELU and the optimizer are not counted. Training = 3 x forward (the backward pass computes two
products per forward product: the gradient of the input and of the weight). Counted on *padded* tokens (L = the
batch's width for every row: the work the hardware did -- ``achieved_gflops``) and on *real* tokens (L = each
example's own length: the work a padding-free step would need -- ``useful_gflops``).
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.bench.common import default_out_path, environment, pick_device, timed, torch_threads
from repro.storage import write_json

Batch = dict[str, Tensor]

FLOP_FORMULA = ("forward(L) = n_layers * (L * (8 H^2 + 4 H I) + 4 L^2 H) + [2 H^2 pooler] + 2 H C per sequence of "
                "L tokens (2 FLOPs per multiply-add; Q,K,V,output 8H^2 and feed-forward 4HI per token, attention "
                "scores and values 4LH per token); training = 3 x forward; padded: L = batch width for every row, "
                "real: L = each example's length")


# -- arithmetic -------------------------------------------------------------------------------------------------------
def model_shape(model: nn.Module) -> dict[str, Any]:
    """The sizes the FLOP count needs, read from a Hugging Face BERT-style classifier."""
    cfg = model.config
    bert = getattr(model, "bert", None)
    return {"layers": int(cfg.num_hidden_layers), "hidden": int(cfg.hidden_size),
            "intermediate": int(cfg.intermediate_size), "heads": int(cfg.num_attention_heads),
            "num_labels": int(cfg.num_labels), "pooler": bert is not None and getattr(bert, "pooler", None) is not None}


def forward_flops_per_sequence(length: int, *, layers: int, hidden: int, intermediate: int, num_labels: int,
                               pooler: bool = True, **_: Any) -> int:
    """Matrix-multiply FLOPs of one forward pass of one sequence of ``length`` tokens (the module docstring's
    formula)."""
    L, H, I = int(length), int(hidden), int(intermediate)
    per_layer = L * (8 * H * H + 4 * H * I) + 4 * L * L * H
    head = (2 * H * H if pooler else 0) + 2 * H * int(num_labels)
    return int(layers) * per_layer + head


def train_flops(batch: Batch, shape: dict[str, Any]) -> dict[str, int]:
    """Training FLOPs (3 x forward) of one batch, counted on padded tokens (every row at the batch's width) and on
    real tokens (each row at its own length), with the token counts."""
    rows, width = batch["input_ids"].shape
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    padded = 3 * rows * forward_flops_per_sequence(width, **shape)
    real = 3 * sum(forward_flops_per_sequence(int(n), **shape) for n in lengths)
    return {"flops_padded": padded, "flops_real": real, "tokens_padded": int(rows * width),
            "tokens_real": int(sum(lengths)), "examples": int(rows)}


def layer_matmul_shapes(tokens: int, hidden: int, intermediate: int) -> dict[str, tuple[int, int, int]]:
    """(m, k, n) of one encoder layer's dense products for ``tokens`` rows: [m x k] x [k x n]."""
    T, H, I = int(tokens), int(hidden), int(intermediate)
    return {"qkv": (T, H, 3 * H), "attention_output": (T, H, H), "ffn_in": (T, H, I), "ffn_out": (T, I, H)}


def combined_rate(shapes: dict[str, tuple[int, int, int]], gflops: dict[str, float]) -> float:
    """GFLOP/s of doing each product once, back to back: total FLOPs over the sum of the times."""
    flops = {k: 2 * m * k_ * n for k, (m, k_, n) in shapes.items()}
    seconds = sum(flops[k] / (gflops[k] * 1e9) for k in shapes)
    return sum(flops.values()) / seconds / 1e9


def throughput(counts: Sequence[dict[str, int]], seconds: float, ceiling_gflops: float | None) -> dict[str, Any]:
    """Rates of ``len(counts)`` timed steps that took ``seconds``; ratios to ``ceiling_gflops`` where given."""
    tot = {k: sum(c[k] for c in counts) for k in ("flops_padded", "flops_real", "tokens_padded", "tokens_real",
                                                  "examples")}
    steps = len(counts)
    out: dict[str, Any] = {
        "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds, "examples_per_s": tot["examples"] / seconds,
        "real_tokens": tot["tokens_real"], "padded_tokens": tot["tokens_padded"],
        "real_tokens_per_s": tot["tokens_real"] / seconds, "padded_tokens_per_s": tot["tokens_padded"] / seconds,
        "padding_fraction": 1 - tot["tokens_real"] / tot["tokens_padded"],
        "train_flops_padded": tot["flops_padded"], "train_flops_real": tot["flops_real"],
        "achieved_gflops": tot["flops_padded"] / seconds / 1e9, "useful_gflops": tot["flops_real"] / seconds / 1e9,
    }
    if ceiling_gflops:
        out["achieved_over_ceiling"] = out["achieved_gflops"] / ceiling_gflops
        out["useful_over_ceiling"] = out["useful_gflops"] / ceiling_gflops
    return out


# -- timing -----------------------------------------------------------------------------------------------------------
def bf16_support(device: torch.device) -> tuple[bool, str]:
    """Whether bfloat16 matrix multiplies run natively here, and how that was decided."""
    if device.type == "cuda":
        ok = bool(torch.cuda.is_bf16_supported())
        return ok, f"torch.cuda.is_bf16_supported() = {ok}"
    if device.type != "cpu":
        return False, f"no bfloat16 detection for device type {device.type}"
    cap = torch.backends.cpu.get_cpu_capability()
    try:
        ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError) as e:
        return False, f"cannot ask oneDNN ({type(e).__name__}); CPU capability {cap}"
    return ok, f"torch.ops.mkldnn._is_mkldnn_bf16_supported() = {ok}; CPU capability {cap}"


def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, device: torch.device, *, target_s: float = 0.1,
                  repeats: int = 3) -> float:
    """Best-of-``repeats`` GFLOP/s of [m x k] x [k x n] products, each timing long enough (``target_s``)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(m, k, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(k, n, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up
    _, once = timed(lambda: torch.mm(a, b, out=out), device)
    iters = max(1, math.ceil(target_s / max(once, 1e-6)))

    def run() -> None:
        for _ in range(iters):
            torch.mm(a, b, out=out)

    best = min(timed(run, device)[1] for _ in range(repeats))
    return 2 * m * k * n * iters / best / 1e9


def matmul_ceiling(tokens: int, shape: dict[str, Any], device: torch.device, *, target_s: float = 0.1
                   ) -> dict[str, Any]:
    """float32 and (where supported) bfloat16 rates at one layer's shapes, per product and combined."""
    shapes = layer_matmul_shapes(tokens, shape["hidden"], shape["intermediate"])
    out: dict[str, Any] = {"tokens": int(tokens), "shapes": {k: list(v) for k, v in shapes.items()}}
    ok, how = bf16_support(device)
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        if name == "bfloat16" and not ok:
            out[name] = {"status": "skipped", "reason": f"no native bfloat16 matrix multiply: {how}"}
            continue
        rates = {k: matmul_gflops(*v, dtype, device, target_s=target_s) for k, v in shapes.items()}
        out[name] = {"status": "ok", "gflops": combined_rate(shapes, rates), "per_shape_gflops": rates}
    out["bfloat16_detection"] = how
    return out


def make_train_step(model: nn.Module, device: torch.device, learning_rate: float = 1e-5,
                    max_grad_norm: float = 1.0) -> Callable[[Batch], float]:
    """The training loop's step (repro.training.loop.train) without its bookkeeping: forward under the loop's
    autocast, cross-entropy in float32, backward, global-norm clipping, AdamW with BERT's decay groups."""
    from repro.landscape.evaluate import autocast_context, model_inputs
    from repro.training.loop import _param_groups

    opt = torch.optim.AdamW(_param_groups(model, 0.01), lr=learning_rate, fused=device.type == "cuda")
    model.train()

    def step(batch: Batch) -> float:
        with autocast_context(device):
            logits = model(**model_inputs(batch)).logits
        loss = F.cross_entropy(logits.float(), batch["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        opt.step()
        return float(loss.item())  # the loop's one host sync per step

    return step


def time_steps(step: Callable[[Batch], float], batches: Sequence[Batch], warmup: int,
               device: torch.device) -> tuple[float, list[float]]:
    """Run ``warmup`` untimed steps on the first batches, then time one step on each of the rest; returns (seconds
    of the timed steps, their losses)."""
    for b in batches[:warmup]:
        step(b)
    losses: list[float] = []
    _, seconds = timed(lambda: losses.extend(step(b) for b in batches[warmup:]), device)
    return seconds, losses


def order_batches(split: Any, hyper: Any, seed: int, count: int, *, bucketed: bool) -> list[Batch]:
    """The first ``count`` training batches of a run with ``hyper`` and ``seed``, epoch after epoch, random or
    length-bucketed."""
    import dataclasses

    from repro.training.loop import epoch_batches

    h = dataclasses.replace(hyper, length_bucketed=bucketed)
    out: list[Batch] = []
    epoch = 0
    while len(out) < count:
        out.extend(epoch_batches(split, h, seed, epoch))
        epoch += 1
    return out[:count]


# -- the benchmark ----------------------------------------------------------------------------------------------------
def run_train_bench(
    out_path: str | Path | None = None,
    *,
    model_name: str = "minilm-l6",
    profile: str = "standard",
    task: str = "sst2",
    data_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    steps: int = 10,
    warmup: int = 2,
    seed: int = 0,
    threads: int | None = None,
    ceiling_target_s: float = 0.1,
) -> dict[str, Any]:
    """Run the training-throughput benchmark and write its JSON (default ``$REPRO_OUT/bench/train-<device>.json``);
    returns the dict. The profile gives ``max_length``, ``train_size`` and the pretrained arm's ``batch_size``."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    with torch_threads(threads):
        return _run(out_path, model_name, profile, task, data_dir, device, steps, warmup, seed, threads,
                    ceiling_target_s)


def _run(out_path: str | Path | None, model_name: str, profile: str, task: str, data_dir: str | Path | None,
         device: str | torch.device | None, steps: int, warmup: int, seed: int, threads: int | None,
         ceiling_target_s: float) -> dict[str, Any]:
    import dataclasses

    from repro.config import get_profile
    from repro.models import load_model
    from repro.training.loop import load_data, to_device

    dev = pick_device(device)
    prof = get_profile(profile)
    cfg = dataclasses.replace(prof.train_config(task, "pretrained", seed), model=model_name)
    spec, split, _ = load_data(cfg, data_dir)
    h = cfg.hyper
    attn = "sdpa" if dev.type == "cuda" else "eager"  # as the training loop
    base = load_model(model_name, "pretrained", spec.num_labels, seed, attn_implementation=attn).to(dev)
    shape = model_shape(base)
    n = warmup + steps
    arms = {name: order_batches(split, h, seed, n, bucketed=name == "bucketed") for name in ("random", "bucketed")}
    widths = sorted(int(b["input_ids"].shape[1]) for b in arms["random"][warmup:])
    tokens = h.batch_size * int(statistics.median(widths))
    ceiling = matmul_ceiling(tokens, shape, dev, target_s=ceiling_target_s)
    compute = "bfloat16" if dev.type == "cuda" else "float32"  # the loop's compute dtype (autocast on CUDA only)
    ceil = ceiling.get(compute, {}).get("gflops")
    result: dict[str, Any] = {
        "benchmark": "train", "model": model_name, "profile": profile, "task": task, "examples": len(split),
        "batch_size": h.batch_size, "max_length": cfg.max_length, "warmup_steps": warmup, "timed_steps": steps,
        "seed": seed, **environment(dev), "threads_requested": threads, "model_shape": shape,
        "flop_formula": FLOP_FORMULA, "compute_dtype": compute, "ceiling": ceiling,
    }
    for name, batches in arms.items():
        model = copy.deepcopy(base)
        batches = [to_device(b, dev) for b in batches]
        seconds, losses = time_steps(make_train_step(model, dev), batches, warmup, dev)
        counts = [train_flops(b, shape) for b in batches[warmup:]]
        result[name] = {**throughput(counts, seconds, ceil), "mean_width": statistics.fmean(
            int(b["input_ids"].shape[1]) for b in batches[warmup:]), "losses_finite": all(map(math.isfinite, losses))}
        del model
    # the other attention kernel on the same bucketed batches (issue 42: the fused kernel wherever no double backward
    # is needed; the loop uses eager on the CPU, sdpa on CUDA): measured, so the faster one can be chosen per use
    other = "eager" if attn == "sdpa" else "sdpa"
    model = load_model(model_name, "pretrained", spec.num_labels, seed, attn_implementation=other).to(dev)
    batches = [to_device(b, dev) for b in arms["bucketed"]]
    seconds, losses = time_steps(make_train_step(model, dev), batches, warmup, dev)
    counts = [train_flops(b, shape) for b in batches[warmup:]]
    result["attention"] = {"loop": attn, "other": other}
    result[f"bucketed_{other}"] = {**throughput(counts, seconds, ceil),
                                   "losses_finite": all(map(math.isfinite, losses))}
    del model
    r, b, o = result["random"], result["bucketed"], result[f"bucketed_{other}"]
    result["ratios"] = {"bucketed_over_random_steps_per_s": b["steps_per_s"] / r["steps_per_s"],
                        "bucketed_over_random_real_tokens_per_s": b["real_tokens_per_s"] / r["real_tokens_per_s"],
                        "bucketed_over_random_padded_tokens": b["padded_tokens"] / r["padded_tokens"],
                        f"{other}_over_{attn}_steps_per_s": o["steps_per_s"] / b["steps_per_s"]}
    write_json(Path(out_path) if out_path else default_out_path("train", dev), result)
    return result


def describe_train(result: dict[str, Any]) -> list[str]:
    """One line per figure of a training benchmark, each saying what it means (printed by ``repro bench train``)."""
    lines = [f"train benchmark, model {result.get('model')} at profile {result.get('profile')}'s batch "
             f"{result.get('batch_size')} / max length {result.get('max_length')}, {result.get('task')} "
             f"({result.get('examples')} examples), device {result.get('device')}, {result.get('threads')} threads, "
             f"{result.get('timed_steps')} timed steps after {result.get('warmup_steps')} warm-up"]
    ceiling = result.get("ceiling", {})
    for dtype in ("float32", "bfloat16"):
        c = ceiling.get(dtype, {})
        if c.get("status") == "ok":
            lines.append(f"  matmul ceiling {dtype}: {c['gflops']:.1f} GFLOP/s (one layer's dense products at "
                         f"{ceiling.get('tokens')} tokens)")
        elif c:
            lines.append(f"  matmul ceiling {dtype}: {c.get('status')} ({c.get('reason')})")
    for arm in ("random", "bucketed"):
        a = result.get(arm)
        if not a:
            continue
        ratio = (f"; achieved / {result.get('compute_dtype')} ceiling = {a['achieved_over_ceiling']:.2f}, useful / "
                 f"ceiling = {a['useful_over_ceiling']:.2f}" if "achieved_over_ceiling" in a else "")
        lines.append(f"  {arm} batches: {a['steps_per_s']:.2f} steps/s, {a['real_tokens_per_s']:.0f} real and "
                     f"{a['padded_tokens_per_s']:.0f} padded tokens/s ({100 * a['padding_fraction']:.0f}% padding), "
                     f"{a['achieved_gflops']:.1f} GFLOP/s achieved (padded), {a['useful_gflops']:.1f} useful "
                     f"(real tokens){ratio}")
    r = result.get("ratios", {})
    if r:
        lines.append(f"  bucketed / random: {r['bucketed_over_random_real_tokens_per_s']:.2f}x real tokens/s, "
                     f"{r['bucketed_over_random_padded_tokens']:.2f}x the padded tokens per step")
    att = result.get("attention")
    if att and f"{att['other']}_over_{att['loop']}_steps_per_s" in r:
        lines.append(f"  attention on the bucketed batches: {att['other']} / {att['loop']} (the loop's) = "
                     f"{r[att['other'] + '_over_' + att['loop'] + '_steps_per_s']:.2f}x steps/s")
    return lines
