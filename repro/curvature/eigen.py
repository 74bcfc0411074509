"""Top Hessian eigenvalues: Lanczos with full reorthogonalisation, and power iteration (PyHessian's method).

Results carry their own quality -- explicit residuals ‖Hv − λv‖, a converged flag, the number of matvecs -- so a
caller asserts on convergence instead of trusting a number. Lanczos keeps every Krylov vector and
reorthogonalises twice ("twice is enough"), which costs memory (k·n floats) but gives clean top-k spectra in few
matvecs; power iteration needs only two vectors but converges at rate λ2/λ1 and deflates one eigenpair at a time.
Start vectors come from a private generator seeded explicitly, drawn in float64 on the CPU.

Device: every vector lives on the operator's device. The small tridiagonal eigenproblem of Lanczos is solved on the
host in float64 by LAPACK's tridiagonal solvers (:func:`tridiagonal_eigh`), which -- unlike a dense
``torch.linalg.eigh`` of T -- do not fail to converge on the nearly-repeated Ritz values of a long run; only its
small result (m×k numbers) is moved to the device. A matvec that returns NaN/Inf raises
:class:`~repro.errors.NonFiniteError` (from :meth:`Operator.matvec`); a solver that does not reach its tolerance
returns ``converged=False`` instead of raising.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.linalg
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
    """The seeded unit start vector, drawn on the CPU (the same numbers on every device) in the operator's precision
    when that is float32 or wider (a float64 draw of a 20M-parameter vector cost as much as a fifth of a product)."""
    g = torch.Generator().manual_seed(int(seed))
    dtype = op.dtype if op.dtype in (torch.float32, torch.float64) else torch.float32
    v = torch.randn(op.size, generator=g, dtype=dtype)
    v /= torch.linalg.vector_norm(v.double()).to(dtype)
    return v.to(device=op.device, dtype=op.dtype)


_DGKS = 0.7071067811865476  # 1/√2: reorthogonalise again when a pass removed more than that share of the norm


def _order(vals: np.ndarray, which: str) -> np.ndarray:
    """Indices of ``vals``, wanted first (stable, so ties keep the solver's ascending order)."""
    if which == "LA":
        return np.argsort(-vals, kind="stable")
    if which == "LM":
        return np.argsort(-np.abs(vals), kind="stable")
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
    criterion: str = "residual",
    explicit_residuals: bool = False,
) -> EigenResult:
    """Top-k eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation.

    ``criterion="residual"`` (default): stops when every wanted Ritz pair's residual estimate |β_m s_{m,i}| is below
    ``tol·|λ_1|`` (relative to the largest wanted eigenvalue's magnitude), or after ``max_iter`` steps. The
    residuals ‖Hy − θy‖ of the Ritz pairs are then recomputed and ``converged`` is decided on those.

    Residuals: the full orthogonalisation records every coefficient of every product, H q_j = Σ_{i≤j+1} h_ij q_i
    (an (m+1)×m Hessenberg matrix Ĥ, not only the tridiagonal α, β), so H y = Q_{m+1} Ĥ s for a Ritz vector
    y = Q_m s by linearity, and ‖Hy − θy‖ = ‖Ĥs − θ[s; 0]‖ for the orthonormal basis: the residual from the products
    already made, no extra product. It is exact (to rounding) for any linear operator -- the coefficients above the
    tridiagonal band, which a non-symmetric operator produces, are included -- unlike the estimate |β_m s_m|.
    ``explicit_residuals=True`` instead applies the operator to each Ritz vector again (k more products, counted):
    for operators that are not exactly linear (finite differences) or not trusted.

    ``criterion="eigenvalue_change"``: PyHessian's rule applied to the Ritz values -- stop when every wanted Ritz
    value changed by less than ``tol·(|previous| + 1e-6)`` since the previous check. It exists so that Lanczos and
    power iteration can be compared at *equal tolerance* (the same rule, the same number); ``converged`` then means
    the rule fired (as for :func:`power_iteration`), ``method`` is ``"lanczos-eigenvalue-change"``, and the explicit
    residuals are still computed and reported, so the accuracy each rule bought stays visible.
    """
    if which not in ("LA", "LM"):  # before spending matvecs
        raise ValueError("which must be 'LA' (largest algebraic) or 'LM' (largest magnitude)")
    if criterion not in ("residual", "eigenvalue_change"):
        raise ValueError(f"criterion must be 'residual' or 'eigenvalue_change', got {criterion!r}")
    _check_max_iter(max_iter)
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
    hess: list[np.ndarray] = []  # the projection coefficients of each product onto q_0..q_j (float64, host)
    prev: np.ndarray | None = None
    rule_fired = False
    for j in range(m_max):
        hq = op.matvec(Q[j])
        # The three-term recurrence w = Hq_j − α q_j − β q_{j−1} and the full reorthogonalisation in one: classical
        # Gram-Schmidt of Hq_j against the whole basis (two matrix-vector products per pass; the q_{j−1}
        # coefficient is β_{j−1} up to rounding), a second pass only where the first cancelled (DGKS). α is the q_j
        # coefficient of the projections (the Rayleigh quotient q_jᵀHq_j), so no separate dot product and no
        # float64 copies of the vectors are needed -- on a 3.5M-parameter group those copies and passes cost about
        # as much as a product. All coefficients are kept (``hess``) for the residuals.
        # The first update is out of place: the product may be the operator's own tensor (for the identity, Q[j]).
        basis = Q[: j + 1]
        c = basis @ hq
        w = torch.addmv(hq, basis.T, c, alpha=-1.0)
        coef = c.double()
        b = float(torch.linalg.vector_norm(w))
        if b < _DGKS * float(torch.linalg.vector_norm(hq)):
            # cancellation (Daniel-Gragg-Kaufman-Stewart): a second pass restores orthogonality to rounding;
            # without cancellation one pass already does, and the second would cost two more passes over Q
            c2 = basis @ w
            w.addmv_(basis.T, c2, alpha=-1.0)
            coef += c2.double()
            b = float(torch.linalg.vector_norm(w))
        hess.append(coef.cpu().numpy())
        a = float(coef[j])
        alphas.append(a)
        m = j + 1
        if m >= k and (m % check_every == 0 or m == m_max):
            theta, s = tridiagonal_eigh(alphas, betas)
            idx = _order(theta, which)[:k]
            scale = float(np.abs(theta[idx]).max()) or 1.0
            if criterion == "residual":
                est = np.abs(b * s[-1, idx])
                if bool((est <= tol * scale).all()):
                    break
            else:
                cur = theta[idx]
                if prev is not None and bool((np.abs(cur - prev) < tol * (np.abs(prev) + 1e-6)).all()):
                    rule_fired = True
                    break
                prev = cur
        if b <= 1e-12 * max(1.0, max(abs(x) for x in alphas)):
            rule_fired = True  # (read only by the eigenvalue-change criterion)
            break  # invariant subspace: the Ritz values are exact
        betas.append(b)
        if j + 1 >= Q.shape[0]:
            grown = torch.empty((min(m_max + 1, 2 * Q.shape[0]), n), dtype=op.dtype, device=op.device)
            grown[: Q.shape[0]] = Q
            Q = grown
        torch.div(w, b, out=Q[j + 1])
    theta, s = tridiagonal_eigh(alphas, betas[: m - 1])
    idx = _order(theta, which)[:k]
    # The Ritz vectors' coefficients (host, float64) travel to the Krylov basis' device, not the other way round.
    coef = torch.from_numpy(np.ascontiguousarray(s[:, idx].T)).to(device=Q.device, dtype=Q.dtype)
    vecs = coef @ Q[:m]  # [k, n]
    vals = theta[idx]
    residuals = []
    if explicit_residuals:
        for i in range(len(idx)):
            v = vecs[i] / vecs[i].norm()
            vecs[i] = v
            r = op.matvec(v) - float(vals[i]) * v
            residuals.append(float(r.double().norm()))
    else:
        H = np.zeros((m + 1, m))
        for jj, col in enumerate(hess[:m]):
            H[: jj + 1, jj] = col
        H[np.arange(1, m), np.arange(m - 1)] = betas[: m - 1]
        H[m, m - 1] = b  # the last product's remainder (≈ 0 at an invariant subspace)
        for i, col in enumerate(idx):
            si = s[:, col]
            r = H @ si
            r[:m] -= vals[i] * si
            residuals.append(float(np.linalg.norm(r)))
            vecs[i] = vecs[i] / vecs[i].norm()
    scale = float(np.abs(vals).max()) or 1.0
    if criterion == "residual":
        converged, method = all(r <= tol * scale for r in residuals), "lanczos"
    else:  # an invariant subspace (met at m = n at the latest) makes the Ritz values exact: the rule counts as fired
        converged, method = rule_fired, "lanczos-eigenvalue-change"
    return EigenResult(
        tuple(float(x) for x in vals), tuple(residuals), converged, op.num_matvecs - start_count, tol, method,
        int(seed), vecs if return_vectors else None,
    )


def _check_max_iter(max_iter: int) -> None:
    """Zero iterations estimate nothing: refuse, rather than return a placeholder eigenvalue with no vector."""
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be at least 1 (got {max_iter}): with no iteration there is no estimate; "
                         "pass max_iter >= 1")


def tridiagonal_eigh(diagonal: list[float] | np.ndarray, off_diagonal: list[float] | np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a symmetric tridiagonal matrix, in float64.

    Why not ``torch.linalg.eigh`` on the dense T: that raised "failed to converge" on a real Lanczos run (issue 8).
    LAPACK's MRRR solver (``stemr``) is tried first; if it reports a failure, the implicit QL/QR solver
    (``stev``), then a dense ``numpy.linalg.eigh`` are tried. Only ``off_diagonal[:m-1]`` is used. Non-finite
    input is a :class:`~repro.errors.NonFiniteError` (a NaN matvec upstream), not a solver failure.
    """
    from repro.errors import NonFiniteError

    d = np.asarray(diagonal, dtype=np.float64).reshape(-1)
    m = d.shape[0]
    if m == 0:
        raise ValueError("empty tridiagonal matrix")
    e = np.asarray(off_diagonal, dtype=np.float64).reshape(-1)[: m - 1]
    if e.shape[0] != m - 1:
        raise ValueError(f"a {m}x{m} tridiagonal matrix needs {m - 1} off-diagonal entries, got {e.shape[0]}")
    if not (np.isfinite(d).all() and np.isfinite(e).all()):
        raise NonFiniteError("the Lanczos tridiagonal matrix has NaN/Inf entries: the operator returned a non-finite "
                             "product (check the model's loss at this point)")
    if m == 1:
        return d.copy(), np.ones((1, 1))
    errors = []
    for driver in ("stemr", "stev"):
        try:
            w, v = scipy.linalg.eigh_tridiagonal(d, e, lapack_driver=driver)
            if np.isfinite(w).all() and np.isfinite(v).all():
                return w, v
            errors.append(f"{driver}: non-finite result")
        except (np.linalg.LinAlgError, ValueError) as exc:
            errors.append(f"{driver}: {exc}")
    t = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    try:
        return np.linalg.eigh(t)
    except np.linalg.LinAlgError as exc:  # pragma: no cover - LAPACK's dense solver on finite input
        raise np.linalg.LinAlgError(f"tridiagonal eigensolver failed ({'; '.join(errors)}; dense: {exc})") from exc


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
    _check_max_iter(max_iter)
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
        v_used = v  # the vector λ and the residual describe (not the next iterate, when max_iter runs out)
        for _ in range(max_iter):
            for u in found:
                v = v - torch.dot(v, u) * u
            v = v / v.norm()
            v_used = v
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
        found.append(v_used)
        vals.append(lam)
        residuals.append(res)
        all_conv &= conv
    return EigenResult(
        tuple(vals), tuple(residuals), all_conv, op.num_matvecs - start_count, tol, "power", int(seed),
        torch.stack(found) if return_vectors else None,
    )
