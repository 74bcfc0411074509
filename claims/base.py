"""The claim abstraction: declared comparisons with thresholds fixed up front, paired statistics, and verdicts.

A claim is a registered object with the paper's section and statement and a list of :class:`Comparison` s. Each
comparison extracts one number per (task, seed) pair of runs -- an *effect*, oriented so that a positive value
agrees with the paper -- and states the minimum effect that counts as "the paper's claim holds" (``min_effect``),
justified from the paper's wording in the claim module. Thresholds are module constants; each comparison's
``registered`` field says when its measure and threshold were fixed relative to the verdict runs whose results had
been seen (most with the first claims code, before any run; some after the first cpu run, in 3b532e2; issue 27's
after the second cpu run and before any standard run).

Statistics (why Student's t): a profile has 3 seeds per task, so an interval of the mean effect rests on n = 3
paired values (6 when two tasks are pooled). The percentile bootstrap undercovers badly at that n (simulated
coverage of its nominal 95% interval: 0.75 at n = 3, 0.86 at n = 6 for normal effects), so the interval is the
Student-t interval ``mean ± t_{0.975, n−1} · sd / √n``. Its coverage is exact for normal effects and is checked in
the suite by simulation (``tests/test_claims_statistics.py``): ≥ 0.93 at nominal 0.95 for normal and moderately
skewed effects (gamma with shape 4 and log-normal with σ = 0.25, skewness up to 1) at n = 3 and n = 6. For strongly
right-skewed effects (skewness ≈ 2) it falls to about 0.88, the misses being on the upper side, so a false
"reproduced" stays rarer than nominal and a false "not reproduced" becomes more likely; the per-pair values are in
claims.json for anyone who wants another interval. The exact sign test that earlier versions computed beside the
interval decided nothing and was dropped; the count of positive effects is reported instead.

Verdict rule for one comparison *within one task* (pairs = seeds):

* ``reproduced``     -- the interval lies above 0 and the mean effect reaches ``min_effect``;
* ``not_reproduced`` -- the interval lies below ``min_effect``: an effect of the claimed size is excluded;
* ``inconclusive``   -- anything else, including fewer than 2 valid pairs (too few to say anything).

How tasks combine (:func:`combine_tasks`): the paper makes each claim for every task it studies, and tasks differ
in more than seed noise (size, label count, difficulty), so tasks are not pooled into one sample. A comparison is
reproduced only when it is reproduced in *every* task, not reproduced when it is not reproduced in *any* task, and
inconclusive otherwise. The pooled mean and t-interval over all pairs are still reported, as a description.

A claim is reproduced in a setting when every *primary* comparison is; not reproduced when any primary comparison
is not reproduced; otherwise inconclusive. Overall, a claim is reproduced only when it is reproduced under every
training setting, and not reproduced when it fails under any.

Preconditions: a pair enters a comparison only when the arms it needs *learned* (training loss at θ1 at most
``LEARNED_FRACTION_OF_CHANCE`` × ln C) and, for comparisons about generalisation, when the arms *generalised*
(dev accuracy above the majority-class rate by a one-sided exact binomial test at ``GENERALIZATION_ALPHA``);
excluded pairs are listed with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from repro.registry import Registry
from repro.results.records import ClaimResult, ComparisonResult, SettingResult, Stat

__all__ = [  # the result records live in repro.results (below claims, the pipeline and the report); re-exported
    "CLAIMS", "Claim", "ClaimResult", "Comparison", "ComparisonResult", "Pair", "SettingResult", "Stat",
]

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not_reproduced", "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
# A comparison whose paired effects are all the same number (zero variance: e.g. a measure saturated at 1 in every
# arm) has a degenerate interval [m, m] that would claim certainty from nothing; it is "undecidable", not a verdict.
# Claims and settings combine it like "inconclusive" (it can never make a claim reproduced or not reproduced).
UNDECIDABLE = "undecidable"
STAT_VERDICTS = (*VERDICTS, UNDECIDABLE)
CONFIDENCE = 0.95
# Generalisation precondition: dev accuracy above the majority-class rate, one-sided exact binomial test at this
# level (Bonferroni-corrected when the best of several evaluations is used). A model at the majority rate has not
# generalised at all, and the claims about generalisation (§5.3, §6) say nothing about such a model.
GENERALIZATION_ALPHA = 0.05
# Precondition: an arm "learned" a task when its training loss at θ1 is at most this fraction of chance, ln(C).
# 0.75 means a quarter of the chance-level loss removed: far outside what a model stuck at its start reaches
# (it stays within a few percent of ln C), and reachable by both arms in every profile but smoke.
LEARNED_FRACTION_OF_CHANCE = 0.75


@dataclass(frozen=True)
class Pair:
    """The evidence for one (setting, task, seed): analyses and training records of both arms."""

    setting: str
    task: str
    seed: int
    pretrained: Any  # Evidence for one run (claims.evidence.RunEvidence)
    scratch: Any


EffectFn = Callable[[Pair], float]


@dataclass(frozen=True)
class Comparison:
    """One quantitative comparison. ``effect(pair)`` is positive when the pair agrees with the paper."""

    name: str
    description: str
    effect: EffectFn = field(repr=False, compare=False)
    min_effect: float
    effect_unit: str  # "log ratio", "difference", ...
    primary: bool = True
    arms: tuple[str, ...] = ("pretrained", "scratch")  # which arms must have learned
    values: Callable[[Pair], dict[str, float]] | None = field(default=None, repr=False, compare=False)
    # further preconditions: each returns None when the pair qualifies, else the reason it is excluded
    requires: tuple[Callable[[Pair], str | None], ...] = field(default=(), repr=False, compare=False)
    # when the measure and its threshold were fixed, relative to the verdict runs whose results had been seen
    # (commit, date, what had been seen); see claims.base.REGISTERED_*
    registered: str = ""


def t_interval(x: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean of the last axis' values; (nan, nan) with fewer than 2 values.

    Vectorised over leading axes of an array (for the coverage simulation); returns arrays then."""
    a = np.asarray(x, dtype=np.float64)
    n = a.shape[-1]
    if n < 2:
        nan = np.full(a.shape[:-1], np.nan)
        return (float("nan"), float("nan")) if a.ndim == 1 else (nan, nan)
    m = a.mean(axis=-1)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * a.std(axis=-1, ddof=1) / math.sqrt(n)
    if a.ndim == 1:
        return float(m - half), float(m + half)
    return m - half, m + half


def decide(mean: float, ci_low: float, ci_high: float, min_effect: float) -> str:
    """The verdict rule for one interval (see the module docstring)."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return INCONCLUSIVE
    if ci_low > 0 and mean >= min_effect:
        return REPRODUCED
    if ci_high < min_effect:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def summarize(effects: Sequence[float], min_effect: float, bounds: int = 0) -> Stat:
    """Mean, sd, Student-t 95% interval and verdict of the finite values in ``effects`` (``bounds`` of which are
    censored bounds, see claims.effects.Bound; recorded, they enter like any value)."""
    e = [float(v) for v in effects if math.isfinite(v)]
    pos = sum(v > 0 for v in e)
    if len(e) < 2:
        m = float(np.mean(e)) if e else float("nan")
        return Stat(len(e), m, float("nan"), float("nan"), float("nan"), pos, INCONCLUSIVE, tuple(e), bounds=bounds)
    mean = float(np.mean(e))
    if all(v == e[0] for v in e):
        return Stat(len(e), mean, 0.0, float("nan"), float("nan"), pos, UNDECIDABLE, tuple(e), bounds=bounds,
                    note=f"constant: every pair's effect is {e[0]:.6g} (zero variance; no interval)")
    lo, hi = t_interval(e)
    return Stat(len(e), mean, float(np.std(e, ddof=1)), lo, hi, pos, decide(mean, lo, hi, min_effect), tuple(e),
                bounds=bounds)


def combine(verdicts: Sequence[str]) -> str:
    """All reproduced -> reproduced; any not reproduced -> not reproduced; else inconclusive (undecidable
    comparisons count as inconclusive)."""
    if not verdicts:
        return INCONCLUSIVE
    if any(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE


def combine_tasks(per_task: dict[str, Stat]) -> str:
    """A comparison's verdict across tasks: it must hold in every task (see the module docstring); undecidable
    when it is undecidable in every task."""
    verdicts = [s.verdict for s in per_task.values()]
    if verdicts and all(v == UNDECIDABLE for v in verdicts):
        return UNDECIDABLE
    return combine(verdicts)


def generalization_p_value(accuracy: float, n: int, majority_rate: float) -> float:
    """One-sided exact binomial p-value of ``accuracy`` on ``n`` examples against the majority-class rate."""
    if n <= 0 or not math.isfinite(accuracy):
        return float("nan")
    k = int(round(accuracy * n))
    if majority_rate >= 1.0:
        return 1.0
    return float(stats.binomtest(k, n, majority_rate, alternative="greater").pvalue)


@dataclass(frozen=True)
class Claim:
    """A registered claim of the paper."""

    id: str
    section: str
    statement: str
    comparisons: tuple[Comparison, ...]
    rationale: str = ""
    # True when every comparison reads only the extended-training runs (§5.3): a setting whose extended runs are
    # the same runs as an earlier setting's is then not counted again (claims.evaluate.evaluate_claim)
    extended_runs_only: bool = False

    def thresholds(self) -> dict[str, float]:
        return {c.name: c.min_effect for c in self.comparisons}


# When comparisons were registered (from the repository history; README "When each threshold was set"). The first
# claims code (1a2c654) preceded every verdict run; 3b532e2 came after the first cpu run's results had been seen
# (reports/cpu-2026-11-26) and before the second (reports/cpu); issue 27's changes came after the second cpu run and
# before any run of the standard profile.
REGISTERED_FIRST = "1a2c654, 2026-11-26: before any verdict run"
REGISTERED_ISSUE9 = "3b532e2, 2026-11-27: after the first cpu run's results were seen, before the second cpu run"
REGISTERED_ISSUE27 = "issue 27, 2026-12-04: after the second cpu run's results were seen, before any standard run"
REGISTERED_ISSUE19 = "issue 19, 2026-12-04: a new secondary measure, before any run measured it"

CLAIMS: Registry[Claim] = Registry("claim")


def register(claim: Claim) -> Claim:
    return CLAIMS.add(claim.id, claim)
