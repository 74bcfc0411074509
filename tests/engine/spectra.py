"""Symmetric matrices with a planted spectrum: the oracle of the eigensolver tests is the spectrum put in, not
another solver's output."""

from __future__ import annotations

import numpy as np
import torch


def known_spectrum(eigs: list[float], n: int | None = None, *, seed: int = 0,
                   rest: float = 0.1) -> tuple[torch.Tensor, np.ndarray]:
    """Q·diag(λ)·Qᵀ (float64) with the given top eigenvalues, the other n−k spread evenly in [−rest, rest], and a
    random rotation Q seeded by ``seed``; n defaults to len(eigs). Returns the matrix and λ."""
    n = len(eigs) if n is None else n
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    lam = np.concatenate([np.asarray(eigs, dtype=np.float64), np.linspace(-rest, rest, n - len(eigs))])
    return q @ torch.diag(torch.from_numpy(lam)) @ q.T, lam
