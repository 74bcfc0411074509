"""The claim abstraction: declared comparisons with registered thresholds, paired statistics, and verdicts.

A claim is a registered object with the paper's section and statement and a list of :class:`Comparison` s. Each
comparison extracts one number per (task, seed) pair of runs -- an *effect*, oriented so that a positive value
agrees with the paper -- and states the minimum effect that counts as "the paper's claim holds" (``min_effect``),
the project's registered choice (the paper gives no thresholds; the claim module says how it reads the paper's
words). Thresholds are module constants; each comparison's ``registered`` field says when its measure and threshold
were registered relative to the runs whose results had been seen (REGISTERED_FIRST before any verdict run;
REGISTERED_ISSUE9 after the first cpu run; REGISTERED_ISSUE27 after the second, before any standard run;
REGISTERED_V3, claims/REGISTRATION_V3.md, before any run under its rules).

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
* ``inconclusive``   -- anything else, including fewer than 2 valid pairs (too few to say anything);
* ``undecidable``    -- every effect the same number, a spread below the effect's registered resolution, or fewer
  than 2 pairs left once saturated pairs (both arms at the measure's bound) are set aside (science v3, §4).

Censored effects (science v3, claims/REGISTRATION_V3.md §1): a pair whose width or area was censored carries an
interval [lo, hi] for its effect with one infinite end; "reproduced" is then judged on every pair's lo and "not
reproduced" on every pair's hi (:func:`summarize`), and an infinite end makes its direction unreachable. The mean
used for "reproduced" is never above the mean of the true effects, the one for "not reproduced" never below it;
the interval's spread is the spread of those ends, not of the true effects.

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
    # Science v3 (claims/REGISTRATION_V3.md §4): ``saturated(pair)`` is True when both arms sit at the measure's
    # bound (the pair cannot tell them apart; set aside); ``resolution(pair)`` is the effect's measurement quantum
    # for that pair (a task whose spread is below its largest quantum is undecidable)
    saturated: Callable[[Pair], bool] | None = field(default=None, repr=False, compare=False)
    resolution: Callable[[Pair], float] | None = field(default=None, repr=False, compare=False)
    # which bias of the measure this comparison controls and which it leaves (REGISTRATION_V3.md §5)
    controls: str = ""
    # A comparison *across runs* instead of within pairs (REGISTRATION_V3.md §6, §6.1's flatness-generalisation
    # association): ``across_runs(arm_evidence) -> (x, y)`` for every learned run of ``arms`` in a task; the
    # task's statistic is Spearman's ρ(x, y) with a Fisher-z interval (claims.evaluate.evaluate_across_runs), and
    # ``effect`` is not used.
    across_runs: Callable[[Any], tuple[float, float]] | None = field(default=None, repr=False, compare=False)


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


def _direction(values: Sequence[float], infinite: float) -> tuple[tuple[int, float, float, float], int]:
    """((n, mean, ci_low, ci_high), blocked) of one direction's ends; ``blocked`` counts the infinite ones."""
    blocked = sum(v == infinite for v in values)
    finite = [v for v in values if math.isfinite(v)]
    nan = float("nan")
    if blocked or len(finite) < 2:
        return (len(finite), float(np.mean(finite)) if finite else nan, nan, nan), blocked
    lo, hi = t_interval(finite)
    return (len(finite), float(np.mean(finite)), lo, hi), blocked


def summarize(effects: Sequence[float], min_effect: float, bounds: int = 0, *,
              lows: Sequence[float] | None = None, highs: Sequence[float] | None = None,
              quantum: float = 0.0, saturated: int = 0) -> Stat:
    """Mean, sd, Student-t 95% interval and verdict of the finite values in ``effects``.

    Science v3 (claims/REGISTRATION_V3.md §1, §4): ``lows``/``highs`` are each pair's interval ends (a censored
    bound has one infinite end, claims.effects.Bound; default: the effects themselves). "Reproduced" is judged on
    the lows (their interval above 0 and mean ≥ ``min_effect``), "not reproduced" on the highs (their interval
    below ``min_effect``); an infinite end blocks its direction. The main mean and interval describe the effects
    as entered (a bound at its finite end). Undecidable: every effect the same number, a spread below ``quantum``
    (the effect's measurement resolution), or fewer than 2 pairs left after ``saturated`` pairs were set aside."""
    e = [float(v) for v in effects if math.isfinite(v)]
    lows = list(e) if lows is None else [float(v) for v in lows]
    highs = list(e) if highs is None else [float(v) for v in highs]
    lower, blocked_lower = _direction(lows, -math.inf)
    upper, blocked_upper = _direction(highs, math.inf)
    extra = {"lower": lower, "upper": upper, "blocked_lower": blocked_lower, "blocked_upper": blocked_upper,
             "bounds": bounds}
    pos = sum(v > 0 for v in e)
    nan = float("nan")
    if len(e) < 2:
        m = float(np.mean(e)) if e else nan
        if saturated:
            return Stat(len(e), m, nan, nan, nan, pos, UNDECIDABLE, tuple(e), **extra,
                        note=f"saturated: {saturated} pair(s) had both arms at the measure's bound, {len(e)} left")
        return Stat(len(e), m, nan, nan, nan, pos, INCONCLUSIVE, tuple(e), **extra)
    mean = float(np.mean(e))
    if all(v == e[0] for v in e):
        return Stat(len(e), mean, 0.0, nan, nan, pos, UNDECIDABLE, tuple(e), **extra,
                    note=f"constant: every pair's effect is {e[0]:.6g} (zero variance; no interval)")
    sd = float(np.std(e, ddof=1))
    lo, hi = t_interval(e)
    if sd < quantum:
        return Stat(len(e), mean, sd, lo, hi, pos, UNDECIDABLE, tuple(e), **extra,
                    note=f"spread {sd:.3g} below the measurement resolution {quantum:.3g}: the interval would come "
                         "from rounding, not from the seeds")
    # a blocked direction has no interval (_direction), so it can never be reached
    reproduced = lower[2] > 0 and lower[1] >= min_effect
    refuted = upper[3] < min_effect
    verdict = REPRODUCED if reproduced and not refuted else NOT_REPRODUCED if refuted and not reproduced \
        else INCONCLUSIVE
    notes = []
    if blocked_lower:
        notes.append(f"{blocked_lower} pair(s) bounded only from above: reproduced unreachable")
    if blocked_upper:
        notes.append(f"{blocked_upper} pair(s) bounded only from below: not reproduced unreachable")
    if reproduced and refuted:
        notes.append("both directions reached on different ends: inconclusive")
    return Stat(len(e), mean, sd, lo, hi, pos, verdict, tuple(e), **extra, note="; ".join(notes))


# Spearman ρ's standard error in Fisher's z, 1.06/√(n − 3) (Fieller, Hartley & Pearson 1957); fewer runs than
# MIN_RUNS_FOR_RANK leave no interval.
SPEARMAN_Z_SE = 1.06
MIN_RUNS_FOR_RANK = 5


def summarize_rank(x: Sequence[float], y: Sequence[float], min_effect: float) -> Stat:
    """Spearman ρ of ``x`` and ``y`` with its Fisher-z 95% interval and the verdict rule of :func:`decide` on it
    (reproduced: interval above 0 and ρ ≥ ``min_effect``; not reproduced: interval below it). Undecidable when
    either variable is constant (ρ undefined). The interval's centre is capped at the largest |ρ| short of 1."""
    n = len(x)
    nan = float("nan")
    if n < MIN_RUNS_FOR_RANK:
        return Stat(n, nan, nan, nan, nan, 0, INCONCLUSIVE, (), note=f"{n} runs: a rank interval needs "
                    f"≥ {MIN_RUNS_FOR_RANK}")
    if len(set(x)) < 2 or len(set(y)) < 2:
        return Stat(n, nan, nan, nan, nan, 0, UNDECIDABLE, (), note="a variable is constant over the runs: ρ undefined")
    rho = float(stats.spearmanr(x, y).statistic)
    # ρ = ±1 has an infinite z: it is read at the nearest value the ranks can take (one adjacent swap, Σd² = 2),
    # so that a perfect ordering of few runs gets the interval of an almost perfect one, not certainty
    cap = 1 - 12 / (n * (n * n - 1))
    z = math.atanh(max(-cap, min(cap, rho)))
    half = stats.norm.ppf(0.5 + CONFIDENCE / 2) * SPEARMAN_Z_SE / math.sqrt(n - 3)
    lo, hi = math.tanh(z - half), math.tanh(z + half)
    verdict = decide(rho, lo, hi, min_effect)
    return Stat(n, rho, nan, lo, hi, int(rho > 0), verdict, (rho,), lower=(n, rho, lo, hi), upper=(n, rho, lo, hi),
                note=f"Spearman ρ over {n} runs, Fisher-z interval")


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
REGISTERED_V3 = ("science v3, issue 36, 2026-12-07 (claims/REGISTRATION_V3.md, 6518971): after the cpu runs' "
                 "results were seen, before any run under these rules")

CLAIMS: Registry[Claim] = Registry("claim")


def register(claim: Claim) -> Claim:
    return CLAIMS.add(claim.id, claim)
