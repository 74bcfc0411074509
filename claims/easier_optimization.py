"""Claim 2 (§5.2): pretraining eases optimization -- training converges faster, to a lower training loss,
along a more direct path.

Thresholds (fixed before results): "faster" and "lower" are read as at least 25% fewer steps and a 25% lower
training loss (log ratio ≥ log 1.25), the smallest differences the paper's training curves would show clearly.
"More direct" is read as a straighter projected trajectory: displacement / path length larger by at least 0.05
(on a 0-1 scale). The loss level for "steps to reach" is the precondition's learning level (0.75 × ln C), so it
is a level both arms are required to reach.
"""

from __future__ import annotations

import math

from claims import effects as fx
from claims.base import LEARNED_FRACTION_OF_CHANCE, Claim, Comparison, register

MIN_LOG_RATIO = math.log(1.25)
MIN_STRAIGHTNESS_GAIN = 0.05
MIN_MONOTONICITY_GAIN = 0.05


def _steps(ev) -> float:  # noqa: ANN001
    return fx.steps_to_level(ev, LEARNED_FRACTION_OF_CHANCE)


def _loss(ev) -> float:  # noqa: ANN001
    return ev.analysis.train_loss_theta1



CLAIM = register(Claim(
    id="easier_optimization",
    section="§5.2",
    statement="Pretraining eases optimization: fine-tuning converges faster, to a lower training loss, along a "
              "more direct path than training from scratch.",
    comparisons=(
        Comparison("steps_to_loss_level", "optimizer steps until the epoch-averaged training loss ≤ 0.75 ln C "
                   "(fewer for pretrained)",
                   lambda p: fx.log_ratio(_steps(p.scratch), _steps(p.pretrained)),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", values=fx.per_arm(_steps)),
        Comparison("final_train_loss", "training loss at θ1, eval mode, fixed subset (lower for pretrained)",
                   lambda p: fx.log_ratio(_loss(p.scratch), _loss(p.pretrained), fx.LOSS_FLOOR),
                   MIN_LOG_RATIO, "log ratio scratch/pretrained", values=fx.per_arm(_loss)),
        Comparison("trajectory_straightness", "displacement / path length of the trajectory projected on the "
                   "δ1/δ2 plane (larger for pretrained)",
                   lambda p: fx.path_straightness(p.pretrained) - fx.path_straightness(p.scratch),
                   MIN_STRAIGHTNESS_GAIN, "difference", values=fx.per_arm(fx.path_straightness)),
        Comparison("curve_monotonicity", "total-variation ratio of the training loss along θ0 → θ1 (1 = monotone; "
                   "larger for pretrained)",
                   lambda p: fx.curve_monotonicity(p.pretrained) - fx.curve_monotonicity(p.scratch),
                   MIN_MONOTONICITY_GAIN, "difference", primary=False, values=fx.per_arm(fx.curve_monotonicity)),
    ),
))
