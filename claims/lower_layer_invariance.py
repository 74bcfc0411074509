"""Claim 5 (§7): the lower layers of BERT change less during fine-tuning and are more transferable.

Only the fine-tuned (pretrained) arm is examined, as in the paper; each (task, seed) run gives one paired
comparison of its low and high layer groups (thirds of the depth). Thresholds, the project's registered choices
(each comparison's ``registered`` field says when: relative change and rollback with the first claims code,
1a2c654, before any verdict run; the normalised layer width in 3b532e2, after the first cpu run; the cross-task
layer swap in science v3): "change less" and "flatter" are read as at least 25% (log ratio ≥ log 1.25). Rolling the low group back to its pretrained
weights must cost at least 0.01 nats less training loss than rolling back the high group: the paper reports the
low-layer rollback as nearly free and the high-layer one as harmful. The cost is measured on the training loss, as
the paper's layer-wise surfaces are; the dev loss is reported beside it (an overfit model's dev loss can *fall* when
its top layers are rolled back, which confounds it).

"More transferable" (science v3, claims/REGISTRATION_V3.md §6): task A's fine-tuned θ1 with its low, resp. high,
group taken from the partner task's fine-tuned θ1′ (same seed and setting; the plan already trains it for δ2),
measured as the dev-loss increase on A; the low group must cost at least 0.01 nats less (as the rollback). The
rollback asks whether a group's *pretrained* weights still serve; the swap whether another task's fine-tuned ones do.

Three primaries that do not share one signal, and the swap: relative change ‖δ1|group‖/‖θ0|group‖; the rollback cost; and the
*width* of the training loss along δ1|group after filter normalisation to θ1 (each row rescaled to the norm of the
matching row of θ1), larger for the low group. The paper-unit layer curve (α in units of ‖δ1|group‖) is kept as a
secondary measure: its α = −1 point is the rollback point and its unit is what relative change measures, so it
repeats the other two primaries rather than adding evidence (it was demoted from primary in 3b532e2, after the
first cpu run, where it had come out reproduced). The depth correlation needs at least 5 layers. The curvature
of each group's own Hessian block (λ_max with its residual, issue 19) is a secondary measure: a flatter low group
has the smaller top eigenvalue, read with the same 25% threshold; its scale also depends on the group's size and
position, so it does not decide. A width censored at the searched radius is a bound: the pair's effect is an interval,
judged on its unfavourable end in each direction (claims.effects.bounded_log_ratio, claims.base.summarize).
"""

from __future__ import annotations

import math

from claims import effects as fx
from claims.base import (
    REGISTERED_FIRST,
    REGISTERED_ISSUE9,
    REGISTERED_ISSUE19,
    REGISTERED_V3,
    Claim,
    Comparison,
    register,
)

MIN_LOG_RATIO = math.log(1.25)
MIN_ROLLBACK_GAP = 0.01  # nats
MIN_DEPTH_CORRELATION = 0.5
PRETRAINED_ONLY = ("pretrained",)


def _rc(ev, g: str) -> float:  # noqa: ANN001
    return ev.analysis.relative_change[g]


def _rb(ev, g: str, split: str = "train") -> float:  # noqa: ANN001
    table = ev.analysis.rollback_train if split == "train" else ev.analysis.rollback_dev
    r = table[g]
    return r.loss_rolled_back - r.loss_theta1


def _low_high(fn):  # noqa: ANN001, ANN202
    return lambda p: {"low": fn(p.pretrained, "low"), "high": fn(p.pretrained, "high")}


CLAIM = register(Claim(
    rationale=__doc__ or "",
    id="lower_layer_invariance",
    section="§7",
    statement="Lower layers of BERT are more invariant during fine-tuning and more transferable: they change "
              "less, rolling them back to pretrained weights costs little, and their loss surface is flatter.",
    comparisons=(
        Comparison("relative_change_high_vs_low", "‖θ1−θ0‖/‖θ0‖ of the high group over the low group (pretrained)",
                   lambda p: fx.log_ratio(_rc(p.pretrained, "high"), _rc(p.pretrained, "low")), MIN_LOG_RATIO,
                   "log ratio high/low", arms=PRETRAINED_ONLY, values=_low_high(_rc), registered=REGISTERED_FIRST),
        Comparison("rollback_cost_train", "training-loss increase when rolling a group back to θ0: high − low",
                   lambda p: _rb(p.pretrained, "high") - _rb(p.pretrained, "low"), MIN_ROLLBACK_GAP,
                   "difference high − low (nats)", arms=PRETRAINED_ONLY, values=_low_high(_rb),
                   registered=REGISTERED_FIRST),
        Comparison("layer_width_normalized", "width {L ≤ L_min + 0.1} along δ1|group filter-normalised to θ1: low "
                   "over high (the low group flatter)",
                   lambda p: fx.bounded_log_ratio(fx.group_width_measured(p.pretrained, "low"),
                                                  fx.group_width_measured(p.pretrained, "high"), "layer-group width"),
                   MIN_LOG_RATIO, "log ratio low/high", arms=PRETRAINED_ONLY, registered=REGISTERED_ISSUE9,
                   values=lambda p: {**_low_high(fx.group_width_normalized)(p),
                                     "censored low": float(fx.group_width_measured(p.pretrained, "low").censored),
                                     "censored high": float(fx.group_width_measured(p.pretrained, "high").censored)}),
        Comparison("layer_swap_cost", "dev-loss increase on this task when a group of θ1 is replaced by the same "
                   "group of the partner task's fine-tuned θ1′ (same seed and setting): high − low (the low layers "
                   "transfer at the lower cost)",
                   lambda p: fx.layer_swap_cost(p.pretrained, "high") - fx.layer_swap_cost(p.pretrained, "low"),
                   MIN_ROLLBACK_GAP, "difference high − low (nats)", arms=PRETRAINED_ONLY, registered=REGISTERED_V3,
                   controls="a cross-task transfer of each group measured on the same dev subset; leaves the "
                            "partner task's own distance from this one (one partner per task)",
                   values=_low_high(fx.layer_swap_cost)),
        Comparison("layer_surface_flatness", "mean training-loss rise along δ1|group in the paper's units, "
                   "α ∈ [−1, 1]: high over low (shares its signal with relative change and rollback)",
                   lambda p: fx.log_ratio(fx.group_curve_rise(p.pretrained, "high"),
                                          fx.group_curve_rise(p.pretrained, "low"), fx.LOSS_FLOOR),
                   MIN_LOG_RATIO, "log ratio high/low", primary=False, arms=PRETRAINED_ONLY,
                   values=_low_high(fx.group_curve_rise), registered=REGISTERED_FIRST + "; secondary since 3b532e2"),
        Comparison("rollback_cost_dev", "dev-loss increase when rolling back: high − low (reported; an overfit "
                   "model's dev loss can fall on rollback)",
                   lambda p: _rb(p.pretrained, "high", "dev") - _rb(p.pretrained, "low", "dev"), MIN_ROLLBACK_GAP,
                   "difference high − low (nats)", primary=False, arms=PRETRAINED_ONLY,
                   values=_low_high(lambda e, g: _rb(e, g, "dev")), registered=REGISTERED_FIRST),
        Comparison("group_lambda_max_high_vs_low", "λ_max of the Hessian block of the high group over the low "
                   "group's at θ1 (pretrained; the low group flatter)",
                   lambda p: fx.log_ratio(fx.group_lambda_max(p.pretrained, "high"),
                                          fx.group_lambda_max(p.pretrained, "low")),
                   MIN_LOG_RATIO, "log ratio high/low", primary=False, arms=PRETRAINED_ONLY,
                   registered=REGISTERED_ISSUE19, values=_low_high(fx.group_lambda_max)),
        Comparison("depth_correlation", "Spearman correlation of relative change with layer index (≥ 5 layers)",
                   lambda p: fx.depth_correlation(p.pretrained), MIN_DEPTH_CORRELATION, "Spearman ρ", primary=False,
                   arms=PRETRAINED_ONLY, values=lambda p: {"rho": fx.depth_correlation(p.pretrained)},
                   registered=REGISTERED_FIRST + "; ≥ 5 layers since 3b532e2"),
    ),
))
