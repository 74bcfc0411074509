"""Apply a claim's comparisons to the plan's pairs: preconditions, per-setting and per-task verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from claims.effects import effect_interval
from claims.base import (
    INCONCLUSIVE,
    Claim,
    ClaimResult,
    ComparisonResult,
    Pair,
    SettingResult,
    Stat,
    combine,
    combine_tasks,
    summarize,
    summarize_rank,
)


def evaluate_across_runs(comp, pairs: Sequence[Pair]) -> ComparisonResult:  # noqa: ANN001
    """A comparison across the runs of a task (``Comparison.across_runs``): every learned run of ``comp.arms`` in
    ``pairs`` that meets the preconditions gives one (x, y); each task's verdict is claims.base.summarize_rank's.
    Runs are not paired here: the pairs only carry them (each run once)."""
    rows: list[dict] = []
    excluded: list[str] = []
    for p in pairs:
        unmet = [r for r in (req(p) for req in comp.requires) if r]
        for arm in comp.arms:
            ev = getattr(p, arm)
            if not ev.learned:
                excluded.append(f"{p.task}/seed{p.seed}/{arm}: {ev.learned_reason()}")
                continue
            if unmet:
                excluded.append(f"{p.task}/seed{p.seed}/{arm}: " + "; ".join(unmet))
                continue
            try:
                x, y = (float(v) for v in comp.across_runs(ev))
            except (KeyError, ValueError, ZeroDivisionError, AttributeError, TypeError) as err:
                excluded.append(f"{p.task}/seed{p.seed}/{arm}: undefined ({err})")
                continue
            if not (math.isfinite(x) and math.isfinite(y)):
                excluded.append(f"{p.task}/seed{p.seed}/{arm}: not finite")
                continue
            rows.append({"task": p.task, "seed": p.seed, "init": arm, "x": x, "y": y})

    def stat(task: str | None) -> Stat:
        keep = [r for r in rows if task is None or r["task"] == task]
        return summarize_rank([r["x"] for r in keep], [r["y"] for r in keep], comp.min_effect)

    per_task = {t: stat(t) for t in dict.fromkeys(p.task for p in pairs)}
    overall = replace(stat(None), verdict=combine_tasks(per_task))
    return ComparisonResult(comp.name, comp.description, comp.primary, comp.min_effect, comp.effect_unit,
                            overall, per_task, tuple(rows), tuple(excluded), comp.registered,
                            controls=comp.controls)


def evaluate_comparison(comp, pairs: Sequence[Pair]) -> ComparisonResult:  # noqa: ANN001
    """One comparison over ``pairs``: preconditions, each pair's effect interval (claims.effects.effect_interval),
    saturated pairs set aside, the effect's resolution; per-task verdicts by claims.base.summarize."""
    if comp.across_runs is not None:
        return evaluate_across_runs(comp, pairs)
    effects: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    quanta: list[float] = []
    tasks_of: list[str] = []
    bound_of: list[bool] = []
    per_pair: list[dict] = []
    excluded: list[str] = []
    saturated_in: dict[str, int] = {}
    for p in pairs:
        missing = [getattr(p, arm).learned_reason() for arm in comp.arms if not getattr(p, arm).learned]
        if missing:
            excluded.append(f"{p.task}/seed{p.seed}: " + "; ".join(missing))
            continue
        unmet = [r for r in (req(p) for req in comp.requires) if r]
        if unmet:
            excluded.append(f"{p.task}/seed{p.seed}: " + "; ".join(unmet))
            continue
        try:
            if comp.saturated is not None and comp.saturated(p):
                saturated_in[p.task] = saturated_in.get(p.task, 0) + 1
                excluded.append(f"{p.task}/seed{p.seed}: saturated (both arms at the measure's bound: the measure "
                                "cannot tell them apart)")
                continue
            raw = comp.effect(p)
            side = getattr(raw, "side", None)  # a censored bound (claims.effects.Bound) keeps its side
            e = float(raw)
            lo, hi = effect_interval(raw)
            q = float(comp.resolution(p)) if comp.resolution is not None else 0.0
        except (KeyError, ValueError, ZeroDivisionError, AttributeError, TypeError) as err:
            excluded.append(f"{p.task}/seed{p.seed}: effect undefined ({err})")
            continue
        if not math.isfinite(e):
            excluded.append(f"{p.task}/seed{p.seed}: effect not finite")
            continue
        effects.append(e)
        lows.append(lo)
        highs.append(hi)
        quanta.append(q if math.isfinite(q) else 0.0)
        tasks_of.append(p.task)
        bound_of.append(side is not None)
        row = {"task": p.task, "seed": p.seed, "effect": e}
        if side is not None:
            row["bound"] = side
        if comp.values is not None:
            row.update(comp.values(p))
        per_pair.append(row)

    def stat(task: str | None) -> Stat:
        keep = [i for i, t in enumerate(tasks_of) if task is None or t == task]
        sat = sum(saturated_in.values()) if task is None else saturated_in.get(task, 0)
        return summarize([effects[i] for i in keep], comp.min_effect, bounds=sum(bound_of[i] for i in keep),
                         lows=[lows[i] for i in keep], highs=[highs[i] for i in keep],
                         quantum=max((quanta[i] for i in keep), default=0.0), saturated=sat)

    per_task = {t: stat(t) for t in dict.fromkeys(p.task for p in pairs)}
    # pooled mean and interval describe all pairs; the verdict is the per-task rule (claims.base.combine_tasks)
    overall = replace(stat(None), verdict=combine_tasks(per_task))
    return ComparisonResult(comp.name, comp.description, comp.primary, comp.min_effect, comp.effect_unit,
                            overall, per_task, tuple(per_pair), tuple(excluded), comp.registered,
                            controls=comp.controls)


def in_scope(comp, generalization_tasks: Sequence[str] | None) -> tuple[str, ...] | None:  # noqa: ANN001
    """The tasks ``comp`` is evaluated on: a profile may restrict the comparisons that need *both* arms to
    generalise to the tasks where its pilot shows the scratch arm can (``Profile.generalization_tasks``,
    registered before the run with its reason); None = every task."""
    if generalization_tasks is None:
        return None
    both = any(getattr(r, "kind", "") == "generalization" and getattr(r, "arms", "") == "both" for r in comp.requires)
    return tuple(generalization_tasks) if both else None


def evaluate_claim(claim: Claim, pairs: Sequence[Pair],
                   generalization_tasks: Sequence[str] | None = None) -> ClaimResult:
    """Evaluate ``claim`` on ``pairs`` (every setting, task and seed of a plan); see claims.base for the rules."""
    settings = list(dict.fromkeys(p.setting for p in pairs))
    tasks = list(dict.fromkeys(p.task for p in pairs))
    results: list[SettingResult] = []
    seen: dict[tuple, str] = {}
    counted: list[SettingResult] = []
    for s in settings:
        sp = [p for p in pairs if p.setting == s]
        if claim.extended_runs_only:
            key = _extended_runs(sp)
            if key in seen:
                first = next(r for r in results if r.setting == seen[key])
                results.append(SettingResult(s, first.verdict, dict(first.per_task), (),
                                             f"same extended-training runs as setting {seen[key]}: not counted "
                                             "again"))
                continue
            seen[key] = s
        comps = []
        for c in claim.comparisons:
            scope = in_scope(c, generalization_tasks)
            if scope is None:
                comps.append(evaluate_comparison(c, sp))
            else:
                comps.append(replace(evaluate_comparison(c, [p for p in sp if p.task in scope]), scope=scope))
        comps = tuple(comps)
        prim = [c for c in comps if c.primary]
        verdict = combine([c.overall.verdict for c in prim])
        per_task = {t: combine([c.per_task[t].verdict for c in prim if t in c.per_task]) for t in tasks}
        reason = "; ".join(_comparison_reason(c) for c in prim)
        results.append(SettingResult(s, verdict, per_task, comps, reason))
        counted.append(results[-1])
    overall = combine([r.verdict for r in counted]) if counted else INCONCLUSIVE
    per_task = {t: combine([r.per_task[t] for r in counted]) for t in tasks}
    reason = _claim_summary(results) + " " + " | ".join(f"[{r.setting}] {r.reason}" for r in results)
    return ClaimResult(claim.id, claim.section, claim.statement, overall, tuple(results), per_task, reason,
                       claim.thresholds(), claim.rationale)


def _num(x: float) -> str:
    return f"{x:+.3g}" if math.isfinite(x) else "n/a"


def _comparison_reason(c: ComparisonResult) -> str:
    o = c.overall
    if o.n < 2:
        stat = f"n={o.n}: too few valid pairs for an interval"
    else:
        stat = f"n={o.n}, pooled mean {_num(o.mean)}, 95% CI [{_num(o.ci_low)}, {_num(o.ci_high)}]"
    tasks = ", ".join(f"{t} {s.verdict}" for t, s in c.per_task.items())
    return (f"{c.name}: {o.verdict} ({stat}; needs ≥ {c.min_effect:+.3g} in every task; {tasks})"
            + (f"; {len(c.excluded)} pair(s) excluded" if c.excluded else ""))


def _claim_summary(results: Sequence[SettingResult]) -> str:
    """One sentence on how the settings came out, e.g. "Reproduced under base; not reproduced under long."."""
    if not results:
        return "No setting was evaluated."
    groups: dict[str, list[str]] = {}
    for r in results:
        groups.setdefault(r.verdict, []).append(r.setting)
    words = {"reproduced": "Reproduced", "not_reproduced": "Not reproduced", "inconclusive": "Inconclusive"}
    return "; ".join(f"{words[v]} under {', '.join(s)}" for v, s in groups.items()) + "."


def _extended_runs(pairs: Sequence[Pair]) -> tuple:
    return tuple(sorted((p.task, p.seed, str(p.pretrained.overfit_run_dir), str(p.scratch.overfit_run_dir))
                        for p in pairs))
