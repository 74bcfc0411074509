"""Claim 1 (§5.1): fine-tuning from pretrained weights reaches wider optima than training from scratch.

Thresholds: the paper calls the pretrained minima "wider" and "flatter" from surfaces where the difference is
obvious to the eye. The project's registered choice is a difference of at least 25% (a log ratio of log 1.25) in
each measure -- smaller differences would not be visible in the paper's figures; the paper gives no number. Each
comparison's ``registered`` field says when its measure was registered (some after runs had been seen).

Primary measures (science v3, claims/REGISTRATION_V3.md §5), each saying which bias it controls and which it
leaves (the comparison's ``controls``):

* ``scaled_lambda_max_learned_level`` -- the top eigenvalue of diag(|θ|)·H·diag(|θ|) at the first trajectory point
  where the training loss reaches 0.75 ln C in both arms. Rescaling a weight by c scales H by 1/c² and |θ| by c,
  so it does not see weight scale (‖θ‖ 243 vs 98 in the 2026-11-27 cpu run predicts a raw λ_max log ratio of 1.82,
  against an observed 1.88-2.43); the matched level removes the loss-level bias of θ1 (near zero cross-entropy
  the Hessian scales with p(1 − p)). Left: the stage of training and the step size at that point (the scratch
  arm's instantaneous learning rate was 6.1-9.5x the pretrained arm's; printed beside it), and the point is not
  an optimum.
* ``random_width_learned_level`` -- width by bisection (the first crossing of L(θ_m) + 0.1 on each side, out to
  the registered radius) along filter-normalised random directions around the same point: scale-aware and
  loss-level-controlled, with the same biases left.
* ``basin_area_scale_aware`` -- the paper's 2D basin {L ≤ L_min + 0.1} around θ1, in units of ‖θ1‖² instead of
  the arm's own ‖δ1‖ (scratch's δ1 is 3x longer, which in the paper's units is +2.0 to +2.7 in log area towards
  the paper). Left: the loss level at θ1 (an absolute 0.1-nat tolerance; printed).

Secondary measures, each with the quantity that biases it printed beside it: raw λ_max at 0.75 ln C and 0.5 ln C
(weight-norm ratio and learning rate at the point), λ_max at θ1 (weight-norm ratio, loss), scaled λ_max at θ1
(loss), the basin in the paper's units (‖δ1‖ ratio), the random-direction width at θ1 (loss), adaptive and
ε-sharpness (loss), the Hessian trace (its Hutchinson error on indefinite Hessians, standard errors of 18-143% in
the 2026-11-27 cpu run, is too large to decide).

Eigenvalues whose Lanczos run did not converge and traces whose standard error exceeds 10% of the estimate are
excluded with the reason. Widths and areas censored by the radius are bounds: each pair's effect is an interval,
and "reproduced" is judged on the lower ends, "not reproduced" on the upper ends (claims.effects.bounded_log_ratio,
claims.base.summarize). Analyses made before science v3 (version < 4) lack the new measures; their pairs are
excluded from those comparisons with the reason.
"""

from __future__ import annotations

import math

from claims import effects as fx
from claims.base import (
    REGISTERED_FIRST,
    REGISTERED_ISSUE9,
    REGISTERED_ISSUE19,
    REGISTERED_ISSUE27,
    REGISTERED_V3,
    Claim,
    Comparison,
    register,
)

MIN_LOG_RATIO = math.log(1.25)


def _ratio(fn):  # noqa: ANN001, ANN202
    """scratch/pretrained ratio of an arm quantity, printed beside a measure it biases."""
    def ratio(pair) -> float:  # noqa: ANN001
        a, b = fn(pair.scratch), fn(pair.pretrained)
        return a / b if b else float("nan")
    return ratio


def _scale_bias(level: str | None):  # noqa: ANN202
    """The quantities that bias a raw curvature (weight scale; step size at the point)."""
    if level is None:
        return lambda p: {"‖θ1‖ scratch/pretrained": _ratio(lambda e: e.analysis.norm_theta1)(p),
                          "loss pretrained": fx.final_loss(p.pretrained), "loss scratch": fx.final_loss(p.scratch)}
    return lambda p: {"‖θ‖ scratch/pretrained": _ratio(lambda e: fx.matched_weight_norm(e, level))(p),
                      "lr pretrained": fx.matched_learning_rate(p.pretrained, level),
                      "lr scratch": fx.matched_learning_rate(p.scratch, level)}


def _loss_bias(p) -> dict[str, float]:  # noqa: ANN001
    return {"loss pretrained": fx.final_loss(p.pretrained), "loss scratch": fx.final_loss(p.scratch)}


CLAIM = register(Claim(
    rationale=__doc__ or "",
    id="wider_optima",
    section="§5.1",
    statement="Pretraining leads to wider optima: the loss basin around a fine-tuned BERT is flatter and wider "
              "than around the same architecture trained from scratch.",
    comparisons=(
        Comparison("scaled_lambda_max_learned_level", "top eigenvalue of diag(|θ|)·H·diag(|θ|) where the trajectory "
                   "first reaches training loss 0.75 ln C, the same level in both arms (lower for pretrained)",
                   lambda p: fx.log_ratio(fx.matched_scaled_lambda_max(p.scratch),
                                          fx.matched_scaled_lambda_max(p.pretrained)),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", registered=REGISTERED_V3,
                   controls="controls weight scale and loss level; leaves the stage of training and the step size "
                            "at the point (printed), and the point is not an optimum",
                   values=lambda p: {"pretrained": fx.matched_scaled_lambda_max(p.pretrained),
                                     "scratch": fx.matched_scaled_lambda_max(p.scratch),
                                     "lr pretrained": fx.matched_learning_rate(p.pretrained),
                                     "lr scratch": fx.matched_learning_rate(p.scratch)}),
        Comparison("random_width_learned_level", "width {L < L(θ_m) + 0.1} by bisection along filter-normalised "
                   "random directions around the same matched point (larger for pretrained; a width censored at "
                   "the radius is a bound)",
                   lambda p: fx.bounded_log_ratio(fx.matched_random_width_measured(p.pretrained),
                                                  fx.matched_random_width_measured(p.scratch),
                                                  "random-direction width at the matched point"),
                   MIN_LOG_RATIO, "log ratio pretrained/scratch", registered=REGISTERED_V3,
                   controls="controls weight scale (filter normalisation) and loss level; leaves the stage of "
                            "training and the step size at the point, and the point is not an optimum",
                   values=lambda p: {**fx.per_arm(lambda e: fx.matched_random_width_measured(e).value)(p),
                                     **fx.censored_flags(fx.matched_random_width_measured)(p),
                                     "lr pretrained": fx.matched_learning_rate(p.pretrained),
                                     "lr scratch": fx.matched_learning_rate(p.scratch)}),
        Comparison("basin_area_scale_aware", "2D basin area {L ≤ L_min + 0.1} around θ1 in units of ‖θ1‖² (larger "
                   "for pretrained; censored areas as bounds)",
                   lambda p: fx.bounded_log_ratio(fx.basin_scale_aware_measured(p.pretrained),
                                                  fx.basin_scale_aware_measured(p.scratch), "scale-aware basin area"),
                   MIN_LOG_RATIO, "log ratio pretrained/scratch",
                   registered=REGISTERED_FIRST + "; primary since " + REGISTERED_V3,
                   controls="controls ‖δ1‖ (the paper's unit is longer for scratch); leaves the loss level at θ1 "
                            "(absolute tolerance; printed)",
                   values=lambda p: {**fx.per_arm(fx.basin_area_scale_aware)(p),
                                     **fx.censored_flags(fx.basin_scale_aware_measured)(p), **_loss_bias(p)}),
        Comparison("hessian_lambda_max_learned_level", "top Hessian eigenvalue where the trajectory first reaches "
                   "training loss 0.75 ln C (lower for pretrained; raw: biased by weight scale and step size, "
                   "printed beside it)",
                   lambda p: fx.log_ratio(fx.matched_lambda_max(p.scratch, "learned"),
                                          fx.matched_lambda_max(p.pretrained, "learned")),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", primary=False,
                   registered=REGISTERED_ISSUE27 + "; secondary since " + REGISTERED_V3,
                   values=lambda p: {"pretrained": fx.matched_lambda_max(p.pretrained, "learned"),
                                     "scratch": fx.matched_lambda_max(p.scratch, "learned"),
                                     **_scale_bias("learned")(p)}),
        Comparison("hessian_lambda_max_matched_loss", "top Hessian eigenvalue where the trajectory first reaches "
                   "training loss 0.5 ln C (lower for pretrained; undefined where an arm never gets there)",
                   lambda p: fx.log_ratio(fx.matched_lambda_max(p.scratch), fx.matched_lambda_max(p.pretrained)),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", primary=False, registered=REGISTERED_ISSUE9,
                   values=lambda p: {"pretrained": fx.matched_lambda_max(p.pretrained),
                                     "scratch": fx.matched_lambda_max(p.scratch), **_scale_bias("half")(p)}),
        Comparison("hessian_lambda_max_theta1", "top Hessian eigenvalue at θ1 (lower for pretrained; biased by the "
                   "weight scale and the final loss level, printed beside it)",
                   lambda p: fx.log_ratio(fx.lambda_max(p.scratch), fx.lambda_max(p.pretrained)),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", primary=False,
                   values=lambda p: {**fx.per_arm(fx.lambda_max)(p), **_scale_bias(None)(p)},
                   registered=REGISTERED_ISSUE9),
        Comparison("scaled_lambda_max_theta1", "top eigenvalue of diag(|θ1|)·H·diag(|θ1|) at θ1 (lower for "
                   "pretrained; scale-aware, biased by the loss level at θ1, printed)",
                   lambda p: fx.log_ratio(fx.scaled_lambda_max(p.scratch), fx.scaled_lambda_max(p.pretrained)),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", primary=False, registered=REGISTERED_V3,
                   values=lambda p: {**fx.per_arm(fx.scaled_lambda_max)(p), **_loss_bias(p)}),
        Comparison("basin_area_paper_units", "2D basin area {L ≤ L_min + 0.1} in the δ1/δ2 plane, in multiples of "
                   "δ1 and δ2 (the paper's units; larger for pretrained; biased by ‖δ1‖, printed)",
                   lambda p: fx.bounded_log_ratio(fx.basin_measured(p.pretrained), fx.basin_measured(p.scratch),
                                                  "basin area"),
                   MIN_LOG_RATIO, "log ratio pretrained/scratch", primary=False,
                   registered=REGISTERED_FIRST + "; secondary since " + REGISTERED_V3,
                   values=lambda p: {**fx.per_arm(lambda e: fx.basin(e).area)(p),
                                     **fx.censored_flags(fx.basin_measured)(p),
                                     "‖δ1‖ scratch/pretrained": _ratio(lambda e: e.analysis.norm_delta1)(p)}),
        Comparison("random_direction_width", "width along filter-normalised random directions around θ1 (by "
                   "bisection where measured; larger for pretrained; biased by the loss level at θ1, printed)",
                   lambda p: fx.bounded_log_ratio(fx.random_width_measured(p.pretrained),
                                                  fx.random_width_measured(p.scratch), "random-direction width"),
                   MIN_LOG_RATIO, "log ratio pretrained/scratch", primary=False,
                   registered=REGISTERED_FIRST + "; secondary since " + REGISTERED_V3,
                   values=lambda p: {**fx.per_arm(fx.random_width)(p),
                                     **fx.censored_flags(fx.random_width_measured)(p), **_loss_bias(p)}),
        Comparison("hessian_trace", "Hutchinson trace of the Hessian at θ1 (lower for pretrained; secondary: "
                   "excluded where its standard error exceeds 10%)",
                   lambda p: fx.log_ratio(fx.trace(p.scratch), fx.trace(p.pretrained)),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", primary=False, values=fx.per_arm(fx.trace),
                   registered=REGISTERED_FIRST),
        Comparison("adaptive_sharpness", "adaptive sharpness (Andriushchenko et al. 2023): worst loss increase in "
                   "the ℓ2 ball ‖δ/|θ|‖₂ ≤ 0.05 around θ1 (lower for pretrained; biased by the loss level, printed)",
                   lambda p: fx.log_ratio(fx.adaptive_sharpness_value(p.scratch),
                                          fx.adaptive_sharpness_value(p.pretrained), fx.LOSS_FLOOR),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", primary=False, registered=REGISTERED_ISSUE19,
                   values=lambda p: {**fx.per_arm(fx.adaptive_sharpness_value)(p), **_loss_bias(p)}),
        Comparison("epsilon_sharpness", "Keskar ε-sharpness in the box |δ_i| ≤ 1e-3·|θ_i| (lower for pretrained; "
                   "biased by the loss level, printed)",
                   lambda p: fx.log_ratio(p.scratch.analysis.sharpness.sharpness,
                                          p.pretrained.analysis.sharpness.sharpness, fx.LOSS_FLOOR),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", primary=False, registered=REGISTERED_ISSUE9,
                   values=lambda p: {**fx.per_arm(lambda e: e.analysis.sharpness.sharpness)(p), **_loss_bias(p)}),
    ),
))
