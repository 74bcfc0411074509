"""`repro bench train` (issue 42): the FLOP count against a hand count and against torch's own FLOP counter, the
ceiling's arithmetic, and the JSON's fields from a tiny run (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from repro.bench.train import (
    combined_rate,
    describe_train,
    forward_flops_per_sequence,
    layer_matmul_shapes,
    model_shape,
    run_train_bench,
    throughput,
    train_flops,
)

TINY = {"layers": 3, "hidden": 32, "intermediate": 64, "heads": 2, "num_labels": 2, "pooler": True}


def test_forward_flops_are_the_hand_count() -> None:
    # one layer, L = 10, H = 32, I = 64, by product (2 FLOPs per multiply-add):
    q = k = v = o = 2 * 10 * 32 * 32  # [10x32] x [32x32] each
    ffn = 2 * 10 * 32 * 64 + 2 * 10 * 64 * 32
    scores = 2 * 10 * 10 * 32  # Q K^T over the heads: [10 x d] x [d x 10] per head, d = 32 / heads
    values = 2 * 10 * 10 * 32
    layer = q + k + v + o + ffn + scores + values
    head = 2 * 32 * 32 + 2 * 32 * 2  # pooler on [CLS], classifier
    assert forward_flops_per_sequence(10, **TINY) == 3 * layer + head == 532_096
    assert forward_flops_per_sequence(10, **{**TINY, "pooler": False}) == 3 * layer + 2 * 32 * 2


def test_train_flops_count_padded_and_real_tokens() -> None:
    mask = torch.tensor([[1] * 10, [1] * 4 + [0] * 6])
    batch = {"input_ids": torch.ones(2, 10, dtype=torch.long), "attention_mask": mask}
    c = train_flops(batch, TINY)
    assert c["flops_padded"] == 3 * 2 * forward_flops_per_sequence(10, **TINY)
    assert c["flops_real"] == 3 * (forward_flops_per_sequence(10, **TINY) + forward_flops_per_sequence(4, **TINY))
    assert (c["tokens_padded"], c["tokens_real"], c["examples"]) == (20, 14, 2)
    t = throughput([c, c], 2.0, ceiling_gflops=1e-3)
    assert t["steps_per_s"] == 1.0 and t["real_tokens_per_s"] == 14 and t["padded_tokens_per_s"] == 20
    assert t["padding_fraction"] == pytest.approx(6 / 20)
    assert t["achieved_gflops"] == pytest.approx(c["flops_padded"] / 1e9)
    assert t["achieved_over_ceiling"] == pytest.approx(t["achieved_gflops"] / 1e-3)


def test_the_formula_agrees_with_torchs_flop_counter_on_the_tiny_model() -> None:
    """torch.utils.flop_counter counts every mm/bmm of a real forward and backward of tiny-random (eager
    attention): the formula's forward is its forward, and training is 3 x forward."""
    flop_counter = pytest.importorskip("torch.utils.flop_counter")
    from repro.models import load_model

    model = load_model("tiny-random", "pretrained", 2, 0)
    shape = model_shape(model)
    assert shape == TINY
    ids = torch.randint(1000, 2000, (3, 12))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    with flop_counter.FlopCounterMode(display=False) as fwd:
        logits = model(**batch).logits
    assert fwd.get_total_flops() == 3 * forward_flops_per_sequence(12, **shape)
    with flop_counter.FlopCounterMode(display=False) as both:
        model(**batch).logits.sum().backward()
    assert both.get_total_flops() == pytest.approx(3 * fwd.get_total_flops(), rel=0.01)
    assert logits.shape == (3, 2)


def test_the_ceilings_shapes_and_combination() -> None:
    shapes = layer_matmul_shapes(100, 32, 64)
    assert shapes == {"qkv": (100, 32, 96), "attention_output": (100, 32, 32), "ffn_in": (100, 32, 64),
                      "ffn_out": (100, 64, 32)}
    assert combined_rate(shapes, dict.fromkeys(shapes, 7.0)) == pytest.approx(7.0)
    # half the FLOPs at 1 GFLOP/s and half at 3: the back-to-back rate is the harmonic mean, 1.5
    two = {"a": (1, 1, 1), "b": (1, 1, 1)}
    assert combined_rate(two, {"a": 1.0, "b": 3.0}) == pytest.approx(1.5)


def test_a_tiny_run_writes_every_field(tiny_glue: Path, tmp_path: Path) -> None:
    out = tmp_path / "train-cpu.json"
    result = run_train_bench(out, model_name="tiny-random", profile="smoke", data_dir=tiny_glue, device="cpu",
                             steps=2, warmup=1, threads=1, ceiling_target_s=0.001)
    stored = json.loads(out.read_text())
    assert stored["benchmark"] == "train" and stored["model"] == "tiny-random" and stored["profile"] == "smoke"
    assert (stored["batch_size"], stored["max_length"], stored["timed_steps"]) == (16, 32, 2)
    assert stored["model_shape"] == TINY and "4 L^2 H" in stored["flop_formula"]
    c = stored["ceiling"]
    assert c["float32"]["status"] == "ok" and c["float32"]["gflops"] > 0
    assert set(c["float32"]["per_shape_gflops"]) == {"qkv", "attention_output", "ffn_in", "ffn_out"}
    assert c["bfloat16"]["status"] in ("ok", "skipped") and c["bfloat16_detection"]
    for arm in ("random", "bucketed"):
        a = stored[arm]
        for key in ("steps_per_s", "real_tokens_per_s", "padded_tokens_per_s", "achieved_gflops", "useful_gflops",
                    "achieved_over_ceiling", "useful_over_ceiling", "padding_fraction", "train_flops_padded",
                    "train_flops_real"):
            assert isinstance(a[key], (int, float)) and a[key] >= 0, (arm, key)
        assert a["steps"] == 2 and a["losses_finite"]
        assert a["real_tokens"] <= a["padded_tokens"] and a["train_flops_real"] <= a["train_flops_padded"]
    # the other attention kernel on the same bucketed batches: on the CPU the loop's is eager, the other sdpa
    assert stored["attention"] == {"loop": "eager", "other": "sdpa"}
    o = stored["bucketed_sdpa"]
    assert o["steps"] == 2 and o["losses_finite"] and o["padded_tokens"] == stored["bucketed"]["padded_tokens"]
    assert set(stored["ratios"]) == {"bucketed_over_random_steps_per_s", "bucketed_over_random_real_tokens_per_s",
                                     "bucketed_over_random_padded_tokens", "sdpa_over_eager_steps_per_s"}
    assert stored["ratios"]["sdpa_over_eager_steps_per_s"] == pytest.approx(
        o["steps_per_s"] / stored["bucketed"]["steps_per_s"])
    assert stored["threads_requested"] == 1
    lines = describe_train(result)
    assert any("random batches" in x for x in lines) and any("bucketed / random" in x for x in lines)
    assert any("attention on the bucketed batches: sdpa / eager" in x for x in lines)


def test_the_cli_runs_it_with_the_profile_and_model_and_refuses_train_options_elsewhere(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import repro.bench.train
    from repro.cli import main

    seen = {}

    def fake(out, **kw):  # noqa: ANN001, ANN003, ANN202
        seen.update(kw, out=out)
        return {"benchmark": "train", "model": kw["model_name"], "ratios": {}}

    monkeypatch.setattr(repro.bench.train, "run_train_bench", fake)
    assert main(["bench", "train", "--device", "cpu", "--out", str(tmp_path), "--model", "tiny-random", "--profile",
                 "cpu", "--steps", "3", "--warmup", "0", "--data-dir", "/nowhere", "--threads", "1"]) == 0
    assert seen == {"out": tmp_path / "train-cpu.json", "model_name": "tiny-random", "profile": "cpu",
                    "data_dir": "/nowhere", "device": torch.device("cpu"), "steps": 3, "warmup": 0, "threads": 1}
    assert main(["bench", "train", "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert (seen["model_name"], seen["profile"], seen["steps"], seen["warmup"]) == ("minilm-l6", "standard", 10, 2)
    capsys.readouterr()
    assert main(["bench", "grid", "--device", "cpu", "--steps", "3"]) == 2
    assert "--steps: only for `repro bench train`" in capsys.readouterr().err
    assert main(["bench", "train", "--device", "cpu", "--steps", "0"]) == 2
    assert main(["bench", "train", "--device", "cpu", "--profile", "nope"]) == 2
