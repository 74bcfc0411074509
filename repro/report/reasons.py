"""Exclusion reasons and stored reason texts as a reader reads them: the short reason of an excluded pair, the
commonest one among many, reasons split at their top-level separators, numbers without e-notation.

Why a module of its own: the verdict words (:mod:`repro.report.verdicts`) and the first-screen sentences
(:mod:`repro.report.summary`) both quote reasons; text rules only, no science and no markup.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

PAIR_PREFIX = re.compile(r"^[^:]*/seed\d+:\s*")
NUMBER = re.compile(r"[−+-]?\d+(?:\.\d+)?(?:e[−+-]?\d+)?")


def short_reason(excluded: str) -> str:
    """An exclusion entry ("sst2/seed0: effect undefined (scratch width censored by the grid edge (≥ 2))") as
    a short reason ("scratch width censored by the grid edge"), for counting and for sentences."""
    text = PAIR_PREFIX.sub("", excluded).strip()
    if text.startswith("effect undefined (") and text.endswith(")"):
        text = text[len("effect undefined ("):-1]
    if "> 0.75 × ln" in text:  # the learned precondition: one short reason, whichever arm(s) failed it
        return "did not learn (training loss at θ1 above 0.75 ln C)"
    rate = re.search(r"majority rate ([0-9.]+)", text)
    head, sep, rest = text.partition(": ")
    if sep and len(rest) > 40:
        # "scratch: no λ_max at the learned level (...)": the arm alone says nothing; keep what it lacks
        text = f"{head}: {rest.split(' (', 1)[0]}" if head in ("pretrained", "scratch", "both arms") else head
    text = text.split(" (", 1)[0].strip()
    if rate and "generalis" in text:
        text = f"{text} (majority rate {rate.group(1)})"
    return text


def reason_key(reason: str) -> str:
    """A reason with its numbers blanked, so that the same reason with different values counts once."""
    return NUMBER.sub("#", short_reason(reason))


def commonest_reason(entries: Iterable[str]) -> tuple[str, int, int]:
    """(the commonest short reason, how many entries give it, how many entries in all)."""
    entries = list(entries)
    if not entries:
        return "", 0, 0
    keys = Counter(reason_key(e) for e in entries)
    key, count = keys.most_common(1)[0]
    example = next(short_reason(e) for e in entries if reason_key(e) == key)
    return example, count, len(entries)


def split_top_level(text: str, sep: str = "; ") -> list[str]:
    """``text`` split at ``sep`` outside parentheses and brackets: a stored reason such as "a (b; c); d" is two
    items, "a (b; c)" and "d", not three broken ones."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


_E_NUMBER = re.compile(r"(?<![\w.])([−+-]?)(\d+(?:\.\d+)?)e([−+-]?\d+)\b")


def plain_numbers(text: str) -> str:
    """``text`` with every number in e-notation written as a plain decimal with 3 significant digits (an exclusion
    reads "≥ 0.0000746", not "≥ 7.46e-05"); other numbers are left as written."""
    def plain(m: re.Match[str]) -> str:
        value = float(f"{m.group(2)}e{m.group(3).replace('−', '-')}")
        if value == 0 or not math.isfinite(value):
            return m.group(0)
        places = max(0, 2 - math.floor(math.log10(abs(value))))
        body = f"{value:.{places}f}" if places else f"{value:.0f}"
        return f"{m.group(1)}{body}"
    return _E_NUMBER.sub(plain, text)
