"""repro.data tokenized splits: batches are complete, trimmed and deterministic; subsets are deterministic and
stratified; prepare_split tokenizes pairs with the model's tokenizer and hits its safetensors cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import repro.data.tokenize as tokmod
from repro.data import TokenizedSplit, features_for, prepare_split, subset_indices
from tests.conftest import START_ENV, require_glue


@pytest.fixture(scope="module")
def real_glue() -> Path:
    """The real GLUE copy, looked up in the environment as the session started: the autouse fixture below
    deletes REPRO_DATA_DIR from each test's environment, so reading it inside the test would always miss it.
    Skipped where absent, a failure where CI is set."""
    return require_glue(START_ENV, "rte/validation.jsonl")


def fake_split(lengths: list[int], max_length: int = 12, num_labels: int = 3) -> TokenizedSplit:
    """A split whose rows are recognisable: token j of row i is 1000*i + j + 1 inside the sequence, 0 after."""
    n = len(lengths)
    lens = torch.tensor(lengths, dtype=torch.int64)
    pos = torch.arange(max_length)[None, :]
    mask = (pos < lens[:, None]).to(torch.int64)
    ids = (torch.arange(n)[:, None] * 1000 + pos + 1) * mask
    return TokenizedSplit(
        input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
        labels=torch.arange(n) % num_labels, lengths=lens, idx=torch.arange(n) + 500,
        task="rte", split="train", num_labels=num_labels,
    )


# ---------------------------------------------------------------- batches


@settings(max_examples=60, deadline=None, database=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=40),
    batch_size=st.integers(1, 16),
    shuffle=st.booleans(),
    sort_by_length=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_batches_complete_and_trimmed(
    lengths: list[int], batch_size: int, shuffle: bool, sort_by_length: bool, seed: int
) -> None:
    split = fake_split(lengths)
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    batches = split.batches(batch_size, shuffle=shuffle, generator=gen, sort_by_length=sort_by_length)
    seen: list[int] = []
    for b in batches:
        assert set(b) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
        assert all(t.dtype == torch.int64 for t in b.values())
        rows = (b["input_ids"][:, 0] // 1000).tolist()  # recover the row number from the token values
        width = max(lengths[r] for r in rows)
        assert b["input_ids"].shape == (len(rows), width)  # trimmed to this batch's longest sequence
        for k in ("input_ids", "attention_mask", "token_type_ids"):
            assert torch.equal(b[k], getattr(split, k)[rows, :width])
        assert b["labels"].tolist() == split.labels[rows].tolist()
        seen.extend(rows)
    assert sorted(seen) == list(range(len(lengths)))  # every example exactly once
    sizes = sorted(len(b["labels"]) for b in batches)
    assert sizes[1:] == [batch_size] * (len(sizes) - 1) and sizes[0] == (len(lengths) % batch_size or batch_size)
    if sort_by_length and not shuffle:
        flat = [lengths[r] for r in seen]
        assert flat == sorted(flat, reverse=True)
    if not shuffle and not sort_by_length:
        assert seen == list(range(len(lengths)))


def test_batch_sizes_and_drop_last() -> None:
    split = fake_split([3] * 10)
    assert [len(b["labels"]) for b in split.batches(4)] == [4, 4, 2]
    assert [len(b["labels"]) for b in split.batches(4, drop_last=True)] == [4, 4]
    assert [len(b["labels"]) for b in split.batches(5, drop_last=True)] == [5, 5]
    with pytest.raises(ValueError, match="batch_size"):
        split.batches(0)


def _order(split: TokenizedSplit, seed: int, **kw: Any) -> list[int]:
    batches = split.batches(4, shuffle=True, generator=torch.Generator().manual_seed(seed), **kw)
    return [r for b in batches for r in (b["input_ids"][:, 0] // 1000).tolist()]


@pytest.mark.parametrize("sort_by_length", [False, True])
def test_shuffle_deterministic_per_seed_and_independent_of_global_rng(sort_by_length: bool) -> None:
    split = fake_split([(i * 7) % 11 + 1 for i in range(30)])
    torch.manual_seed(1)
    first = _order(split, 42, sort_by_length=sort_by_length)
    torch.manual_seed(999)
    state = torch.get_rng_state()
    second = _order(split, 42, sort_by_length=sort_by_length)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is neither used nor advanced
    assert first == second
    assert _order(split, 43, sort_by_length=sort_by_length) != first
    assert first != list(range(30))


def test_shuffle_requires_generator() -> None:
    with pytest.raises(ValueError, match="explicit torch.Generator"):
        fake_split([2, 3]).batches(2, shuffle=True)


def test_select_to_len_and_shape_checks() -> None:
    split = fake_split([1, 2, 3, 4, 5])
    assert len(split) == 5 and split.max_length == 12
    sub = split.select([4, 0])
    assert len(sub) == 2 and sub.idx.tolist() == [504, 500] and sub.lengths.tolist() == [5, 1]
    assert sub.task == "rte" and sub.num_labels == 3 and sub.max_length == 12
    moved = split.to("cpu")
    assert moved.device.type == "cpu" and torch.equal(moved.input_ids, split.input_ids)
    with pytest.raises(ValueError, match="labels must have shape"):
        TokenizedSplit(split.input_ids, split.attention_mask, split.token_type_ids, split.labels[:2],
                       split.lengths, split.idx, "rte", "train", 3)


# ---------------------------------------------------------------- subsets


def test_subset_indices_deterministic_sorted_unique() -> None:
    a = subset_indices(1000, 50, seed=3)
    assert a == subset_indices(1000, 50, seed=3)
    assert a == sorted(set(a)) and len(a) == 50 and all(0 <= i < 1000 for i in a)
    assert a != subset_indices(1000, 50, seed=4)
    assert subset_indices(10, 10, seed=0) == list(range(10)) == subset_indices(10, 99, seed=0)
    with pytest.raises(ValueError):
        subset_indices(10, 0, seed=0)


def test_subset_indices_stratified_keeps_label_balance() -> None:
    labels = np.array([0] * 700 + [1] * 200 + [2] * 100)
    rng = np.random.default_rng(0)
    rng.shuffle(labels)
    idx = subset_indices(1000, 100, seed=7, labels=labels)
    assert len(idx) == 100 and idx == sorted(set(idx))
    assert np.bincount(labels[idx]).tolist() == [70, 20, 10]
    assert idx == subset_indices(1000, 100, seed=7, labels=labels.tolist())
    odd = subset_indices(1000, 7, seed=1, labels=labels)
    assert len(odd) == 7


# ---------------------------------------------------------------- prepare_split with the real tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from repro.models import load_tokenizer

    return load_tokenizer("tiny-minilm")


def write_rte(root: Path, n: int = 12, split: str = "train") -> Path:
    path = root / "rte" / f"{split}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"sentence1": f"the cat number {i} sat on the mat " + "very " * i, "sentence2": f"a cat {i} sat",
         "label": i % 2, "idx": i}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPRO_DATA_DIR", raising=False)
    monkeypatch.delenv("REPRO_CACHE_DIR", raising=False)


def test_prepare_split_tokenizes_pairs(tmp_path: Path, tokenizer: Any) -> None:
    write_rte(tmp_path / "data")
    out = prepare_split("rte", "train", tokenizer, tokenizer_id="tiny-minilm", max_length=16,
                        data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert len(out) == 12 and out.task == "rte" and out.split == "train" and out.num_labels == 2
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        t = getattr(out, name)
        assert t.shape == (12, 16) and t.dtype == torch.int64
    assert out.labels.tolist() == [i % 2 for i in range(12)] and out.idx.tolist() == list(range(12))
    assert out.lengths.max() == 16  # long rows truncated to max_length
    assert torch.equal(out.lengths, out.attention_mask.sum(1))
    row0 = tokenizer("the cat number 0 sat on the mat ", "a cat 0 sat")
    n0 = len(row0["input_ids"])
    assert out.input_ids[0, :n0].tolist() == row0["input_ids"]
    assert out.token_type_ids[0, :n0].tolist() == row0["token_type_ids"] and 1 in row0["token_type_ids"]
    assert (out.input_ids[0, n0:] == tokenizer.pad_token_id).all() and (out.attention_mask[0, n0:] == 0).all()


def test_prepare_split_subset(tmp_path: Path, tokenizer: Any) -> None:
    write_rte(tmp_path / "data", n=40)
    kw: dict[str, Any] = dict(tokenizer_id="tiny-minilm", max_length=32, data_dir=tmp_path / "data",
                              cache_dir=tmp_path / "cache")
    a = prepare_split("rte", "train", tokenizer, subset_size=10, subset_seed=1, **kw)
    b = prepare_split("rte", "train", tokenizer, subset_size=10, subset_seed=2, **kw)
    assert len(a) == 10 and a.labels.bincount().tolist() == [5, 5]
    assert a.idx.tolist() == subset_indices(40, 10, 1, labels=[i % 2 for i in range(40)])
    assert a.idx.tolist() != b.idx.tolist()


def test_cache_hit_skips_loading_and_tokenizing(tmp_path: Path, tokenizer: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_rte(tmp_path / "data")
    kw: dict[str, Any] = dict(tokenizer_id="tiny-minilm", max_length=16, data_dir=tmp_path / "data")
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))  # the env var picks the cache dir
    first = prepare_split("rte", "train", tokenizer, **kw)
    files = sorted(p.suffix for p in (tmp_path / "cache").iterdir())
    assert files == [".json", ".safetensors"]

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("cache miss: the split was read or tokenized again")

    monkeypatch.setattr(tokmod, "_tokenize", boom)
    monkeypatch.setattr(tokmod, "read_source", boom)
    second = prepare_split("rte", "train", tokenizer, **kw)
    for name in ("input_ids", "attention_mask", "token_type_ids", "labels", "lengths", "idx"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
        assert getattr(second, name).dtype == torch.int64

    # anything in the key changes the entry: another max_length, subset, tokenizer id, or an edited source file
    for change in ({"max_length": 20}, {"subset_size": 4}, {"tokenizer_id": "other"}):
        with pytest.raises(AssertionError, match="cache miss"):
            prepare_split("rte", "train", tokenizer, **{**kw, **change})
    write_rte(tmp_path / "data", n=13)
    with pytest.raises(AssertionError, match="cache miss"):
        prepare_split("rte", "train", tokenizer, **kw)


def test_cache_is_safetensors_and_corruption_rebuilds(tmp_path: Path, tokenizer: Any) -> None:
    from safetensors.torch import load_file

    write_rte(tmp_path / "data")
    kw: dict[str, Any] = dict(tokenizer_id="tiny-minilm", max_length=16, data_dir=tmp_path / "data",
                              cache_dir=tmp_path / "cache")
    first = prepare_split("rte", "train", tokenizer, **kw)
    (st_file,) = (tmp_path / "cache").glob("*.safetensors")
    stored = load_file(str(st_file))
    assert set(stored) == {"input_ids", "attention_mask", "token_type_ids", "labels", "lengths", "idx"}
    st_file.write_bytes(b"not a safetensors file")
    again = prepare_split("rte", "train", tokenizer, **kw)
    assert torch.equal(first.input_ids, again.input_ids)
    assert load_file(str(st_file)).keys() == stored.keys()  # rewritten


def test_prepare_split_from_hub_monkeypatched(tmp_path: Path, tokenizer: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"sentence": f"film {i} was fine", "label": i % 2, "idx": i} for i in range(6)]
    calls: list[str] = []

    def fake_load_dataset(path: str, name: str, split: str) -> datasets.Dataset:
        calls.append(split)
        return datasets.Dataset.from_list(rows, features=features_for("sst2"))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    kw: dict[str, Any] = dict(tokenizer_id="tiny-minilm", max_length=8, cache_dir=tmp_path / "cache")
    out = prepare_split("sst2", "dev", tokenizer, **kw)
    assert len(out) == 6 and out.split == "validation" and (out.token_type_ids == 0).all()
    prepare_split("sst2", "validation", tokenizer, **kw)
    assert calls == ["validation"]  # second call came from the cache


def test_prepare_real_rte_validation(real_glue: Path, tmp_path: Path, tokenizer: Any) -> None:
    root = real_glue
    out = prepare_split("rte", "validation", tokenizer, tokenizer_id="tiny-minilm", max_length=128,
                        data_dir=root, cache_dir=tmp_path)
    assert len(out) == 277 and out.lengths.max() <= 128 and set(out.labels.tolist()) == {0, 1}
    batches = out.batches(32, sort_by_length=True)
    assert sum(len(b["labels"]) for b in batches) == 277
