"""Apply a claim's comparisons to the plan's pairs: preconditions, per-setting and per-task verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence

from claims.base import (
    INCONCLUSIVE,
    Claim,
    ClaimResult,
    ComparisonResult,
    Pair,
    SettingResult,
    combine,
    summarize,
)


def evaluate_comparison(comp, pairs: Sequence[Pair]) -> ComparisonResult:  # noqa: ANN001
    effects: list[float] = []
    tasks_of: list[str] = []
    per_pair: list[dict] = []
    excluded: list[str] = []
    for p in pairs:
        missing = [getattr(p, arm).learned_reason() for arm in comp.arms if not getattr(p, arm).learned]
        if missing:
            excluded.append(f"{p.task}/seed{p.seed}: " + "; ".join(missing))
            continue
        try:
            e = float(comp.effect(p))
        except (KeyError, ValueError, ZeroDivisionError, AttributeError, TypeError) as err:
            excluded.append(f"{p.task}/seed{p.seed}: effect undefined ({err})")
            continue
        if not math.isfinite(e):
            excluded.append(f"{p.task}/seed{p.seed}: effect not finite")
            continue
        effects.append(e)
        tasks_of.append(p.task)
        row = {"task": p.task, "seed": p.seed, "effect": e}
        if comp.values is not None:
            row.update(comp.values(p))
        per_pair.append(row)
    overall = summarize(effects, comp.min_effect)
    per_task = {
        t: summarize([e for e, tt in zip(effects, tasks_of) if tt == t], comp.min_effect)
        for t in dict.fromkeys(p.task for p in pairs)
    }
    return ComparisonResult(comp.name, comp.description, comp.primary, comp.min_effect, comp.effect_unit,
                            overall, per_task, tuple(per_pair), tuple(excluded))


def evaluate_claim(claim: Claim, pairs: Sequence[Pair]) -> ClaimResult:
    settings = list(dict.fromkeys(p.setting for p in pairs))
    tasks = list(dict.fromkeys(p.task for p in pairs))
    results: list[SettingResult] = []
    for s in settings:
        sp = [p for p in pairs if p.setting == s]
        comps = tuple(evaluate_comparison(c, sp) for c in claim.comparisons)
        prim = [c for c in comps if c.primary]
        verdict = combine([c.overall.verdict for c in prim])
        per_task = {t: combine([c.per_task[t].verdict for c in prim]) for t in tasks}
        reason = "; ".join(
            f"{c.name}: {c.overall.verdict} (n={c.overall.n}, mean {c.overall.mean:+.3g}, 95% CI "
            f"[{c.overall.ci_low:+.3g}, {c.overall.ci_high:+.3g}], needs ≥ {c.min_effect:+.3g})"
            + (f"; {len(c.excluded)} pair(s) excluded" if c.excluded else "")
            for c in prim
        )
        results.append(SettingResult(s, verdict, per_task, comps, reason))
    overall = combine([r.verdict for r in results]) if results else INCONCLUSIVE
    per_task = {t: combine([r.per_task[t] for r in results]) for t in tasks}
    survived = [r.setting for r in results if r.verdict == "reproduced"]
    reason = (f"reproduced under {', '.join(survived) or 'no setting'} of {', '.join(settings)}. "
              + " | ".join(f"[{r.setting}] {r.reason}" for r in results))
    return ClaimResult(claim.id, claim.section, claim.statement, overall, tuple(results), per_task, reason,
                       claim.thresholds())
