"""Small helpers that turn run evidence into the numbers the claims compare.

A helper raises ``ValueError`` with the reason when its number is not a valid measurement -- a Lanczos run that did
not converge, a trace whose standard error is too large to resolve the claim's threshold -- and the pair is then
excluded from the comparison with that reason (:func:`claims.evaluate.evaluate_comparison`).

Censored widths and areas are *bounds*, not failures (issue 27; the rule for judging them is science v3's, issue 36,
claims/REGISTRATION_V3.md §1). A flat region that reaches the edge of the searched radius is at least as wide as the
radius: its width is a lower bound. So a log ratio of two widths with one side censored is an *interval* for the
true effect (:func:`bounded_log_ratio`): a censored numerator gives [r, +inf), a censored denominator (-inf, r]
(:class:`Bound`, a float carrying ``lo`` and ``hi``). Whatever the bound's sign, the pair counts: the verdict rule
(:func:`claims.base.summarize`) judges "reproduced" on every pair's lower end and "not reproduced" on every pair's
upper end, and an infinite end makes that direction unreachable in the pair's task -- the pair is not dropped,
since a pair is censored *because* of which way its effect goes, and dropping it would bias the other pairs'
verdict. Both sides censored gives (-inf, +inf): no direction at all, so the pair is excluded with the reason.
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
    effect is at least this: the interval [value, +inf)) or "upper" (at most this: (-inf, value]). A float, so the
    descriptive statistics can show it at its finite end; the verdict reads ``lo`` and ``hi``
    (:func:`claims.base.summarize`), and :func:`claims.evaluate.evaluate_comparison` records the side in the
    per-pair row."""

    side: str

    def __new__(cls, value: float, side: str) -> Bound:
        if side not in ("lower", "upper"):
            raise ValueError(f"side must be 'lower' or 'upper', got {side!r}")
        obj = super().__new__(cls, value)
        obj.side = side
        return obj

    @property
    def lo(self) -> float:
        return float(self) if self.side == "lower" else -math.inf

    @property
    def hi(self) -> float:
        return float(self) if self.side == "upper" else math.inf


def effect_interval(value: float) -> tuple[float, float]:
    """[lo, hi] of an effect: a :class:`Bound`'s interval, or [v, v] for a measured effect."""
    if isinstance(value, Bound):
        return value.lo, value.hi
    v = float(value)
    return v, v


class Measured(NamedTuple):
    """A width or area and whether it is censored (then ``value`` is a lower bound on the true one)."""

    value: float
    censored: bool


def bounded_log_ratio(num: Measured, den: Measured, what: str = "") -> float:
    """log(num / den), or a :class:`Bound` of it when one side is censored (whatever its sign: the verdict judges
    each direction on the end that is unfavourable to it); raises ValueError (the pair is excluded) when both
    sides are censored, which leaves no direction."""
    label = f"{what}: " if what else ""
    if num.censored and den.censored:
        raise ValueError(f"{label}both sides censored at the searched radius (≥ {num.value:.3g} and ≥ {den.value:.3g}): "
                         "the ratio is undetermined")
    r = log_ratio(num.value, den.value)
    if not math.isfinite(r):
        raise ValueError(f"{label}log ratio undefined ({num.value:.3g} / {den.value:.3g})")
    if num.censored:  # true num ≥ value: the ratio is at least r
        return Bound(r, "lower")
    if den.censored:  # true den ≥ value: the ratio is at most r
        return Bound(r, "upper")
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


def _needs(value, ev, what: str):  # noqa: ANN001, ANN202
    """``value``, or ValueError (the pair is excluded) when the analysis does not have it."""
    if value is None:
        raise ValueError(f"{ev.init}: no {what} (the analysis predates science v3, version "
                         f"{getattr(ev.analysis, 'version', '?')}; rerun the analysis)")
    return value


def scaled_lambda_max(ev) -> float:  # noqa: ANN001
    """λ_max of diag(|θ1|)·H·diag(|θ1|) at θ1 (scale-aware; confounded by the loss level at θ1)."""
    return _converged(_needs(ev.analysis.scaled_hessian, ev, "scaled Hessian at θ1"), f"{ev.init} scaled λ_max at θ1")


def matched_scaled_lambda_max(ev, level: str = "learned") -> float:  # noqa: ANN001
    """λ_max of diag(|θ|)·H·diag(|θ|) at the matched training-loss point (science v3's §5.1 primary)."""
    m = _matched(ev, level)
    if not m.reached:
        raise ValueError(f"{ev.init} never reached the matched training loss {m.level:.3f} on its trajectory")
    return _converged(_needs(getattr(m, "scaled_hessian", None), ev, "scaled Hessian at the matched point"),
                      f"{ev.init} scaled λ_max at matched loss {m.level:.3f}")


def matched_learning_rate(ev, level: str = "learned") -> float:  # noqa: ANN001
    """The learning rate at the matched point (the step size a curvature there is read against; printed beside
    the matched measures, whose bias it is)."""
    lr = getattr(_matched(ev, level), "learning_rate", None)
    return float(lr) if lr is not None else float("nan")


def matched_weight_norm(ev, level: str = "learned") -> float:  # noqa: ANN001
    n = getattr(_matched(ev, level), "norm_theta", None)
    return float(n) if n is not None else float("nan")


def _widths_measured(widths, ev, what: str) -> Measured:  # noqa: ANN001
    widths = _needs(widths, ev, what)
    if not widths:
        raise ValueError(f"{ev.init}: no {what}")
    return Measured(float(np.mean([w.width for w in widths])), any(w.censored for w in widths))


def matched_random_width_measured(ev, level: str = "learned") -> Measured:  # noqa: ANN001
    """Mean bisection width {L < L(θ_m) + 0.1} along filter-normalised random directions around the matched point
    (science v3's §5.1 primary; censored when any direction's crossing lies beyond the radius)."""
    return _widths_measured(getattr(_matched(ev, level), "random_widths", None), ev,
                            "random-direction widths at the matched point")


def layer_swap_cost(ev, group: str) -> float:  # noqa: ANN001
    """Dev-loss increase when ``group`` of θ1 is replaced by the partner task's fine-tuned θ1′ (§7 transfer)."""
    swaps = _needs(getattr(ev.analysis, "layer_swap_dev", None), ev, "cross-task layer swap")
    return float(swaps[group].loss_increase)


def trace(ev) -> float:  # noqa: ANN001
    t = ev.analysis.trace
    if not (t.estimate > 0 and t.stderr <= MAX_TRACE_RELATIVE_SE * t.estimate):
        raise ValueError(f"{ev.init} Hessian trace {t.estimate:.4g} ± {t.stderr:.2g} (SE above "
                         f"{MAX_TRACE_RELATIVE_SE:.0%} of the estimate; more probes needed)")
    return float(t.estimate)


def random_width_measured(ev) -> Measured:  # noqa: ANN001
    """Mean width over the filter-normalised random directions around θ1: by bisection on the crossing of
    L(θ1) + 0.1 out to the registered radius where the analysis has it (science v3 §2), else read off the grid as
    {L ≤ L_min + 0.1}; censored when any direction's flat region reaches the radius (the mean is a lower bound)."""
    bis = getattr(ev.analysis, "random_widths_bisection", None)
    if bis:
        return _widths_measured(bis, ev, "random-direction widths")
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
    """Width along the filter-normalised δ1|group (claims.analysis); larger = flatter. By bisection on the crossing
    of L(θ1) + 0.1 where the analysis has it (science v3 §2: the §7 widths, 0.06-0.13, were below the grid's step
    of 0.2), else {L ≤ L_min + 0.1} read off the grid. Censored (a lower bound) when it reaches the radius."""
    bis = getattr(ev.analysis, "layer_widths_bisection", None)
    if bis:
        w = bis[group]
        return Measured(float(w.width), bool(w.censored))
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


# Science v3 (claims/REGISTRATION_V3.md §4): measures with a ceiling, and effects with a measurement quantum.
SATURATION_TOL = 1e-9


def saturated_at(fn, bound: float):  # noqa: ANN001, ANN201
    """A ``Comparison.saturated`` test: both arms' values of ``fn`` at ``bound`` (within SATURATION_TOL)."""
    return lambda pair: (abs(fn(pair.pretrained) - bound) <= SATURATION_TOL
                         and abs(fn(pair.scratch) - bound) <= SATURATION_TOL)


def dev_accuracy_quantum(pair) -> float:  # noqa: ANN001
    """One example's share of the dev set: a difference of two accuracies on n examples moves in steps of 1/n."""
    n = max(pair.pretrained.metrics.num_dev, pair.scratch.metrics.num_dev)
    return 1.0 / n if n > 0 else 0.0


def steps_quantum(fraction_of_chance: float):  # noqa: ANN201
    """The quantum of log(steps_scratch / steps_pretrained): one step at the smaller count, log(1 + 1/min)."""
    def quantum(pair) -> float:  # noqa: ANN001
        s = min(steps_to_level(pair.pretrained, fraction_of_chance), steps_to_level(pair.scratch, fraction_of_chance))
        return math.log1p(1.0 / s) if s >= 1 else 0.0
    return quantum


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
