"""A small float64 classifier with a forward-pass counter, for the evaluator and grid tests.

Small enough that a grid of points takes milliseconds, float64 so the vmapped and the per-point paths must agree to
~1e-12, with dropout so a forgotten ``eval()`` shows, and a counter so a test can see how many forward passes a grid
cost (``vmap_points`` exists to evaluate several points per pass)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.landscape import ParamVector


class CountingClassifier(nn.Module):
    """x ∈ R⁴ → 3 logits through one tanh layer; ``forwards`` counts calls of :meth:`forward`."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.l1 = nn.Linear(4, 6, dtype=torch.float64)
        self.l2 = nn.Linear(6, 3, dtype=torch.float64)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
        self.drop = nn.Dropout(0.5)
        self.forwards = 0

    def forward(self, x: Tensor) -> Tensor:
        self.forwards += 1
        return self.l2(self.drop(torch.tanh(self.l1(x))))


def logits_of(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    return model(batch["x"])


def ce_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, int]:
    logits = logits_of(model, batch)
    labels = batch["labels"]
    return F.cross_entropy(logits, labels, reduction="sum"), (logits.argmax(-1) == labels).sum(), int(labels.shape[0])


def batches(sizes: list[int], seed: int) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(s, 4, generator=g, dtype=torch.float64),
             "labels": torch.randint(0, 3, (s,), generator=g)} for s in sizes]


def random_vector(like: ParamVector, seed: int, scale: float = 1.0) -> ParamVector:
    g = torch.Generator().manual_seed(seed)
    return ParamVector(like.names, tuple(scale * torch.randn(t.shape, generator=g, dtype=t.dtype)
                                         for t in like.tensors))


def oracle(model: CountingClassifier, point: ParamVector, data: list[dict[str, Tensor]]) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over all examples of ``data`` at ``point``, computed without the library's
    evaluator: a fresh copy of the model, parameters loaded by name, one concatenated batch."""
    import copy

    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for n, t in zip(point.names, point.tensors):
            dict(m.named_parameters())[n].copy_(t)
        x = torch.cat([b["x"] for b in data])
        y = torch.cat([b["labels"] for b in data])
        logits = m(x)
        return float(F.cross_entropy(logits, y)), float((logits.argmax(-1) == y).double().mean())


__all__ = ["CountingClassifier", "batches", "ce_loss", "logits_of", "oracle", "random_vector"]
