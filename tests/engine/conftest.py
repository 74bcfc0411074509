"""Shared fixtures for the engine tests: a quadratic model with a known Hessian, a tiny BERT, synthetic batches."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn


class Quadratic(nn.Module):
    """f(x) = ½xᵀAx + bᵀx in float64. Batches only contribute their example count, so the example-weighted
    mean loss over any batches is exactly f(x)."""

    def __init__(self, A: Tensor, b: Tensor, x0: Tensor) -> None:
        super().__init__()
        self.register_buffer("A", A)
        self.register_buffer("b", b)
        self.x = nn.Parameter(x0.clone())

    def value(self) -> Tensor:
        return 0.5 * self.x @ self.A @ self.x + self.b @ self.x


def quad_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, int]:
    n = int(batch["labels"].shape[0])
    return model.value() * n, torch.zeros((), dtype=torch.float64), n


def make_quadratic(n: int = 12, seed: int = 0, psd: bool = False) -> Quadratic:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = m @ m.T / n if psd else (m + m.T) / 2
    b = torch.randn(n, generator=g, dtype=torch.float64)
    x0 = torch.randn(n, generator=g, dtype=torch.float64)
    return Quadratic(A, b, x0)


def label_batches(sizes: list[int]) -> list[dict[str, Tensor]]:
    return [{"labels": torch.zeros(s, dtype=torch.long)} for s in sizes]


def synthetic_batches(n_batches: int = 2, batch_size: int = 4, max_len: int = 12, seed: int = 0,
                      num_labels: int = 2) -> list[dict[str, Tensor]]:
    """Random token ids 1000..2000, random lengths padded with 0, seeded."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        lengths = torch.randint(3, max_len + 1, (batch_size,), generator=g)
        L = int(lengths.max())
        ids = torch.randint(1000, 2000, (batch_size, L), generator=g)
        mask = (torch.arange(L).unsqueeze(0) < lengths.unsqueeze(1)).long()
        out.append({"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
                    "labels": torch.randint(0, num_labels, (batch_size,), generator=g)})
    return out


def rebatch(batches: list[dict[str, Tensor]], size: int) -> list[dict[str, Tensor]]:
    """Same examples, different batch size (pads to each new batch's longest example)."""
    rows = []
    for b in batches:
        for i in range(b["labels"].shape[0]):
            n = int(b["attention_mask"][i].sum())
            rows.append({k: (v[i, :n] if v.ndim == 2 else v[i]) for k, v in b.items()})
    out = []
    for s in range(0, len(rows), size):
        chunk = rows[s : s + size]
        L = max(r["input_ids"].shape[0] for r in chunk)
        batch = {}
        for k in ("input_ids", "attention_mask", "token_type_ids"):
            batch[k] = torch.stack([torch.nn.functional.pad(r[k], (0, L - r[k].shape[0])) for r in chunk])
        batch["labels"] = torch.stack([r["labels"] for r in chunk])
        out.append(batch)
    return out


@pytest.fixture(scope="session")
def tiny_bert() -> nn.Module:
    from repro.models.zoo import load_model

    model = load_model("tiny-random", "pretrained", 2, seed=0)
    model.eval()
    return model


@pytest.fixture
def tiny_model(tiny_bert: nn.Module) -> nn.Module:
    """A fresh copy per test so in-place changes cannot leak between tests."""
    import copy

    return copy.deepcopy(tiny_bert)


@pytest.fixture(scope="session", autouse=True)
def _single_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine OpenMP threads fighting
    other processes make a forward pass 100x slower. Restored after the session."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
