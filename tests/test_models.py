"""Named models, the two initialisations, and depth groups."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from repro.errors import UnknownNameError
from repro.models import depth_thirds, load_model, parameter_groups, resolve_spec


def _body(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if not n.startswith("classifier")}


def test_depth_thirds_matches_paper_for_bert_large() -> None:
    assert depth_thirds(24) == {"low": list(range(0, 8)), "middle": list(range(8, 16)), "high": list(range(16, 24))}


@given(st.integers(min_value=1, max_value=64))
def test_depth_thirds_partition_in_order(n: int) -> None:
    groups = depth_thirds(n)
    flat = groups["low"] + groups["middle"] + groups["high"]
    assert flat == sorted(set(flat))
    if n >= 3:
        assert flat == list(range(n))
        sizes = [len(groups[g]) for g in ("low", "middle", "high")]
        assert max(sizes) - min(sizes) <= 1
    assert groups["low"][0] == 0


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(UnknownNameError, match="minilm-l6") as e:
        resolve_spec("minilm-l7")
    assert "Did you mean" in str(e.value)


def test_unknown_init_is_an_error() -> None:
    with pytest.raises(UnknownNameError, match="pretrained, scratch"):
        load_model("tiny-random", "random", 2, 0)


def test_scratch_depends_on_seed_only_not_task() -> None:
    a = load_model("tiny-random", "scratch", 2, seed=0)
    b = load_model("tiny-random", "scratch", 3, seed=0)
    c = load_model("tiny-random", "scratch", 2, seed=1)
    ba, bb, bc = _body(a), _body(b), _body(c)
    assert all(torch.equal(ba[k], bb[k]) for k in ba)
    assert not all(torch.equal(ba[k], bc[k]) for k in ba)
    assert a.classifier.weight.shape[0] == 2 and b.classifier.weight.shape[0] == 3


def test_loading_leaves_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model("tiny-random", "scratch", 2, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_pretrained_and_scratch_share_architecture_and_differ_in_weights() -> None:
    pre = load_model("tiny-minilm", "pretrained", 2, seed=0)
    scr = load_model("tiny-minilm", "scratch", 2, seed=0)
    sp, ss = dict(pre.named_parameters()), dict(scr.named_parameters())
    assert {k: v.shape for k, v in sp.items()} == {k: v.shape for k, v in ss.items()}
    assert not torch.equal(sp["bert.encoder.layer.0.attention.self.query.weight"],
                           ss["bert.encoder.layer.0.attention.self.query.weight"])
    # the head is drawn from the seed in both arms
    assert torch.equal(sp["classifier.weight"], ss["classifier.weight"])
    assert pre.config.num_hidden_layers == 2


def test_parameter_groups_partition_all_parameters() -> None:
    model = load_model("tiny-random", "scratch", 2, seed=0)
    g = parameter_groups(model)
    parts = g["embeddings"] + g["pooler"] + g["head"] + [n for i in range(3) for n in g[f"layer.{i}"]]
    assert sorted(parts) == sorted(g["all"])
    assert sorted(g["low"] + g["middle"] + g["high"]) == sorted(g["encoder"])
    assert all(".layer.0." in n for n in g["low"])


# -- float32 master weights whatever the checkpoint stores (issue 8) ------------------------------------------------


@pytest.fixture(scope="module")
def fp16_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint stored in float16 (safetensors, config dtype float16) with its tokenizer: what many hub
    checkpoints look like."""
    from repro.models.zoo import load_tokenizer

    path = tmp_path_factory.mktemp("ckpt") / "tiny-fp16"
    load_model("tiny-random", "pretrained", 2, seed=0).half().save_pretrained(path)
    load_tokenizer("tiny-random").save_pretrained(path)
    return path


def test_fp16_checkpoint_is_stored_in_fp16(fp16_checkpoint: Path) -> None:
    """Guards the next tests: they would prove nothing if the copy were not really half precision."""
    from safetensors import safe_open

    with safe_open(str(fp16_checkpoint / "model.safetensors"), framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert "F16" in dtypes and "F32" not in dtypes


@pytest.mark.parametrize("init", ["pretrained", "scratch"])
def test_fp16_checkpoint_loads_as_float32(fp16_checkpoint: Path, init: str) -> None:
    model = load_model(str(fp16_checkpoint), init, 2, seed=0)
    dtypes = {p.dtype for p in model.parameters()}
    assert dtypes == {torch.float32}, dtypes
    floating_buffers = {b.dtype for b in model.buffers() if b.is_floating_point()}
    assert floating_buffers <= {torch.float32}
    if init == "pretrained":  # the stored values, widened exactly
        from safetensors.torch import load_file

        stored = load_file(str(fp16_checkpoint / "model.safetensors"))
        q = "bert.encoder.layer.0.attention.self.query.weight"
        assert torch.equal(dict(model.named_parameters())[q], stored[q].float())


def test_fp16_checkpoint_trains_in_float32_to_a_finite_loss(fp16_checkpoint: Path, tmp_path: Path,
                                                             tiny_glue: Path) -> None:
    import dataclasses
    import math

    from repro.config import TrainHyper, get_profile
    from repro.training import train

    cfg = get_profile("smoke").train_config("sst2", "pretrained", 0)
    cfg = dataclasses.replace(cfg, model=str(fp16_checkpoint), train_size=32, dev_size=16, snapshots=2,
                              hyper=TrainHyper(learning_rate=5e-5, epochs=1, batch_size=8))
    run = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    assert run.metrics.status == "complete"
    assert run.metrics.train_loss and all(math.isfinite(x) for x in run.metrics.train_loss)
    theta0, theta1 = run.theta0(), run.theta1()
    assert {t.dtype for t in theta1.values()} == {torch.float32}
    # float32 AdamW moves weights by ~lr per step; in fp16 most of these updates would round away
    moved = sum(int((theta1[k] != theta0[k]).sum()) for k in theta1)
    assert moved > 0.5 * sum(t.numel() for t in theta1.values())


def test_attention_switch_gives_the_same_logits_restores_and_eager_is_what_double_backward_needs() -> None:
    """Issue 42: grids run with the fused kernel, Hessian solves switch the same model to eager. The switch changes
    the logits by float rounding only (padding masked in both), puts the previous implementation back even when the
    block raises, and a double backward through SDPA fails where the eager block succeeds (why the switch exists)."""
    from repro.curvature import HessianOperator
    from repro.models import attention_implementation

    model = load_model("tiny-minilm", "pretrained", 2, 0, attn_implementation="sdpa").eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (4, 20), generator=g)
    mask = torch.ones(4, 20, dtype=torch.long)
    mask[1, 9:] = 0
    mask[3, 3:] = 0
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 0, 1])}
    with torch.no_grad():
        fused = model(input_ids=ids, attention_mask=mask).logits
        with attention_implementation(model, "eager") as same:
            assert same is model and model.config._attn_implementation == "eager"
            eager = model(input_ids=ids, attention_mask=mask).logits
    assert model.config._attn_implementation == "sdpa"
    assert torch.allclose(fused, eager, atol=1e-5, rtol=0) and not torch.equal(fused, torch.zeros_like(fused))
    with pytest.raises(KeyError), attention_implementation(model, "eager"):
        raise KeyError("inside")
    assert model.config._attn_implementation == "sdpa"
    v = torch.randn(sum(p.numel() for p in model.parameters()), generator=g)
    with pytest.raises(ValueError, match="needs eager attention .*attention_implementation"):
        HessianOperator(model, [batch])  # refused up front: through SDPA the double backward fails at the product
    assert torch.isfinite(HessianOperator(model, [batch], method="finite_difference").matvec(v)).all()
    with attention_implementation(model, "eager"):
        assert torch.isfinite(HessianOperator(model, [batch]).matvec(v)).all()
