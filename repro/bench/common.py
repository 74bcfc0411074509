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

RESULTS_DIR = Path("bench/results")


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
    return RESULTS_DIR / f"{name}-{device.type}.json"


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
