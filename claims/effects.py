"""Small helpers that turn run evidence into the numbers the claims compare.

A helper raises ``ValueError`` with the reason when its number is not a valid measurement -- a Lanczos run that did
not converge, a trace whose standard error is too large to resolve the claim's threshold -- and the pair is then
excluded from the comparison with that reason (:func:`claims.evaluate.evaluate_comparison`).

Censored widths and areas are *bounds*, not failures (issue 27, registered before the standard profile's first
run). A flat region that reaches the edge of the grid is at least as wide as the grid shows: its width is a lower
bound. Excluding such pairs hid contrary evidence (in the 2026-11-27 cpu run the scratch arm's random-direction width
was censored in 12/12 pairs, and the log ratio pretrained/scratch was already at most −0.48 to −1.15 in each, i.e.
against the paper). So a log ratio of two widths uses the bound where one side is censored
(:func:`bounded_log_ratio`): a censored numerator makes the ratio a lower bound, a censored denominator an upper
bound. A pair counts, with the bound as its value (:class:`Bound`), when the bound already decides the sign of the
effect (a lower bound above 0, an upper bound below 0); it is excluded, with the reason, when the bound cannot
decide the sign or when both sides are censored. Using the bound moves that pair's effect towards 0, so it can only
make a verdict in the bound's direction harder to reach, never easier.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from repro.metrics import (
    basin_area,
    flatness_width,
    monotonicity,
    trajectory_straightness,
)

# Loss tolerance that defines "flat": the region where the loss stays within 0.1 nats of its minimum. Cross-entropy
# is measured in nats for every task, so an absolute tolerance means the same thing in both arms.
FLAT_EPS = 0.1
LOSS_FLOOR = 1e-4  # floor for log ratios of quantities that can reach ~0 (losses, loss increases)
# A Hutchinson trace is used only when its standard error is at most this fraction of the estimate: the claims ask
# for a 25% difference (log ratio 0.22), and the log ratio of two estimates with relative SE r has SE ≈ r√2, so
# r ≤ 0.1 keeps that SE (0.14) below the threshold.
MAX_TRACE_RELATIVE_SE = 0.1
MIN_LAYERS_FOR_DEPTH_CORRELATION = 5  # fewer layers give a Spearman ρ with only a handful of possible values


class Bound(float):
    """An effect that is a censored *bound* on the true effect, not a measurement: ``side`` is "lower" (the true
    effect is at least this) or "upper" (at most this). A float, so the statistics use it as the pair's value;
    :func:`claims.evaluate.evaluate_comparison` records the side in the per-pair row."""

    side: str

    def __new__(cls, value: float, side: str) -> Bound:
        if side not in ("lower", "upper"):
            raise ValueError(f"side must be 'lower' or 'upper', got {side!r}")
        obj = super().__new__(cls, value)
        obj.side = side
        return obj


class Measured(NamedTuple):
    """A width or area and whether it is censored (then ``value`` is a lower bound on the true one)."""

    value: float
    censored: bool


def bounded_log_ratio(num: Measured, den: Measured, what: str = "") -> float:
    """log(num / den), or a :class:`Bound` of it when one side is censored and the bound decides the sign; raises
    ValueError (the pair is excluded) when both are censored or the bound does not decide the sign."""
    label = f"{what}: " if what else ""
    if num.censored and den.censored:
        raise ValueError(f"{label}both sides censored by the grid edge (≥ {num.value:.3g} and ≥ {den.value:.3g}): "
                         "the ratio is undetermined")
    r = log_ratio(num.value, den.value)
    if not math.isfinite(r):
        raise ValueError(f"{label}log ratio undefined ({num.value:.3g} / {den.value:.3g})")
    if num.censored:  # true num ≥ value: the ratio is at least r
        if r > 0:
            return Bound(r, "lower")
        raise ValueError(f"{label}numerator censored (≥ {num.value:.3g}); its bound, log ratio ≥ {r:+.3g}, does not "
                         "decide the sign")
    if den.censored:  # true den ≥ value: the ratio is at most r
        if r < 0:
            return Bound(r, "upper")
        raise ValueError(f"{label}denominator censored (≥ {den.value:.3g}); its bound, log ratio ≤ {r:+.3g}, does "
                         "not decide the sign")
    return r


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


def _matched(ev, level: str):  # noqa: ANN001, ANN202
    if level == "half":
        return ev.analysis.matched
    if level == "learned":
        m = ev.analysis.matched_learned
        if m is None:
            raise ValueError(f"{ev.init}: no λ_max at the learned level (analysis version "
                             f"{ev.analysis.version} predates it; rerun the analysis)")
        return m
    raise ValueError(f"unknown matched level {level!r}")


def matched_lambda_max(ev, level: str = "half") -> float:  # noqa: ANN001
    """λ_max where the trajectory first reaches a matched training-loss level (claims.analysis): ``"learned"``
    (0.75 ln C, the learned precondition's level: every learned arm reaches it by θ1) or ``"half"`` (0.5 ln C)."""
    m = _matched(ev, level)
    if not m.reached or m.hessian is None:
        raise ValueError(f"{ev.init} never reached the matched training loss {m.level:.3f} on its trajectory")
    return _converged(m.hessian, f"{ev.init} λ_max at matched loss {m.level:.3f}")


def matched_loss(ev, level: str = "half") -> float:  # noqa: ANN001
    m = _matched(ev, level)
    return float(m.loss) if m.reached and m.loss is not None else float("nan")


def trace(ev) -> float:  # noqa: ANN001
    t = ev.analysis.trace
    if not (t.estimate > 0 and t.stderr <= MAX_TRACE_RELATIVE_SE * t.estimate):
        raise ValueError(f"{ev.init} Hessian trace {t.estimate:.4g} ± {t.stderr:.2g} (SE above "
                         f"{MAX_TRACE_RELATIVE_SE:.0%} of the estimate; more probes needed)")
    return float(t.estimate)


def random_width_measured(ev) -> Measured:  # noqa: ANN001
    """Mean width {L ≤ L_min + 0.1} over the filter-normalised random directions; censored when any direction's
    flat region reaches the grid edge (the mean is then a lower bound)."""
    widths = [flatness_width(c.alphas, c.values["train_loss"], eps=FLAT_EPS) for c in ev.analysis.random_curves]
    if not widths:
        raise ValueError(f"{ev.init}: no random-direction curves")
    return Measured(float(np.mean([w.width for w in widths])), any(w.hit_boundary for w in widths))


def random_width(ev) -> float:  # noqa: ANN001
    """The mean random-direction width (a lower bound when censored; see random_width_measured)."""
    return random_width_measured(ev).value


def basin(ev):  # noqa: ANN001, ANN201
    """The basin {L ≤ L_min + 0.1} of the 2D surface (``touches_boundary``: its area is a lower bound)."""
    s = ev.analysis.surface
    if s is None:
        raise ValueError("no 2D surface (needs a partner task for δ2)")
    return basin_area(s.alphas, s.betas, s.array("train_loss"), eps=FLAT_EPS)


def basin_measured(ev) -> Measured:  # noqa: ANN001
    b = basin(ev)
    return Measured(float(b.area), bool(b.touches_boundary))


def basin_area_scale_aware(ev) -> float:  # noqa: ANN001
    """Area in units of ‖θ1‖²: the paper's (α, β) area times ‖δ1‖·‖δ2‖ (δ2 is rescaled to ‖δ1‖)."""
    a = ev.analysis
    return basin(ev).area * (a.norm_delta1 / a.norm_theta1) ** 2


def basin_scale_aware_measured(ev) -> Measured:  # noqa: ANN001
    return Measured(basin_area_scale_aware(ev), bool(basin(ev).touches_boundary))


def censored_flags(fn):  # noqa: ANN001, ANN201
    """Per-arm "censored" flags of a Measured-valued helper, for the report's per-pair table."""
    return lambda pair: {"censored pretrained": float(fn(pair.pretrained).censored),
                         "censored scratch": float(fn(pair.scratch).censored)}


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


def group_width_measured(ev, group: str) -> Measured:  # noqa: ANN001
    """Width {L ≤ L_min + 0.1} along the filter-normalised δ1|group (claims.analysis); larger = flatter.
    Censored (a lower bound) when the flat region reaches the grid edge."""
    c = ev.analysis.layer_curves_normalized[group]
    w = flatness_width(c.alphas, c.values["train_loss"], eps=FLAT_EPS)
    return Measured(float(w.width), bool(w.hit_boundary))


def group_width_normalized(ev, group: str) -> float:  # noqa: ANN001
    return group_width_measured(ev, group).value


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


def adaptive_sharpness_value(ev) -> float:  # noqa: ANN001
    """Adaptive sharpness at θ1 (claims.analysis.ADAPTIVE_RHO, ℓ2 ball scaled by |θ|); a lower bound of the maximum
    found by projected gradient ascent, measured the same way in both arms."""
    a = ev.analysis.adaptive_sharpness
    if a is None:
        raise ValueError(f"{ev.init}: no adaptive sharpness (the profile leaves it off, or the analysis predates it)")
    return float(a.sharpness)


def group_lambda_max(ev, group: str) -> float:  # noqa: ANN001
    """λ_max of the Hessian block of ``group`` at θ1, gated on its own Ritz residual (as λ_max is)."""
    gc = ev.analysis.group_curvature
    if gc is None:
        raise ValueError(f"{ev.init}: no per-group curvature (the profile leaves it off, or the analysis predates it)")
    g = gc.get(group)
    rel = g.residual / (abs(g.lambda_max) or 1.0)
    if not rel <= gc.tol:
        raise ValueError(f"{group}-group λ_max not converged (relative residual {rel:.2g} > tol {gc.tol:g})")
    return float(g.lambda_max)
