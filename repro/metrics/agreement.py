"""Does low training loss mean low dev error? Agreement of two surfaces on the same grid (paper §4.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SurfaceAgreement:
    spearman: float  # rank correlation over all (finite) grid points
    argmin_train: tuple[float, float]
    argmin_dev: tuple[float, float]
    argmin_distance: float  # Euclidean, in (α, β) units
    dev_error_at_train_argmin: float
    min_dev_error: float
    gap: float  # dev error at the train-loss argmin minus the lowest dev error (≥ 0)


def surface_agreement(alphas: Sequence[float], betas: Sequence[float], train_loss: np.ndarray,
                      dev_error: np.ndarray) -> SurfaceAgreement:
    tl = np.asarray(train_loss, dtype=np.float64)
    de = np.asarray(dev_error, dtype=np.float64)
    a, b = np.asarray(alphas, float), np.asarray(betas, float)
    ok = np.isfinite(tl) & np.isfinite(de)
    rho = float(stats.spearmanr(tl[ok], de[ok]).statistic) if ok.sum() > 2 else float("nan")
    it = np.unravel_index(int(np.nanargmin(np.where(ok, tl, np.nan))), tl.shape)
    idv = np.unravel_index(int(np.nanargmin(np.where(ok, de, np.nan))), de.shape)
    pt, pd = (float(a[it[0]]), float(b[it[1]])), (float(a[idv[0]]), float(b[idv[1]]))
    return SurfaceAgreement(rho, pt, pd, float(np.hypot(pt[0] - pd[0], pt[1] - pd[1])), float(de[it]),
                            float(de[idv]), float(de[it] - de[idv]))
