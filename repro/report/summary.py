"""What a reader needs on the first screen, read from ``claims.json`` only: which comparison decided each verdict
cell (claim × task × setting) and with which number, one sentence per claim saying why it came out as it did,
verdict counts, and the excluded pairs with their commonest reason.

Why a module of its own: these are presentation rules over saved verdicts (which primary comparison to quote for a
cell), not science; the verdicts themselves are never recomputed or changed here. A cell's verdict is the stored
``SettingResult.per_task`` value; the comparison quoted is the first primary comparison whose per-task verdict
equals it (the one that made the cell what it is: a claim holds in a task only when every primary comparison does).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from repro.report.reasons import NUMBER, commonest_reason
# readable names of the comparisons (claims/*.py); anything else shows its id with spaces
COMPARISON_NAMES: dict[str, str] = {
    "hessian_lambda_max_matched_loss": "λ_max at matched loss",
    "hessian_lambda_max_learned_level": "λ_max at the learned level",
    "hessian_lambda_max_theta1": "λ_max at θ1",
    "hessian_trace": "Hessian trace",
    "basin_area_paper_units": "basin area (δ1/δ2 plane)",
    "basin_area_scale_aware": "basin area (scale-aware)",
    "random_direction_width": "width along random directions",
    "epsilon_sharpness": "ε-sharpness",
    "steps_to_loss_level": "steps to the loss level",
    "final_train_loss": "final training loss",
    "trajectory_straightness": "trajectory straightness",
    "projected_trajectory_straightness": "projected straightness",
    "train_loss_auc": "area under the training curve",
    "curve_monotonicity": "monotonicity θ0→θ1",
    "dev_accuracy_drop": "dev-accuracy drop in extended training",
    "dev_loss_rise": "dev-loss rise in extended training",
    "dev_accuracy": "dev accuracy",
    "surface_rank_agreement": "train/dev surface agreement",
    "minimum_gap": "train/dev minimum gap",
    "argmin_distance": "train/dev argmin distance",
    "relative_change_high_vs_low": "relative change high vs low layers",
    "rollback_cost_train": "rollback cost (training loss)",
    "rollback_cost_dev": "rollback cost (dev loss)",
    "layer_width_normalized": "layer-group width",
    "layer_surface_flatness": "layer-surface flatness",
    "depth_correlation": "depth correlation",
    "scaled_lambda_max_learned_level": "scale-aware λ_max at the learned level",
    "scaled_lambda_max_theta1": "scale-aware λ_max at θ1",
    "random_width_learned_level": "random-direction width at the learned level",
    "adaptive_sharpness": "adaptive sharpness",
    "flatness_generalization_rank": "flatness–generalisation rank correlation",
    "layer_swap_cost": "layer swap cost",
    "group_lambda_max_high_vs_low": "λ_max of high vs low layer groups",
}
# verdict ids that stored reasons quote
VERDICT_WORDS: dict[str, str] = {"not_reproduced": "not reproduced", "not_all_reproduced": "not all reproduced"}
CLAIM_NAMES: dict[str, str] = {
    "wider_optima": "wider optima",
    "easier_optimization": "easier optimization",
    "overfitting_robustness": "robust to overfitting",
    "generalization_consistency": "consistent generalization",
    "lower_layer_invariance": "lower layers invariant",
}
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def readable(name: str) -> str:
    """A comparison or claim id as a reader's name."""
    return COMPARISON_NAMES.get(name) or CLAIM_NAMES.get(name) or name.replace("_", " ")


def readable_text(text: str) -> str:
    """``text`` with every snake_case id replaced by its readable name (stored reasons name comparisons and
    verdicts); an id without a name reads with spaces."""
    return _SNAKE.sub(lambda m: COMPARISON_NAMES.get(m.group(0)) or CLAIM_NAMES.get(m.group(0))
                      or VERDICT_WORDS.get(m.group(0)) or m.group(0).replace("_", " "), text)


def num(x: Any, digits: int = 2) -> str:
    """A signed number with ``digits`` significant digits and a real minus sign; ``—`` when missing."""
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
        return "—"
    s = f"{x:+.{digits}g}"
    if "e" in s:
        s = f"{x:+.{digits + 1}f}"
    return s.replace("-", "−")


@dataclass(frozen=True)
class Cell:
    """One verdict cell: the stored verdict and the comparison that decided it (None: no comparison, e.g. a
    setting that reuses another's runs)."""

    claim: str
    setting: str
    task: str
    verdict: str
    comparison: Any | None
    stat: Any | None
    note: str = ""  # why there is no comparison

    def number(self) -> str:
        """The one number that decided the cell: mean effect and its interval against the threshold."""
        if self.comparison is None or self.stat is None:
            return self.note or "—"
        st, comp = self.stat, self.comparison
        need = f"need ≥ {num(comp.min_effect)}"
        if st.n == 0:
            return f"n = 0 valid pairs; {need}"
        if st.n < 2 or not math.isfinite(st.ci_low):
            return f"n = {st.n}: mean {num(st.mean)}, no interval{'; ' + st.note if st.note else ''}; {need}"
        return f"{num(st.mean)} [{num(st.ci_low)}, {num(st.ci_high)}] {need}"


def _deciding(setting: Any, task: str, verdict: str) -> tuple[Any | None, Any | None]:
    primary = [c for c in setting.comparisons if c.primary and task in c.per_task]
    for comp in primary:
        if comp.per_task[task].verdict == verdict:
            return comp, comp.per_task[task]
    for comp in primary:  # e.g. "undecidable" stat under an inconclusive cell
        if comp.per_task[task].verdict != "reproduced":
            return comp, comp.per_task[task]
    return (primary[0], primary[0].per_task[task]) if primary else (None, None)


def cells(claims: Any) -> list[Cell]:
    """Every (claim, setting, task) cell of a :class:`~repro.results.ClaimsReport`, in display order."""
    out = []
    for c in claims.claims:
        for s in c.settings:
            for t in claims.tasks:
                verdict = s.per_task.get(t, "")
                if not verdict:
                    out.append(Cell(c.id, s.setting, t, "", None, None, "not evaluated"))
                    continue
                comp, st = _deciding(s, t, verdict)
                out.append(Cell(c.id, s.setting, t, verdict, comp, st, "" if comp else readable_text(s.reason)))
    return out


@dataclass(frozen=True)
class Exclusions:
    """Pairs counted over the primary comparisons of every claim and setting."""

    pairs: int  # (comparison, task, seed) pairs of primary comparisons
    excluded: int
    reason: str
    reason_count: int


def exclusions(claims: Any) -> Exclusions:
    entries: list[str] = []
    pairs = 0
    for c in claims.claims:
        for s in c.settings:
            for comp in s.comparisons:
                if comp.primary:
                    entries.extend(comp.excluded)
                    pairs += len(comp.per_pair) + len(comp.excluded)
    reason, count, _ = commonest_reason(entries)
    return Exclusions(pairs, len(entries), reason, count)


def verdict_counts(claims: Any) -> str:
    """"0 of 5 reproduced, 2 not reproduced, 3 inconclusive" (the overall line: the badge and the rest)."""
    n = len(claims.claims)
    counts = Counter(c.verdict for c in claims.claims)
    return ", ".join([f"{counts.get('reproduced', 0)} of {n} reproduced", *other_counts(claims)])


def other_counts(claims: Any) -> list[str]:
    """The counts of every verdict other than reproduced, in words ("2 not reproduced", "3 inconclusive")."""
    counts = Counter(c.verdict for c in claims.claims)
    parts: list[str] = []
    for v in ("not_reproduced", "inconclusive", "undecidable"):
        if counts.get(v):
            parts.append(f"{counts[v]} {v.replace('_', ' ')}")
    other = sum(k for v, k in counts.items() if v not in ("reproduced", "not_reproduced", "inconclusive",
                                                              "undecidable"))
    if other:
        parts.append(f"{other} other")
    return parts


def _why(cell: Cell) -> str:
    comp, st = cell.comparison, cell.stat
    if comp is None or st is None:
        return cell.note or "no comparison"
    name = readable(comp.name)
    if st.n == 0:
        excluded = [e for e in comp.excluded if e.startswith(f"{cell.task}/")] or list(comp.excluded)
        reason, count, total = commonest_reason(excluded)
        if not reason:
            return f"{name}: n = 0 valid pairs"
        where = "in every pair" if count == total else f"in {count} of {total} pairs"
        return f"{name}: n = 0 valid pairs ({reason} {where})"
    if st.n < 2 or not math.isfinite(st.ci_low):
        return f"{name}: only n = {st.n} valid pair{'s' if st.n != 1 else ''}, no interval"
    interval = f"{num(st.mean)} [{num(st.ci_low)}, {num(st.ci_high)}]"
    if cell.verdict == "reproduced":
        return f"{name} {interval} reaches ≥ {num(comp.min_effect)}"
    if cell.verdict == "not_reproduced":
        from repro.report.verdicts import reader_verdict  # verdicts builds on this module

        words = reader_verdict(cell.verdict, st, comp, cell.task).words
        return f"{name} {interval}: {words} ({num(comp.min_effect)})"
    if st.note:
        return f"{name}: {st.note}"
    return f"{name} {interval} does not decide ≥ {num(comp.min_effect)}"


def finding(claims: Any, claim: Any, all_cells: Sequence[Cell] | None = None) -> str:
    """One sentence: the claim's verdict and, per decisive reason, the cells it holds in."""
    mine = [c for c in (all_cells if all_cells is not None else cells(claims)) if c.claim == claim.id]
    groups: dict[str, list[str]] = {}
    for c in mine:
        if claim.verdict == "reproduced" or c.verdict != "reproduced":
            why = _why(c)
            # numbers differ per cell: group by what was said without them, keep the first cell's numbers
            key = NUMBER.sub("#", why)
            groups.setdefault(key, [why]).append(f"{c.task}/{c.setting}")
    parts = []
    for texts in groups.values():
        why, where = texts[0], texts[1:]
        many = len(where) > 1
        parts.append(f"{where[0] + ': ' if not many else ''}{why}"
                     + (f" (e.g. {where[0]}; also {', '.join(where[1:])})" if many else ""))
    verdict = claim.verdict.replace("_", " ")
    return f"{verdict.capitalize()}: " + "; ".join(parts) + "." if parts else f"{verdict.capitalize()}."

