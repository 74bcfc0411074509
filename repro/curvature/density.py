"""Hessian eigenvalue density by stochastic Lanczos quadrature (SLQ; Lin, Saad & Yang 2016; Ghorbani et al. 2019,
the method of PyHessian's ``density`` and google/spectral-density).

For a unit probe v, m Lanczos steps give a tridiagonal T_m with eigenpairs (θ_j, s_j); the nodes θ_j and weights
τ_j = s_{1j}² are the m-point Gauss quadrature of the spectral measure μ_v = Σ_i (vᵀu_i)² δ(λ_i), exact for
polynomials of degree ≤ 2m−1. Averaged over random probes (E[(vᵀu_i)²] = 1/n), μ_v estimates the eigenvalue
density (1/n) Σ_i δ(λ_i). The discrete nodes are broadened by Gaussians of width σ for a plotted density.

Deflation: eigenpairs already found (top-k Lanczos) are projected out of every probe and every Krylov vector, so the
Lanczos runs see P H P on the orthogonal complement (n − k dimensions); they come back as point masses 1/n each. The
outliers then neither take Lanczos steps from the bulk nor add their large, probe-dependent weights to its variance.

Trace: per probe z (Rademacher ±1 or Gaussian, projected if deflating), zᵀHz = ‖z‖²·Σ_j τ_j θ_j, so the trace
estimate is Σλ_defl + mean ‖z‖²·(first moment) -- for undeflated Rademacher probes exactly Hutchinson's estimator
(‖z‖² = n), reported with its standard error over probes. The second moment Σ τ_j θ_j² estimates tr(H²)/n = ‖H‖_F²/n
in the same way (exact quadrature for m ≥ 2).

Quality: ``density_change`` is the total-variation distance between the density from all m steps and from the first
⌈m/2⌉ (the same runs, truncated T): a density that still moves when the steps double is not resolved at σ.
Lanczos vectors use full reorthogonalisation (as :func:`~repro.curvature.eigen.lanczos`); an invariant subspace ends
a probe's run early with exact quadrature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from repro.curvature.eigen import EigenResult, tridiagonal_eigh
from repro.curvature.operators import Operator

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy >= 2 renamed it; the project allows 1.26
SIGMA_FRACTION = 0.01  # default broadening: σ = 1 % of the spectrum's width (see spectral_density)
PROBES = ("rademacher", "gaussian")


@dataclass(frozen=True)
class DensityResult:
    """An SLQ eigenvalue density. ``nodes``/``weights``: per probe, the Ritz values and Gauss weights (summing to 1)
    of the (deflated) operator; ``grid``/``density``: the broadened density (point masses included), integrating to
    1 over the grid; moments are of the whole spectrum (deflated eigenvalues included)."""

    nodes: tuple[tuple[float, ...], ...]
    weights: tuple[tuple[float, ...], ...]
    grid: tuple[float, ...]
    density: tuple[float, ...]
    sigma: float
    trace: float
    trace_stderr: float
    first_moment: float  # trace / size
    second_moment: float  # ‖H‖_F² / size
    deflated_eigenvalues: tuple[float, ...]
    size: int
    num_probes: int
    num_steps: int  # requested per probe
    steps: tuple[int, ...]  # taken per probe (fewer at an invariant subspace or when size - k < num_steps)
    num_matvecs: int
    probe: str
    seed: int
    density_change: float  # total variation between the m-step and the ⌈m/2⌉-step density
    tol: float
    converged: bool  # density_change <= tol

    def mass(self, lo: float, hi: float) -> float:
        """The density's mass on [lo, hi] (trapezoid rule on the grid)."""
        g, d = np.asarray(self.grid), np.asarray(self.density)
        keep = (g >= lo) & (g <= hi)
        return float(_trapezoid(d[keep], g[keep])) if keep.sum() > 1 else 0.0


def _probe(op: Operator, g: torch.Generator, kind: str) -> Tensor:
    if kind == "rademacher":
        z = torch.randint(0, 2, (op.size,), generator=g, dtype=torch.int8).to(torch.float64) * 2 - 1
    else:
        z = torch.randn(op.size, generator=g, dtype=torch.float64)
    return z.to(device=op.device, dtype=op.dtype)


def _project(x: Tensor, U: Tensor | None) -> Tensor:
    return x if U is None else x - U.T @ (U @ x)


def _lanczos_run(op: Operator, v: Tensor, steps: int, U: Tensor | None) -> tuple[list[float], list[float]]:
    """α, β of ``steps`` Lanczos steps from unit ``v`` on P H P (P projects out the rows of U), with full
    reorthogonalisation against the basis and U, twice."""
    Q = torch.empty((steps, op.size), dtype=op.dtype, device=op.device)
    Q[0] = v
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(steps):
        if not _lanczos_step(Q, j, op.matvec(Q[j]), alphas, betas, steps, U):
            break
    return alphas, betas


def _lanczos_step(Q: Tensor, j: int, hq: Tensor, alphas: list[float], betas: list[float], steps: int,
                  U: Tensor | None) -> bool:
    """Step j of one run, given hq = H Q[j]: appends α_j (and β_j, writing Q[j+1]); False when the run ends here."""
    w = _project(hq, U)
    basis = Q[: j + 1]
    c = basis @ w
    w = torch.addmv(w, basis.T, c, alpha=-1.0)
    c2 = basis @ w
    w.addmv_(basis.T, c2, alpha=-1.0)  # (the basis lies in U's complement: no U component comes back)
    alphas.append(float(c[j].double() + c2[j].double()))
    b = float(torch.linalg.vector_norm(w))
    if j + 1 == steps or b <= 1e-12 * max(1.0, max(abs(a) for a in alphas)):
        return False  # done, or an invariant subspace: the quadrature is exact
    betas.append(b)
    torch.div(w, b, out=Q[j + 1])
    return True


def _lanczos_runs_lockstep(op: Operator, vs: list[Tensor], steps: int,
                           U: Tensor | None) -> list[tuple[list[float], list[float]]]:
    """:func:`_lanczos_run` for several unit probes at once: the runs still going take their step j together, from
    one batched product (:meth:`Operator.matmat`) of their current Lanczos vectors; each run's recurrence is the
    sequential one (:func:`_lanczos_step`), and a run that ends early drops out of the later products. Memory: one
    Krylov basis per probe (``len(vs) × steps × size`` numbers)."""
    Qs = [torch.empty((steps, op.size), dtype=op.dtype, device=op.device) for _ in vs]
    for Q, v in zip(Qs, vs):
        Q[0] = v
    runs: list[tuple[list[float], list[float]]] = [([], []) for _ in vs]
    active = list(range(len(vs)))
    for j in range(steps):
        if not active:
            break
        HQ = op.matmat(torch.stack([Qs[i][j] for i in active]))
        active = [i for r, i in enumerate(active) if _lanczos_step(Qs[i], j, HQ[r], *runs[i], steps, U)]
    return runs


def _quadrature(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    theta, s = tridiagonal_eigh(alphas, betas)
    return theta, s[0] ** 2


def _broadened(grid: np.ndarray, nodes: list[np.ndarray], weights: list[np.ndarray], bulk_mass: float,
               points: np.ndarray, point_mass: float, sigma: float) -> np.ndarray:
    def gauss(centres: np.ndarray, w: np.ndarray) -> np.ndarray:
        if centres.size == 0:
            return np.zeros_like(grid)
        z = (grid[:, None] - centres[None, :]) / sigma
        return (np.exp(-0.5 * z * z) / (sigma * math.sqrt(2 * math.pi))) @ w

    bulk = sum(gauss(n, w) for n, w in zip(nodes, weights)) / len(nodes)
    return bulk_mass * bulk + point_mass * gauss(points, np.ones_like(points))


def spectral_density(
    op: Operator,
    *,
    num_probes: int = 4,
    num_steps: int = 80,
    probe: str = "rademacher",
    seed: int = 0,
    deflate: EigenResult | None = None,
    sigma: float | None = None,
    grid_size: int = 1000,
    grid_range: tuple[float, float] | None = None,
    tol: float = 0.1,
    batch_vectors: int = 1,
) -> DensityResult:
    """Eigenvalue density of a symmetric operator by SLQ: ``num_probes`` seeded probes × ``num_steps`` Lanczos
    steps (``num_probes·num_steps`` matvecs at most), optionally deflating the eigenpairs of ``deflate`` (a
    :func:`~repro.curvature.eigen.lanczos` result with ``return_vectors=True``).

    Broadening: ``sigma`` defaults to ``SIGMA_FRACTION`` (1 %) of the width of the spectrum found (all nodes and
    deflated eigenvalues). Why: one probe's m nodes sit about width/m apart in the bulk, so σ must not be much
    smaller than that for the average over a few probes to read as a curve (m = 80 → 1.25 % of the width), while
    eigenvalues more than ~3σ apart stay separate peaks; Ghorbani et al. use σ² = 1e-5 on a spectrum rescaled to
    [−1, 1] (σ ≈ 0.16 % of the width) with ~10x more nodes. A log-density axis shows both the bulk and outliers of
    mass 1/n. The grid spans ``grid_range`` or [min − 6σ, max + 6σ] with at least ``grid_size`` points and no
    more than σ/4 apart (more points for a small σ), so the density integrates to 1 to ~1e-8.

    Memory: each probe's run keeps its Krylov basis, ``num_steps × size`` numbers (80 × 3.5M float32 = 1.1 GB for
    tiny-minilm's encoder); lower ``num_steps`` for large groups.

    ``batch_vectors`` > 1 runs that many probes' Lanczos recurrences in lockstep, one batched product
    (:meth:`Operator.matmat`) per step for all of them; each probe's recurrence is the sequential one, so the result
    agrees with ``batch_vectors=1`` (the default: one probe after the other) to rounding, and the products counted
    are the same. It holds ``batch_vectors`` Krylov bases at once. Default 1: on the CPU (1 thread, tiny-minilm,
    16 × 32 tokens, float32, 2026-12-07) a batched product was not faster per vector than single products for
    k = 2-8 (0.74-0.96x with a kept graph, 0.91-1.09x building the graph once per call;
    :func:`repro.bench.hvp.batched_products_comparison`); no accelerator was measured.
    """
    if batch_vectors < 1:
        raise ValueError(f"batch_vectors must be at least 1, got {batch_vectors}")
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    if num_probes < 2:
        raise ValueError(f"num_probes must be at least 2 (for the trace's standard error), got {num_probes}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    U: Tensor | None = None
    defl = np.zeros(0)
    if deflate is not None:
        if deflate.eigenvectors is None:
            raise ValueError("deflation needs the eigenvectors: pass lanczos(..., return_vectors=True)")
        Qd, _ = torch.linalg.qr(deflate.eigenvectors.to(device=op.device).double().T)
        U = Qd.T.to(op.dtype)
        defl = np.asarray(deflate.eigenvalues, dtype=np.float64)
    k = len(defl)
    n = op.size
    if k >= n:
        raise ValueError(f"deflating {k} eigenpairs of a {n}-dimensional operator leaves nothing to estimate")
    steps = min(num_steps, n - k)
    g = torch.Generator().manual_seed(int(seed))
    start = op.num_matvecs
    nodes, weights, half_nodes, half_weights, taken = [], [], [], [], []
    traces, seconds = [], []
    for first in range(0, num_probes, batch_vectors):
        chunk = []  # the probes in the order (and from the generator states) of the sequential loop
        for _ in range(min(batch_vectors, num_probes - first)):
            z = _project(_probe(op, g, probe), U)
            chunk.append((z, float(torch.linalg.vector_norm(z.double())) ** 2))
        if len(chunk) == 1:
            runs = [_lanczos_run(op, chunk[0][0] / math.sqrt(chunk[0][1]), steps, U)]
        else:
            runs = _lanczos_runs_lockstep(op, [z / math.sqrt(z2) for z, z2 in chunk], steps, U)
        for (_, z2), (a, b) in zip(chunk, runs):
            theta, tau = _quadrature(a, b)
            nodes.append(theta)
            weights.append(tau)
            h = max(1, math.ceil(len(a) / 2))
            th, tw = _quadrature(a[:h], b[: h - 1])
            half_nodes.append(th)
            half_weights.append(tw)
            taken.append(len(a))
            traces.append(float(defl.sum()) + z2 * float(tau @ theta))
            seconds.append(float((defl**2).sum()) + z2 * float(tau @ theta**2))
    allpts = np.concatenate(nodes + [defl])
    lo, hi = float(allpts.min()), float(allpts.max())
    width = hi - lo
    if sigma is None:
        sigma = SIGMA_FRACTION * width if width > 0 else max(SIGMA_FRACTION * abs(lo), 1e-12)
    glo, ghi = grid_range if grid_range is not None else (lo - 6 * sigma, hi + 6 * sigma)
    size = max(int(grid_size), math.ceil((ghi - glo) / (sigma / 4)) + 1)
    grid = np.linspace(glo, ghi, size)
    bulk_mass, point_mass = (n - k) / n, 1.0 / n
    dens = _broadened(grid, nodes, weights, bulk_mass, defl, point_mass, sigma)
    half = _broadened(grid, half_nodes, half_weights, bulk_mass, defl, point_mass, sigma)
    change = 0.5 * float(_trapezoid(np.abs(dens - half), grid))
    t = np.asarray(traces)
    return DensityResult(
        tuple(tuple(float(x) for x in th) for th in nodes), tuple(tuple(float(x) for x in w) for w in weights),
        tuple(float(x) for x in grid), tuple(float(x) for x in dens), float(sigma), float(t.mean()),
        float(t.std(ddof=1)) / math.sqrt(num_probes), float(t.mean()) / n, float(np.mean(seconds)) / n,
        tuple(float(x) for x in defl), n, int(num_probes), int(num_steps), tuple(taken),
        op.num_matvecs - start, probe, int(seed), change, float(tol), change <= tol,
    )
