"""Small helpers that turn run evidence into the numbers the claims compare.

A helper raises ``ValueError`` with the reason when its number is not a valid measurement -- a Lanczos run that did
not converge, a trace whose standard error is too large to resolve the claim's threshold, a width or area that is
censored by the edge of the grid -- and the pair is then excluded from the comparison with that reason
(:func:`claims.evaluate.evaluate_comparison`). Censored values are excluded rather than used as bounds, because a
t-interval cannot use a bound; when many are censored the report says so and the grid should be extended.
"""

from __future__ import annotations

import math

import numpy as np

from repro.metrics import basin_area, flatness_width, monotonicity, trajectory_straightness

# Loss tolerance that defines "flat": the region where the loss stays within 0.1 nats of its minimum. Cross-entropy
# is measured in nats for every task, so an absolute tolerance means the same thing in both arms.
FLAT_EPS = 0.1
LOSS_FLOOR = 1e-4  # floor for log ratios of quantities that can reach ~0 (losses, loss increases)
# A Hutchinson trace is used only when its standard error is at most this fraction of the estimate: the claims ask
# for a 25% difference (log ratio 0.22), and the log ratio of two estimates with relative SE r has SE ≈ r√2, so
# r ≤ 0.1 keeps that SE (0.14) below the threshold.
MAX_TRACE_RELATIVE_SE = 0.1
MIN_LAYERS_FOR_DEPTH_CORRELATION = 5  # fewer layers give a Spearman ρ with only a handful of possible values


def per_arm(fn):  # noqa: ANN001, ANN201
    """The raw values behind a comparison, one per arm, for the report's per-pair table."""
    return lambda pair: {"pretrained": fn(pair.pretrained), "scratch": fn(pair.scratch)}


def log_ratio(num: float, den: float, floor: float = 0.0) -> float:
    """log(num / den); undefined (nan) unless both are positive after flooring."""
    num, den = max(num, floor), max(den, floor)
    if num <= 0 or den <= 0:
        return float("nan")
    return math.log(num / den)


def _converged(eig, what: str) -> float:  # noqa: ANN001
    """λ_max, gated on *its own* Ritz residual ‖Hv − λv‖ ≤ tol·|λ|: the claims read only λ_max, so a top-k run
    whose lower eigenpairs have not converged yet must not discard a converged λ_max (``eig.converged`` is all k)."""
    lam = float(eig.eigenvalues[0])
    rel = eig.residuals[0] / (abs(lam) or 1.0)
    if not rel <= eig.tol:
        raise ValueError(f"{what}: Lanczos not converged (relative residual of λ_max {rel:.2g} > tol {eig.tol:g})")
    return lam


def lambda_max(ev) -> float:  # noqa: ANN001
    """λ_max at θ1 (confounded by the loss level; see matched_lambda_max)."""
    return _converged(ev.analysis.hessian, f"{ev.init} λ_max at θ1")


def matched_lambda_max(ev) -> float:  # noqa: ANN001
    """λ_max where the trajectory first reaches the matched training-loss level (claims.analysis)."""
    m = ev.analysis.matched
    if not m.reached or m.hessian is None:
        raise ValueError(f"{ev.init} never reached the matched training loss {m.level:.3f} on its trajectory")
    return _converged(m.hessian, f"{ev.init} λ_max at matched loss")


def matched_loss(ev) -> float:  # noqa: ANN001
    m = ev.analysis.matched
    return float(m.loss) if m.reached and m.loss is not None else float("nan")


def trace(ev) -> float:  # noqa: ANN001
    t = ev.analysis.trace
    if not (t.estimate > 0 and t.stderr <= MAX_TRACE_RELATIVE_SE * t.estimate):
        raise ValueError(f"{ev.init} Hessian trace {t.estimate:.4g} ± {t.stderr:.2g} (SE above "
                         f"{MAX_TRACE_RELATIVE_SE:.0%} of the estimate; more probes needed)")
    return float(t.estimate)


def random_width(ev) -> float:  # noqa: ANN001
    widths = []
    for c in ev.analysis.random_curves:
        w = flatness_width(c.alphas, c.values["train_loss"], eps=FLAT_EPS)
        if w.hit_boundary:
            raise ValueError(f"{ev.init} random-direction width censored by the grid edge (≥ {w.width:.3g})")
        widths.append(w.width)
    return float(np.mean(widths))


def basin(ev):  # noqa: ANN001, ANN201
    s = ev.analysis.surface
    if s is None:
        raise ValueError("no 2D surface (needs a partner task for δ2)")
    b = basin_area(s.alphas, s.betas, s.array("train_loss"), eps=FLAT_EPS)
    if b.touches_boundary:
        raise ValueError(f"{ev.init} basin censored by the grid edge (area ≥ {b.area:.3g})")
    return b


def basin_area_scale_aware(ev) -> float:  # noqa: ANN001
    """Area in units of ‖θ1‖²: the paper's (α, β) area times ‖δ1‖·‖δ2‖ (δ2 is rescaled to ‖δ1‖)."""
    a = ev.analysis
    return basin(ev).area * (a.norm_delta1 / a.norm_theta1) ** 2


def smoothed(losses: list[float], window: int) -> np.ndarray:
    x = np.asarray(losses, dtype=np.float64)
    window = max(1, min(window, len(x)))
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = np.empty_like(x)
    for i in range(len(x)):
        lo = max(0, i + 1 - window)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def steps_to_level(ev, fraction_of_chance: float) -> float:  # noqa: ANN001
    """First optimizer step at which the training loss, averaged over the last epoch's steps, is at most
    ``fraction_of_chance`` × ln(C). Censored runs count as total steps + 1."""
    m = ev.metrics
    level = fraction_of_chance * math.log(m.num_labels)
    s = smoothed(m.train_loss, m.steps_per_epoch)
    hit = np.nonzero(s <= level)[0]
    return float(hit[0] + 1) if len(hit) else float(m.total_steps + 1)


def full_straightness(ev) -> float:  # noqa: ANN001
    """Displacement / path length of θ_0, θ_t1, ..., θ_1 over the snapshots in full parameter space."""
    s = ev.analysis.straightness_full
    if s is None:
        raise ValueError("fewer than 2 snapshots")
    return float(s.ratio)


def train_loss_auc(ev) -> float:  # noqa: ANN001
    """Mean per-step training loss over the whole run (nats): the area under the training curve per step."""
    x = np.asarray(ev.metrics.train_loss, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no training steps")
    return float(x.mean())


def final_loss(ev) -> float:  # noqa: ANN001
    """Training loss at θ1, eval mode, fixed subset (nats)."""
    return float(ev.analysis.train_loss_theta1)


def path_straightness(ev) -> float:  # noqa: ANN001
    """Displacement / path length of the trajectory θ_t projected on the δ1/δ2 plane (1 = a straight line).

    Nearly always ≈ 1 for both arms: θ0 and θ1 lie in the plane and the path's bends are off-plane."""
    p = ev.analysis.projection
    if p is None:
        raise ValueError("no trajectory projection")
    pts = np.stack([p.alphas, p.betas], axis=1)
    return trajectory_straightness(pts).ratio


def curve_monotonicity(ev) -> float:  # noqa: ANN001
    """Total-variation ratio of the training loss along θ0 + α δ1 for α in [0, 1] (1 = monotone)."""
    c = ev.analysis.curve
    a = np.asarray(c.alphas)
    y = np.asarray(c.values["train_loss"])
    keep = (a >= -1e-9) & (a <= 1 + 1e-9)
    return monotonicity(y[keep]).total_variation_ratio


def group_width_normalized(ev, group: str) -> float:  # noqa: ANN001
    """Width {L ≤ L_min + 0.1} along the filter-normalised δ1|group (claims.analysis); larger = flatter."""
    c = ev.analysis.layer_curves_normalized[group]
    w = flatness_width(c.alphas, c.values["train_loss"], eps=FLAT_EPS)
    if w.hit_boundary:
        raise ValueError(f"{group}-group width censored by the grid edge (≥ {w.width:.3g})")
    return float(w.width)


def depth_correlation(ev) -> float:  # noqa: ANN001
    """Spearman ρ of per-layer relative change with layer index (needs MIN_LAYERS_FOR_DEPTH_CORRELATION layers)."""
    from scipy import stats

    rc = ev.analysis.relative_change
    layers = sorted((int(k.split(".")[1]), v) for k, v in rc.items() if k.startswith("layer."))
    if len(layers) < MIN_LAYERS_FOR_DEPTH_CORRELATION:
        raise ValueError(f"{len(layers)} layers: too few for a depth correlation (needs "
                         f"{MIN_LAYERS_FOR_DEPTH_CORRELATION})")
    return float(stats.spearmanr([i for i, _ in layers], [v for _, v in layers]).statistic)


def group_curve_rise(ev, group: str) -> float:  # noqa: ANN001
    """Mean training-loss increase over the curve θ1 + α δ1|group (α in [−1, 1]) relative to α = 0: a
    sharpness summary of the layer-group landscape (smaller = flatter)."""
    c = ev.analysis.layer_curves[group]
    a = np.asarray(c.alphas)
    y = np.asarray(c.values["train_loss"])
    y0 = y[int(np.argmin(np.abs(a)))]
    return float(np.mean(y - y0))


def overfit_drop(metrics) -> tuple[float, float]:  # noqa: ANN001
    """(best − last dev accuracy, last − lowest dev loss) over the evaluations after step 0."""
    ev = [e for e in metrics.evals if e.step > 0]
    if not ev:
        raise ValueError("no dev evaluations")
    acc = [e.dev_accuracy for e in ev]
    loss = [e.dev_loss for e in ev]
    return max(acc) - acc[-1], loss[-1] - min(loss)
