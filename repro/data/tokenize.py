"""Tokenized splits as plain tensors, deterministic subsets and batches, and an on-disk safetensors cache.

Why tensors and not a ``datasets.Dataset``: landscape and curvature code evaluates the *same* examples thousands of
times (one loss per grid point, one Hessian-vector product per Lanczos step); holding the split as a few int64
tensors on the device and slicing batches from them costs nothing per evaluation, and every batch is trimmed to its
own longest sequence so padding does not dominate the compute.

Why a cache: tokenizing SST-2's 67k sentences takes longer than many of the measurements that use it. The key holds
everything that changes the tensors -- task, split, tokenizer identity (class and vocabulary hash), ``max_length``,
the subset, and the source file's identity (path, size, mtime; or the hub coordinates) -- so a stale cache cannot be
hit. Files are safetensors (no pickle: loading a cache never runs code) written atomically, and a JSON sidecar
written *after* the tensors marks the entry complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repro.data.sources import locate_split, read_source
from repro.data.tasks import TaskSpec, get_task
from repro.storage import atomic_save, read_json, write_json

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "REPRO_CACHE_DIR"
CACHE_FORMAT = 1  # bump when the stored layout changes, so old entries are ignored rather than misread
BATCH_KEYS = ("input_ids", "attention_mask", "token_type_ids", "labels")
_SEQ_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# Mega-batch size of length-bucketed training batches, in batches (Hugging Face's LengthGroupedSampler uses 50);
# part of the recipe of a run with TrainHyper.length_bucketed, like the rest of its data order.
LENGTH_GROUP_MEGA_BATCHES = 50


@dataclass(eq=False)
class TokenizedSplit:
    """A tokenized split: right-padded ``[N, max_length]`` int64 inputs plus ``labels``, ``lengths`` and ``idx``.

    ``idx`` holds the GLUE example ids of the rows, so a subset can always be traced back to its examples.
    Not frozen, because it holds tensors; treat it as immutable: :meth:`to` and :meth:`select` return new splits.
    """

    input_ids: Tensor
    attention_mask: Tensor
    token_type_ids: Tensor
    labels: Tensor
    lengths: Tensor
    idx: Tensor
    task: str
    split: str
    num_labels: int

    def __post_init__(self) -> None:
        n = self.input_ids.shape[0]
        if self.input_ids.ndim != 2:
            raise ValueError(f"input_ids must be [N, max_length], got shape {tuple(self.input_ids.shape)}")
        for name in ("attention_mask", "token_type_ids"):
            if getattr(self, name).shape != self.input_ids.shape:
                raise ValueError(f"{name} shape {tuple(getattr(self, name).shape)} != input_ids shape")
        for name in ("labels", "lengths", "idx"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(getattr(self, name).shape)}")

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def max_length(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def device(self) -> torch.device:
        return self.input_ids.device

    def _replace(self, **tensors: Tensor) -> TokenizedSplit:
        fields = {k: getattr(self, k) for k in (*_SEQ_KEYS, "labels", "lengths", "idx")}
        fields.update(tensors)
        return TokenizedSplit(**fields, task=self.task, split=self.split, num_labels=self.num_labels)

    def to(self, device: torch.device | str) -> TokenizedSplit:
        keys = (*_SEQ_KEYS, "labels", "lengths", "idx")
        return self._replace(**{k: getattr(self, k).to(device) for k in keys})

    def select(self, indices: Sequence[int] | Tensor) -> TokenizedSplit:
        """The rows at ``indices`` (positions in this split, not GLUE ids), in that order."""
        index = torch.as_tensor(indices, dtype=torch.long, device=self.device).reshape(-1)
        keys = (*_SEQ_KEYS, "labels", "lengths", "idx")
        return self._replace(**{k: getattr(self, k).index_select(0, index) for k in keys})

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        sort_by_length: bool = False,
        drop_last: bool = False,
    ) -> list[dict[str, Tensor]]:
        """Split into batches of ``input_ids, attention_mask, token_type_ids, labels``, each trimmed to its own
        longest sequence.

        ``shuffle`` permutes with ``generator`` only (required; the global RNG is never touched), so the order is a
        function of the generator's state. ``sort_by_length`` groups similar lengths (longest first) to minimise
        padding -- for evaluation, where order does not matter; combined with ``shuffle``, ties are broken at random
        and the batch order is shuffled too (length bucketing for training). Without ``drop_last`` every example is
        in exactly one batch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if shuffle and generator is None:
            raise ValueError("shuffle=True needs an explicit torch.Generator; the global RNG is never used")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        if sort_by_length:
            lengths = self.lengths.cpu()[order]
            order = order[torch.sort(lengths, descending=True, stable=True).indices]
        chunks = list(torch.split(order, batch_size))
        if drop_last and chunks and len(chunks[-1]) < batch_size:
            chunks.pop()
        if shuffle and sort_by_length:
            perm = torch.randperm(len(chunks), generator=generator).tolist()
            chunks = [chunks[i] for i in perm]
        return self._gather(chunks)

    def length_grouped_batches(self, batch_size: int, *, generator: torch.Generator,
                               mega_batches: int = LENGTH_GROUP_MEGA_BATCHES) -> list[dict[str, Tensor]]:
        """Training batches with little padding that stay random: :func:`length_grouped_chunks` of this split's
        lengths, each batch trimmed to its own longest sequence. Every example is in exactly one batch; the order is
        a function of the generator's state only."""
        return self._gather(length_grouped_chunks(self.lengths.cpu(), batch_size, generator, mega_batches))

    def _gather(self, chunks: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        out = []
        for chunk in chunks:
            index = chunk.to(self.device)
            width = max(int(self.lengths.index_select(0, index).max()), 1)
            batch = {k: getattr(self, k).index_select(0, index)[:, :width] for k in _SEQ_KEYS}
            batch["labels"] = self.labels.index_select(0, index)
            out.append(batch)
        return out


def length_grouped_chunks(lengths: Tensor, batch_size: int, generator: torch.Generator,
                          mega_batches: int = LENGTH_GROUP_MEGA_BATCHES) -> list[Tensor]:
    """Row indices of length-bucketed training batches (``TrainHyper.length_bucketed``), as Hugging Face's
    ``LengthGroupedSampler`` does it:

    1. ``torch.randperm(n, generator=generator)`` -- the first draw is exactly the random order's
       (:meth:`TokenizedSplit.batches` with ``shuffle=True``);
    2. cut it into mega-batches of ``mega_batches x batch_size`` consecutive examples and sort each by length,
       longest first (stable, so ties keep their random order);
    3. split into batches of ``batch_size`` -- the mega-batch size is a multiple of it, so no batch straddles two
       mega-batches and only the epoch's last batch can be partial, as in the random order (same steps per epoch);
    4. shuffle the batch order with a second draw from the same generator.

    Why mega-batches and not one global sort (``batches(shuffle=True, sort_by_length=True)``): a global sort makes
    every epoch's batches nearly the same sets of similar-length neighbours (only ties are re-drawn), so the
    gradient noise is correlated with length and across epochs; within a random mega-batch the composition of a
    batch changes from epoch to epoch while padding still falls. On a split of at most ``mega_batches x
    batch_size`` examples the two coincide but for the tie-breaking (the cpu profile's 256 examples at batch 8).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if mega_batches < 1:
        raise ValueError(f"mega_batches must be >= 1, got {mega_batches}")
    order = torch.randperm(len(lengths), generator=generator)
    span = mega_batches * batch_size
    grouped = []
    for mega in torch.split(order, span):
        grouped.append(mega[torch.sort(lengths[mega], descending=True, stable=True).indices])
    chunks = list(torch.split(torch.cat(grouped), batch_size)) if grouped else []
    perm = torch.randperm(len(chunks), generator=generator).tolist()
    return [chunks[i] for i in perm]


def subset_indices(
    n_total: int, size: int, seed: int, labels: Sequence[int] | np.ndarray | None = None
) -> list[int]:
    """A deterministic, sorted subset of ``range(n_total)`` of ``size`` rows (all rows when ``size >= n_total``).

    Uses its own ``numpy.random.default_rng(seed)``. With ``labels``, the subset is stratified: each class gets its
    share of ``size`` (largest remainder), so a small subset keeps the split's label balance.
    """
    if size < 1:
        raise ValueError(f"subset size must be >= 1, got {size}")
    if size >= n_total:
        return list(range(n_total))
    rng = np.random.default_rng(seed)
    if labels is None:
        return sorted(int(i) for i in rng.choice(n_total, size=size, replace=False))
    labels_arr = np.asarray(labels)
    if labels_arr.shape != (n_total,):
        raise ValueError(f"labels must have length n_total={n_total}, got shape {labels_arr.shape}")
    classes, counts = np.unique(labels_arr, return_counts=True)
    quotas = counts * size / n_total
    take = np.floor(quotas).astype(int)
    remainder_order = np.argsort(-(quotas - take), kind="stable")
    take[remainder_order[: size - int(take.sum())]] += 1
    chosen: list[int] = []
    for cls, k in zip(classes, take, strict=True):
        members = np.flatnonzero(labels_arr == cls)
        chosen.extend(int(i) for i in rng.choice(members, size=int(k), replace=False))
    return sorted(chosen)


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """What about a tokenizer changes its output: class, vocabulary hash, casing and special tokens."""
    vocab = tokenizer.get_vocab()
    digest = hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode("utf-8")).hexdigest()
    return {
        "class": type(tokenizer).__name__,
        "vocab_sha256": digest[:16],
        "vocab_size": len(vocab),
        "do_lower_case": getattr(tokenizer, "do_lower_case", None),
        "special_tokens": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "padding_side": getattr(tokenizer, "padding_side", "right"),
        "truncation_side": getattr(tokenizer, "truncation_side", "right"),
    }


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Argument, else ``REPRO_CACHE_DIR``, else ``~/.cache/repro/tokenized``."""
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "repro" / "tokenized"


def _tokenize(spec: TaskSpec, ds: Any, tokenizer: Any, max_length: int) -> dict[str, Tensor]:
    texts = [list(ds[f]) for f in spec.text_fields]  # datasets>=4 returns lazy Column objects
    enc = tokenizer(
        *texts,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=True,
        return_token_type_ids=True,
    )
    ids = enc["input_ids"]
    n = len(ids)
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=n)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = np.full((n, max_length), pad_id, dtype=np.int64)
    token_type_ids = np.zeros((n, max_length), dtype=np.int64)
    types = enc.get("token_type_ids")
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        if types is not None:
            token_type_ids[i, : len(row)] = types[i]
    attention_mask = (np.arange(max_length)[None, :] < lengths[:, None]).astype(np.int64)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention_mask),
        "token_type_ids": torch.from_numpy(token_type_ids),
        "labels": torch.tensor(list(ds["label"]), dtype=torch.int64),
        "lengths": torch.from_numpy(lengths),
        "idx": torch.tensor(list(ds["idx"]), dtype=torch.int64),
    }


def _load_cached(tensor_path: Path, meta_path: Path, key: dict[str, Any]) -> dict[str, Tensor] | None:
    if not (tensor_path.is_file() and meta_path.is_file()):
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        meta = read_json(meta_path)
        if meta.get("key") != key:
            return None  # a hash collision, or an entry from an older format: rebuild rather than trust it
        stored = load_file(str(tensor_path))
    except (OSError, ValueError, SafetensorError) as e:  # truncated or corrupt entry: rebuild it
        log.info("ignoring unreadable tokenized cache %s: %s", tensor_path, e)
        return None
    # Stored trimmed to the split's longest sequence, in int32, to keep disk small; widen back here.
    max_length = int(key["max_length"])
    out: dict[str, Tensor] = {}
    for k in _SEQ_KEYS:
        t = stored[k].to(torch.int64)
        fill = int(meta["pad_token_id"]) if k == "input_ids" else 0
        full = torch.full((t.shape[0], max_length), fill, dtype=torch.int64)
        full[:, : t.shape[1]] = t
        out[k] = full
    for k in ("labels", "lengths", "idx"):
        out[k] = stored[k].to(torch.int64)
    return out


def _save_cached(tensor_path: Path, meta_path: Path, key: dict[str, Any], tensors: dict[str, Tensor],
                 pad_token_id: int) -> None:
    from safetensors.torch import save_file

    width = max(int(tensors["lengths"].max()), 1)
    stored = {k: tensors[k][:, :width].to(torch.int32).contiguous() for k in _SEQ_KEYS}
    stored.update({k: tensors[k].contiguous() for k in ("labels", "lengths", "idx")})
    atomic_save(tensor_path, lambda tmp: save_file(stored, tmp, metadata={"format": str(CACHE_FORMAT)}))
    write_json(meta_path, {"key": key, "rows": len(tensors["labels"]), "pad_token_id": pad_token_id})


def prepare_split(
    task: str | TaskSpec,
    split: str,
    tokenizer: Any,
    *,
    tokenizer_id: str,
    max_length: int,
    subset_size: int | None = None,
    subset_seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> TokenizedSplit:
    """Load, subset (stratified by label, deterministic in ``subset_seed``), tokenize and cache one split.

    Two-field tasks are tokenized as pairs; sequences longer than ``max_length`` are truncated (longest first).
    ``tokenizer_id`` is the model name recorded in the cache key next to the tokenizer's own fingerprint.
    """
    spec = get_task(task)
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")
    source = locate_split(spec, split, data_dir)
    key = {
        "format": CACHE_FORMAT,
        "task": spec.name,
        "split": source.split,
        "tokenizer_id": tokenizer_id,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_length": max_length,
        "subset_size": subset_size,
        "subset_seed": subset_seed if subset_size is not None else None,
        "source": source.identity(),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    root = resolve_cache_dir(cache_dir)
    tensor_path = root / f"{spec.name}-{source.split}-{digest}.safetensors"
    meta_path = root / f"{spec.name}-{source.split}-{digest}.json"

    tensors = _load_cached(tensor_path, meta_path, key)
    if tensors is None:
        ds = read_source(source)
        if subset_size is not None:
            ds = ds.select(subset_indices(len(ds), subset_size, subset_seed, labels=list(ds["label"])))
        tensors = _tokenize(spec, ds, tokenizer, max_length)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        _save_cached(tensor_path, meta_path, key, tensors, int(pad_id))
    return TokenizedSplit(**tensors, task=spec.name, split=source.split, num_labels=spec.num_labels)
