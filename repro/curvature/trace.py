"""Hessian trace by Hutchinson's estimator (Rademacher probes), with its standard error; Hutch++ as an option.

tr(H) = E[zᵀHz] for Rademacher z. The standard error is the sample standard deviation of zᵀHz over √n, so callers
can state the estimate as "t ± 2·se". Hutch++ (Meyer et al. 2021) first removes a low-rank sketch of H's top
subspace exactly, which helps when a few eigenvalues dominate the trace -- typical of trained networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from repro.curvature.operators import Operator


@dataclass(frozen=True)
class TraceResult:
    estimate: float
    stderr: float
    num_samples: int
    num_matvecs: int
    method: str
    seed: int


def _rademacher(n: int, g: torch.Generator, op: Operator, cols: int | None = None) -> Tensor:
    shape = (n,) if cols is None else (n, cols)
    z = torch.randint(0, 2, shape, generator=g, dtype=torch.int8).to(torch.float64) * 2 - 1
    return z.to(device=op.device, dtype=op.dtype)


def _check_batch_vectors(batch_vectors: int) -> None:
    if batch_vectors < 1:
        raise ValueError(f"batch_vectors must be at least 1, got {batch_vectors}")


def _products(op: Operator, Z: Tensor, batch_vectors: int) -> Tensor:
    """H z for the rows z of ``Z``: one product each (``batch_vectors=1``) or batched products
    (:meth:`Operator.matmat`) of up to ``batch_vectors`` rows."""
    if batch_vectors == 1:
        return torch.stack([op.matvec(Z[i]) for i in range(Z.shape[0])])
    return torch.cat([op.matmat(Z[s : s + batch_vectors]) for s in range(0, Z.shape[0], batch_vectors)])


def hutchinson_trace(op: Operator, num_samples: int = 100, *, seed: int = 0, batch_vectors: int = 1) -> TraceResult:
    """Hutchinson's estimate of tr(H) with standard error (n ≥ 2 samples).

    ``batch_vectors`` > 1 applies H to that many probes at once (:meth:`Operator.matmat`; the same probes, in the
    same order, so the estimate agrees with ``batch_vectors=1`` to rounding, and the products counted are the same),
    holding that many probes and products in memory. Default 1 (one probe after the other): on the CPU a batched
    product was not faster per vector (:func:`repro.bench.hvp.batched_products_comparison`)."""
    if num_samples < 2:
        raise ValueError("need at least 2 samples for a standard error")
    _check_batch_vectors(batch_vectors)
    g = torch.Generator().manual_seed(int(seed))
    start = op.num_matvecs
    vals = []
    if batch_vectors == 1:
        for _ in range(num_samples):
            z = _rademacher(op.size, g, op)
            vals.append(float(torch.dot(z.double(), op.matvec(z).double())))
    else:
        for first in range(0, num_samples, batch_vectors):
            Z = torch.stack([_rademacher(op.size, g, op) for _ in range(min(batch_vectors, num_samples - first))])
            HZ = op.matmat(Z)
            vals += [float(torch.dot(Z[i].double(), HZ[i].double())) for i in range(Z.shape[0])]
    t = torch.tensor(vals, dtype=torch.float64)
    return TraceResult(float(t.mean()), float(t.std(unbiased=True)) / math.sqrt(num_samples), num_samples,
                       op.num_matvecs - start, "hutchinson", int(seed))


def hutchpp_trace(op: Operator, num_matvecs: int = 99, *, seed: int = 0, batch_vectors: int = 1) -> TraceResult:
    """Hutch++: tr(QᵀHQ) for an orthonormal sketch Q of H·S, plus Hutchinson on (I−QQᵀ)H(I−QQᵀ).

    Uses ``num_matvecs`` matvecs split in thirds, m = max(3, num_matvecs // 3) each (sketch, exact part, residual
    probes): 3m matvecs, so a budget under 9 still spends 9. The standard error covers the residual Hutchinson part
    only (the sketched part is exact).

    An operator no larger than those 3m matvecs (``op.size <= 3m``) gets its exact trace instead: Σ eᵢᵀHeᵢ over
    the standard basis, ``op.size`` matvecs (never more than 3m), stderr 0, ``method="exact"``,
    ``num_samples = op.size``. Why: with size ≤ m the sketch is a basis of the whole space (its exact part alone is
    the trace) and the last third are probes projected to zero; with m < size ≤ 3m the n basis vectors cost no more
    than Hutch++ and leave no error.

    ``batch_vectors`` > 1 applies H to up to that many of the sketch, basis and probe vectors at once
    (:meth:`Operator.matmat`), with the same vectors and products counted as the default 1 (one at a time).
    """
    _check_batch_vectors(batch_vectors)
    start = op.num_matvecs
    m = max(3, num_matvecs // 3)
    if op.size <= 3 * m and batch_vectors > 1:
        E = torch.eye(op.size, dtype=torch.float64).to(device=op.device, dtype=op.dtype)
        total = float(torch.diagonal(_products(op, E, batch_vectors).double()).sum())
        return TraceResult(total, 0.0, op.size, op.num_matvecs - start, "exact", int(seed))
    if op.size <= 3 * m:
        eye = torch.eye(op.size, dtype=torch.float64)
        total = sum(float(op.matvec(eye[i].to(device=op.device, dtype=op.dtype)).double()[i]) for i in range(op.size))
        return TraceResult(total, 0.0, op.size, op.num_matvecs - start, "exact", int(seed))
    g = torch.Generator().manual_seed(int(seed))
    S = _rademacher(op.size, g, op, m)
    if batch_vectors > 1:
        HS = _products(op, S.T.contiguous(), batch_vectors).T
    else:
        HS = torch.stack([op.matvec(S[:, i]) for i in range(m)], dim=1)
    Q, _ = torch.linalg.qr(HS.double())
    Q = Q.to(op.dtype)
    if batch_vectors > 1:
        QT = Q.T.contiguous()
        HQ = _products(op, QT, batch_vectors)
        exact = sum(float(torch.dot(QT[i].double(), HQ[i].double())) for i in range(QT.shape[0]))
        Z = torch.stack([_rademacher(op.size, g, op) for _ in range(m)])
        Z = torch.stack([z - Q @ (Q.T @ z) for z in Z])
        HZ = _products(op, Z, batch_vectors)
        vals = [float(torch.dot(Z[i].double(), HZ[i].double())) for i in range(m)]
    else:
        exact = sum(float(torch.dot(Q[:, i].double(), op.matvec(Q[:, i]).double())) for i in range(Q.shape[1]))
        vals = []
        for _ in range(m):
            z = _rademacher(op.size, g, op)
            z = z - Q @ (Q.T @ z)
            vals.append(float(torch.dot(z.double(), op.matvec(z).double())))
    t = torch.tensor(vals, dtype=torch.float64)
    return TraceResult(exact + float(t.mean()), float(t.std(unbiased=True)) / math.sqrt(m), m,
                       op.num_matvecs - start, "hutch++", int(seed))
