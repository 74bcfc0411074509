"""Top Hessian eigenvalues: Lanczos with full reorthogonalisation, and power iteration (PyHessian's method).

Results carry their own quality -- explicit residuals ‖Hv − λv‖, a converged flag, the number of matvecs -- so a
caller asserts on convergence instead of trusting a number. Lanczos keeps every Krylov vector and
reorthogonalises twice ("twice is enough"), which costs memory (k·n floats) but gives clean top-k spectra in few
matvecs; power iteration needs only two vectors but converges at rate λ2/λ1 and deflates one eigenpair at a time.
Start vectors come from a private generator seeded explicitly, drawn in float64 on the CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from repro.curvature.operators import Operator


@dataclass(frozen=True)
class EigenResult:
    """Eigenvalues in the order requested (``LA``: largest first; ``LM``: largest magnitude first)."""

    eigenvalues: tuple[float, ...]
    residuals: tuple[float, ...]  # ‖H v_i − λ_i v_i‖ with ‖v_i‖ = 1
    converged: bool
    num_matvecs: int
    tol: float
    method: str
    seed: int
    eigenvectors: Tensor | None = dataclasses.field(default=None, compare=False, repr=False)  # [k, n]

    def without_vectors(self) -> EigenResult:
        """The JSON-serialisable part."""
        return dataclasses.replace(self, eigenvectors=None)


def _start(op: Operator, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(int(seed))
    v = torch.randn(op.size, generator=g, dtype=torch.float64)
    return (v / v.norm()).to(device=op.device, dtype=op.dtype)


def _order(vals: Tensor, which: str) -> Tensor:
    if which == "LA":
        return torch.argsort(vals, descending=True)
    if which == "LM":
        return torch.argsort(vals.abs(), descending=True)
    raise ValueError("which must be 'LA' (largest algebraic) or 'LM' (largest magnitude)")


def lanczos(
    op: Operator,
    k: int = 1,
    *,
    tol: float = 1e-4,
    max_iter: int = 100,
    seed: int = 0,
    which: str = "LA",
    return_vectors: bool = False,
    check_every: int = 1,
) -> EigenResult:
    """Top-k eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation.

    Stops when every wanted Ritz pair's residual estimate |β_m s_{m,i}| is below ``tol·|λ_1|`` (relative to the
    largest wanted eigenvalue's magnitude), or after ``max_iter`` steps. Residuals are then recomputed explicitly
    (k more matvecs, counted) and ``converged`` is decided on those.
    """
    n = op.size
    k = min(k, n)
    m_max = min(max_iter, n)
    start_count = op.num_matvecs
    # The Krylov basis grows by doubling: allocating all max_iter+1 rows up front (hundreds of MB for a BERT group)
    # costs more than the few iterations λ_max usually needs.
    Q = torch.empty((min(m_max + 1, max(2 * k + 2, 8)), n), dtype=op.dtype, device=op.device)
    Q[0] = _start(op, seed)
    alphas: list[float] = []
    betas: list[float] = []
    m = 0
    for j in range(m_max):
        w = op.matvec(Q[j])
        a = float(torch.dot(w.double(), Q[j].double()))
        w = w - a * Q[j]
        if j > 0:
            w = w - betas[-1] * Q[j - 1]
        for _ in range(2):  # full reorthogonalisation, twice
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        b = float(w.double().norm())
        alphas.append(a)
        m = j + 1
        if m >= k and (m % check_every == 0 or m == m_max):
            theta, s = _tridiag_eig(alphas, betas)
            idx = _order(theta, which)[:k]
            scale = float(theta[idx].abs().max()) or 1.0
            est = (b * s[-1, idx]).abs()
            if bool((est <= tol * scale).all()):
                break
        if b <= 1e-12 * max(1.0, max(abs(x) for x in alphas)):
            break  # invariant subspace: the Ritz values are exact
        betas.append(b)
        if j + 1 >= Q.shape[0]:
            grown = torch.empty((min(m_max + 1, 2 * Q.shape[0]), n), dtype=op.dtype, device=op.device)
            grown[: Q.shape[0]] = Q
            Q = grown
        Q[j + 1] = w / b
    theta, s = _tridiag_eig(alphas, betas[: m - 1])
    idx = _order(theta, which)[:k]
    vecs = (s[:, idx].T.to(op.dtype) @ Q[:m])  # [k, n]
    vals = theta[idx]
    residuals = []
    for i in range(len(idx)):
        v = vecs[i] / vecs[i].norm()
        vecs[i] = v
        r = op.matvec(v) - float(vals[i]) * v
        residuals.append(float(r.double().norm()))
    scale = float(vals.abs().max()) or 1.0
    converged = all(r <= tol * scale for r in residuals)
    return EigenResult(
        tuple(float(x) for x in vals), tuple(residuals), converged, op.num_matvecs - start_count, tol, "lanczos",
        int(seed), vecs if return_vectors else None,
    )


def _tridiag_eig(alphas: list[float], betas: list[float]) -> tuple[Tensor, Tensor]:
    m = len(alphas)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(betas[: m - 1], dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigh(T)


def power_iteration(
    op: Operator,
    k: int = 1,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    return_vectors: bool = False,
) -> EigenResult:
    """PyHessian's method: power iteration with deflation (orthogonalise against found vectors), stopping when
    |λ_t − λ_{t−1}| / (|λ_{t−1}| + 1e-6) < tol. Finds largest-*magnitude* eigenvalues. The residual reported is
    that of the last iterate v with λ = vᵀHv (no extra matvec); ``converged`` means the stopping rule fired."""
    start_count = op.num_matvecs
    g = torch.Generator().manual_seed(int(seed))
    found: list[Tensor] = []
    vals, residuals = [], []
    all_conv = True
    for _ in range(k):
        v = torch.randn(op.size, generator=g, dtype=torch.float64).to(device=op.device, dtype=op.dtype)
        v = v / v.norm()
        lam_prev: float | None = None
        conv = False
        res = float("nan")
        lam = 0.0
        for _ in range(max_iter):
            for u in found:
                v = v - torch.dot(v, u) * u
            v = v / v.norm()
            hv = op.matvec(v)
            lam = float(torch.dot(hv.double(), v.double()))
            res = float((hv - lam * v).double().norm())
            nrm = hv.norm()
            if float(nrm) == 0.0:
                conv = True
                break
            v_next = hv / nrm
            if lam_prev is not None and abs(lam - lam_prev) / (abs(lam_prev) + 1e-6) < tol:
                conv = True
                break
            lam_prev = lam
            v = v_next
        found.append(v)
        vals.append(lam)
        residuals.append(res)
        all_conv &= conv
    return EigenResult(
        tuple(vals), tuple(residuals), all_conv, op.num_matvecs - start_count, tol, "power", int(seed),
        torch.stack(found) if return_vectors else None,
    )
