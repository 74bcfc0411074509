"""Oracles for the training loop that makes every θ1: data order, schedule, weight decay, clipping and AdamW.

A wrong data order, warm-up, decay set or clipping changes every landscape downstream while the end-to-end tests
stay green (a run still trains, still resumes, still reproduces itself). So the loop is checked against
independent references: the epoch order against the documented contract (a seeded permutation per epoch, every
example once, the last batch partial), the schedule against its closed form, and a whole run against a hand-written
loop -- BERT's AdamW (decoupled weight decay, no decay on biases and LayerNorm), global-norm clipping and
warm-up-then-linear-decay written out from their definitions, with the same dropout stream -- which must give the
same losses, gradient norms, learning rates and θ1. The hand AdamW is itself checked against ``torch.optim.AdamW``
in float64.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from repro.config import TrainHyper, get_profile
from repro.models import load_model
from repro.training import train
from repro.training.loop import _epoch_generator, _lr_lambda, _param_groups, load_data

# 40 examples in batches of 16: 3 steps per epoch, the last batch partial (8), so a dropped or padded last batch shows
HYPER = TrainHyper(learning_rate=3e-3, epochs=2, batch_size=16, warmup_ratio=0.34, weight_decay=0.2,
                   max_grad_norm=0.05, adam_beta1=0.8, adam_beta2=0.95, adam_eps=1e-6)


def _cfg(**kw):  # noqa: ANN003, ANN202
    cfg = get_profile("smoke").train_config("sst2", kw.pop("init", "scratch"), kw.pop("seed", 3))
    return dataclasses.replace(cfg, model="tiny-random", train_size=40, dev_size=16, hyper=kw.pop("hyper", HYPER),
                               checkpoint_every=100, snapshots=3, **kw)


def _examples(batches: list[dict[str, torch.Tensor]]) -> list[tuple[tuple[int, ...], int]]:
    return [(tuple(ids[: int(m.sum())].tolist()), int(y)) for b in batches
            for ids, m, y in zip(b["input_ids"], b["attention_mask"], b["labels"], strict=True)]


# -- data order ---------------------------------------------------------------------------------------------------
def test_each_epoch_is_a_seeded_permutation_with_every_example_once_and_the_last_batch_partial(tiny_glue: Path) -> None:
    cfg = _cfg()
    _, split, _ = load_data(cfg, tiny_glue)
    assert len(split) == 40
    everything = Counter(_examples(split.batches(64)))

    def epoch(seed: int, e: int) -> list[dict[str, torch.Tensor]]:
        return split.batches(16, shuffle=True, generator=_epoch_generator(seed, e))

    orders = {}
    for seed in (3, 4):
        for e in (0, 1, 2):
            b = epoch(seed, e)
            assert [len(x["labels"]) for x in b] == [16, 16, 8]  # ceil(40/16) steps, the remainder last
            assert Counter(_examples(b)) == everything  # every example exactly once per epoch
            orders[seed, e] = _examples(b)
            assert _examples(epoch(seed, e)) == orders[seed, e]  # a function of (seed, epoch) only
    assert len({tuple(o) for o in orders.values()}) == len(orders)  # each epoch and each seed its own order


def test_a_run_resumed_mid_epoch_sees_the_same_remaining_batches(tiny_glue: Path, tmp_path: Path) -> None:
    """Killed after step 4 (mid second epoch) and resumed: the per-step losses after the cut equal the
    uninterrupted run's, which they cannot if the resumed epoch were drawn in another order."""
    ref, again = cut_and_resume(_cfg(), tiny_glue, tmp_path)
    assert again.metrics.train_loss[4:] == pytest.approx(ref.metrics.train_loss[4:], rel=1e-6)


def cut_and_resume(cfg, data: Path, tmp_path: Path):  # noqa: ANN001, ANN201
    """(the uninterrupted run, the same run killed after step 4 and resumed) of ``cfg``."""
    ref = train(cfg, tmp_path / "ref", data_dir=data, progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", data_dir=data, progress=False, _stop_after_step=4)
    return ref, train(cfg, tmp_path / "cut", data_dir=data, progress=False)


# -- schedule and decay set ------------------------------------------------------------------------------------------
def test_warmup_then_linear_decay_to_zero() -> None:
    f = _lr_lambda(10, 4)
    assert [f(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # (step + 1) / warmup
    assert [f(s) for s in (4, 7, 9, 10)] == pytest.approx([1.0, 0.5, 1 / 6, 0.0])  # (total − step)/(total − warmup)
    g = _lr_lambda(8, 0)
    assert [g(s) for s in (0, 2, 4, 8)] == pytest.approx([1.0, 0.75, 0.5, 0.0])
    assert _lr_lambda(5, 5)(4) == pytest.approx(1.0) and _lr_lambda(5, 5)(5) == 0.0


def test_weight_decay_goes_to_every_weight_but_biases_and_layernorm() -> None:
    model = load_model("tiny-random", "scratch", 2, 0)
    groups = _param_groups(model, 0.3)
    assert [g["weight_decay"] for g in groups] == [0.3, 0.0]
    ids = {id(p): n for n, p in model.named_parameters()}
    decay = {ids[id(p)] for p in groups[0]["params"]}
    no_decay = {ids[id(p)] for p in groups[1]["params"]}
    assert decay.isdisjoint(no_decay) and decay | no_decay == set(ids.values())
    assert no_decay == {n for n in ids.values() if n.endswith(".bias") or "LayerNorm" in n}
    assert any("LayerNorm.weight" in n for n in no_decay) and any(n.endswith("dense.weight") for n in decay)
    assert any("word_embeddings" in n for n in decay)


# -- the whole loop against a hand-written one --------------------------------------------------------------------
def _adamw_step(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int, lr: float, wd: float,
                h: TrainHyper) -> None:
    """AdamW from Loshchilov & Hutter's definition (decoupled decay, bias-corrected moments), in place."""
    p.mul_(1 - lr * wd)
    m.mul_(h.adam_beta1).add_(g, alpha=1 - h.adam_beta1)
    v.mul_(h.adam_beta2).add_(g * g, alpha=1 - h.adam_beta2)
    m_hat = m / (1 - h.adam_beta1 ** t)
    v_hat = v / (1 - h.adam_beta2 ** t)
    p.sub_(lr * m_hat / (v_hat.sqrt() + h.adam_eps))


def test_the_hand_adamw_is_torch_adamw_in_float64() -> None:
    """The reference of the next test, checked against ``torch.optim.AdamW`` on a float64 least-squares problem:
    parameters and both moments after k steps."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 5, generator=gen, dtype=torch.float64), torch.randn(32, generator=gen, dtype=torch.float64)
    w0 = torch.randn(5, generator=gen, dtype=torch.float64)
    h = HYPER
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.AdamW([w], lr=h.learning_rate, betas=(h.adam_beta1, h.adam_beta2), eps=h.adam_eps,
                            weight_decay=h.weight_decay)
    mine, m, v = w0.clone(), torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    for t in range(1, 8):
        opt.zero_grad()
        ((x @ w - y) ** 2).mean().backward()
        opt.step()
        gm = 2 * x.T @ (x @ mine - y) / len(y)
        _adamw_step(mine, gm, m, v, t, h.learning_rate, h.weight_decay, h)
    st = opt.state[w]
    torch.testing.assert_close(mine, w.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(m, st["exp_avg"], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(v, st["exp_avg_sq"], rtol=1e-12, atol=1e-14)


def test_a_run_equals_the_hand_written_loop(tiny_glue: Path, tmp_path: Path) -> None:
    """Two epochs of 3 steps with warm-up of 2 steps, weight decay 0.2 and a clipping norm (0.05) that every step
    hits: per-step loss, pre-clipping gradient norm and learning rate, and θ1, against the loop written out."""
    cfg = _cfg()
    run = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    h = cfg.hyper
    task, split, _ = load_data(cfg, tiny_glue)
    model = load_model(cfg.model, cfg.init, task.num_labels, cfg.seed, attn_implementation="eager")
    named = list(model.named_parameters())
    decays = [0.0 if n.endswith(".bias") or "LayerNorm" in n else h.weight_decay for n, _ in named]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for _, p in named]
    spe = math.ceil(len(split) / h.batch_size)
    total, warmup = spe * h.epochs, int(h.warmup_ratio * spe * h.epochs)
    assert (spe, total, warmup) == (3, 6, 2)
    losses, norms, lrs = [], [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 7919)  # the run's documented dropout stream
        model.train()
        t = 0
        for e in range(h.epochs):
            for batch in split.batches(h.batch_size, shuffle=True, generator=torch.Generator().manual_seed(
                    cfg.seed * 1_000_003 + e)):
                logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
                loss = F.cross_entropy(logits.float(), batch["labels"])
                grads = torch.autograd.grad(loss, [p for _, p in named])
                norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
                scale = min(1.0, h.max_grad_norm / (norm + 1e-6))
                lr = h.learning_rate * ((t + 1) / warmup if t < warmup else (total - t) / (total - warmup))
                t += 1
                with torch.no_grad():
                    for (_, p), g, (m, v), wd in zip(named, grads, moments, decays, strict=True):
                        _adamw_step(p, g * scale, m, v, t, lr, wd, h)
                losses.append(float(loss.detach()))
                norms.append(norm)
                lrs.append(lr)
    met = run.metrics
    assert min(norms) > h.max_grad_norm  # clipping acted on every step, so a wrong clip shows
    assert met.learning_rate == pytest.approx(lrs, rel=1e-9)
    assert met.grad_norm == pytest.approx(norms, rel=1e-4)
    assert met.train_loss == pytest.approx(losses, rel=1e-4)
    theta1 = run.theta1()
    for n, p in named:
        torch.testing.assert_close(theta1[n], p.detach(), rtol=1e-4, atol=1e-6, msg=lambda s, n=n: f"{n}: {s}")
