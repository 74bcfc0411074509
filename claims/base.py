"""The claim abstraction: declared comparisons with thresholds fixed up front, paired statistics, and verdicts.

A claim is a registered object with the paper's section and statement and a list of :class:`Comparison` s. Each
comparison extracts one number per (task, seed) pair of runs -- an *effect*, oriented so that a positive value
agrees with the paper -- and states the minimum effect that counts as "the paper's claim holds" (``min_effect``),
justified from the paper's wording in the claim module. Thresholds are module constants, fixed before any result
was seen.

Verdict rule for one comparison (over all pairs, and again per task), with a 95% percentile bootstrap confidence
interval of the mean effect (seeded, 10,000 resamples) and an exact one-sided sign test beside it:

* ``reproduced``     -- the interval lies above 0 and the mean effect reaches ``min_effect``;
* ``not_reproduced`` -- the interval lies below ``min_effect``: an effect of the claimed size is excluded;
* ``inconclusive``   -- anything else, including fewer than 2 valid pairs (too few to say anything).

A claim is reproduced in a setting when every *primary* comparison is; not reproduced when any primary comparison
is not reproduced; otherwise inconclusive. Overall, a claim is reproduced only when it is reproduced under every
training setting, and not reproduced when it fails under any.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from repro.registry import Registry

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not_reproduced", "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
BOOTSTRAP_RESAMPLES = 10_000
CONFIDENCE = 0.95
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
    pretrained: Any  # Evidence for one run (claims.plan.RunEvidence)
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


@dataclass(frozen=True)
class Stat:
    """Summary of the paired effects of one comparison over a set of pairs."""

    n: int
    mean: float
    ci_low: float
    ci_high: float
    sign_test_p: float  # one-sided exact sign test for effect > 0
    positive: int
    verdict: str
    effects: tuple[float, ...] = ()


@dataclass(frozen=True)
class ComparisonResult:
    name: str
    description: str
    primary: bool
    min_effect: float
    effect_unit: str
    overall: Stat
    per_task: dict[str, Stat]
    per_pair: tuple[dict[str, Any], ...]  # task, seed, effect, and the raw values of each arm
    excluded: tuple[str, ...]  # pairs left out, with the reason


@dataclass(frozen=True)
class SettingResult:
    setting: str
    verdict: str
    per_task: dict[str, str]
    comparisons: tuple[ComparisonResult, ...]
    reason: str


@dataclass(frozen=True)
class ClaimResult:
    id: str
    section: str
    statement: str
    verdict: str
    settings: tuple[SettingResult, ...]
    per_task: dict[str, str]
    reason: str
    thresholds: dict[str, float]


def bootstrap_ci(x: Sequence[float], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded). With one value the interval is that value."""
    a = np.asarray(x, dtype=np.float64)
    if len(a) == 1:
        return float(a[0]), float(a[0])
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), size=(resamples, len(a)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(lo), float(hi)


def summarize(effects: Sequence[float], min_effect: float, seed: int = 0) -> Stat:
    e = [float(v) for v in effects if math.isfinite(v)]
    if len(e) < 2:
        m = float(np.mean(e)) if e else float("nan")
        return Stat(len(e), m, float("nan"), float("nan"), float("nan"), sum(v > 0 for v in e), INCONCLUSIVE,
                    tuple(e))
    lo, hi = bootstrap_ci(e, seed)
    mean = float(np.mean(e))
    pos = sum(v > 0 for v in e)
    nonzero = sum(v != 0 for v in e)
    p = float(stats.binomtest(pos, nonzero, 0.5, alternative="greater").pvalue) if nonzero else 1.0
    if lo > 0 and mean >= min_effect:
        verdict = REPRODUCED
    elif hi < min_effect:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Stat(len(e), mean, lo, hi, p, pos, verdict, tuple(e))


def combine(verdicts: Sequence[str]) -> str:
    """All reproduced -> reproduced; any not reproduced -> not reproduced; else inconclusive."""
    if not verdicts:
        return INCONCLUSIVE
    if any(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE


@dataclass(frozen=True)
class Claim:
    """A registered claim of the paper."""

    id: str
    section: str
    statement: str
    comparisons: tuple[Comparison, ...]
    rationale: str = ""

    def thresholds(self) -> dict[str, float]:
        return {c.name: c.min_effect for c in self.comparisons}


CLAIMS: Registry[Claim] = Registry("claim")


def register(claim: Claim) -> Claim:
    return CLAIMS.add(claim.id, claim)
