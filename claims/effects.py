"""Small helpers that turn run evidence into the numbers the claims compare."""

from __future__ import annotations

import math

import numpy as np

from repro.metrics import basin_area, flatness_width, monotonicity, trajectory_straightness

# Loss tolerance that defines "flat": the region where the loss stays within 0.1 nats of its minimum. Cross-entropy
# is measured in nats for every task, so an absolute tolerance means the same thing in both arms.
FLAT_EPS = 0.1
LOSS_FLOOR = 1e-4  # floor for log ratios of quantities that can reach ~0 (losses, loss increases)


def per_arm(fn):  # noqa: ANN001, ANN201
    """The raw values behind a comparison, one per arm, for the report's per-pair table."""
    return lambda pair: {"pretrained": fn(pair.pretrained), "scratch": fn(pair.scratch)}


def log_ratio(num: float, den: float, floor: float = 0.0) -> float:
    """log(num / den); undefined (nan) unless both are positive after flooring."""
    num, den = max(num, floor), max(den, floor)
    if num <= 0 or den <= 0:
        return float("nan")
    return math.log(num / den)


def lambda_max(ev) -> float:  # noqa: ANN001
    return float(ev.analysis.hessian.eigenvalues[0])


def random_width(ev) -> float:  # noqa: ANN001
    widths = [flatness_width(c.alphas, c.values["train_loss"], eps=FLAT_EPS).width for c in ev.analysis.random_curves]
    return float(np.mean(widths))


def basin(ev):  # noqa: ANN001, ANN201
    s = ev.analysis.surface
    if s is None:
        raise ValueError("no 2D surface (needs a partner task for δ2)")
    return basin_area(s.alphas, s.betas, s.array("train_loss"), eps=FLAT_EPS)


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


def path_straightness(ev) -> float:  # noqa: ANN001
    """Displacement / path length of the trajectory θ_t projected on the δ1/δ2 plane (1 = a straight line)."""
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
