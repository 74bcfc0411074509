"""Named models, the two initialisations, and depth groups."""

from __future__ import annotations

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
