"""Verdict words a reader cannot misread, derived from the saved verdict and its saved interval.

Why: the claims code stores four verdicts (``reproduced``, ``not_reproduced``, ``inconclusive``, ``undecidable``),
and "not reproduced" hides two different findings: an interval that excludes the paper's direction altogether
(the data speak *against* the paper) and an interval in the paper's direction whose effect is below the project's
registered minimum (e.g. +0.15 [+0.10, +0.20] against a bar of 0.223: the paper's direction, a smaller size). A cell
with no valid pair says nothing about the paper either way: every pair was excluded, and the reason is the finding.

Nothing here judges the science again: the stored verdict decides which family of words applies; the saved interval
only picks the wording inside "not reproduced" (effects are oriented so that a positive value agrees with the paper,
claims.base). Where the interval is censored (science v3), "not reproduced" was judged on the pairs' upper ends
(``Stat.upper``), so the wording reads those.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from repro.report.markup import Safe, el
from repro.report.reasons import commonest_reason

# (css class, visible words) of each reader verdict
REPRODUCED = ("reproduced", "reproduced")
AGAINST = ("against", "against the paper")
BELOW_MINIMUM = ("below-minimum", "smaller than the registered minimum")
EXCLUDED = ("excluded", "excluded")
INCONCLUSIVE = ("inconclusive", "inconclusive")
UNDECIDABLE = ("undecidable", "not decidable")
NOT_EVALUATED = ("unknown", "not evaluated")


@dataclass(frozen=True)
class ReaderVerdict:
    """What a cell's stored verdict means, in words: ``key`` (a CSS class), ``words`` and, for an excluded cell,
    ``reason`` (the commonest exclusion reason of its pairs)."""

    key: str
    words: str
    reason: str = ""

    def text(self) -> str:
        return f"{self.words}: {self.reason}" if self.reason else self.words


def _upper_end(stat: Any) -> float:
    """The upper end of the interval "not reproduced" was judged on (the pairs' upper ends where recorded)."""
    upper = getattr(stat, "upper", None)
    if isinstance(upper, Sequence) and len(upper) == 4 and upper[0] and math.isfinite(upper[3]):
        return float(upper[3])
    return float(stat.ci_high)


def reader_verdict(verdict: str, stat: Any | None = None, comparison: Any | None = None, task: str | None = None
                   ) -> ReaderVerdict:
    """The reader's words for a stored ``verdict`` with the ``stat`` (and ``comparison``) that decided it."""
    if not verdict:
        return ReaderVerdict(*NOT_EVALUATED)
    if verdict == "reproduced":
        return ReaderVerdict(*REPRODUCED)
    if stat is not None and stat.n == 0:
        excluded = list(getattr(comparison, "excluded", ()) or ())
        mine = [e for e in excluded if task is not None and e.startswith(f"{task}/")] or excluded
        reason, _, _ = commonest_reason(mine)
        return ReaderVerdict(*EXCLUDED, reason=reason)
    if verdict == "not_reproduced":
        if stat is not None and _upper_end(stat) < 0:
            return ReaderVerdict(*AGAINST)
        return ReaderVerdict(*BELOW_MINIMUM)
    if verdict == "undecidable":
        return ReaderVerdict(*UNDECIDABLE, reason=str(getattr(stat, "note", "") or "").split(":", 1)[0])
    if verdict == "inconclusive":
        return ReaderVerdict(*INCONCLUSIVE)
    return ReaderVerdict("unknown", verdict.replace("_", " "))


def reader_badge(rv: ReaderVerdict) -> Safe:
    """A badge with the reader's words (never a snake_case id); the reason, if any, follows as text."""
    return el("span", rv.words, class_=f"badge rv-{rv.key}")


def overall_badge(reproduced: int, total: int, id_: str | None = "overall-badge") -> Safe:
    """"k of n reproduced": green only when every claim is; otherwise neutral, never a red alarm (a run that could
    decide nothing is not a failure of the paper)."""
    cls = "reproduced" if total and reproduced == total else "neutral"
    return el("span", f"{reproduced} of {total} reproduced", class_=f"badge {cls}", id=id_)
