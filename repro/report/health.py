"""Did the arms train at all, and how well: a health table (arm × task: training loss at θ1 against chance, dev
accuracy against the majority-class rate, learned and converged counts) and one compact results table (task × arm:
dev accuracy mean ± sd over seeds), in the manner of lm-evaluation-harness's results table.

Why before the claims: every landscape comparison presupposes two arms that learned; a reader should see whether
they did before reading a verdict about their minima. Read from claims.json's run summaries and the saved analyses
(the majority-class rate); nothing is recomputed but means and standard deviations of saved numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from repro.report.data import ReportData
from repro.report.markup import Safe, el, join, slug, table

ARMS = ("pretrained", "scratch")


def mean_sd(values: Iterable[Any], places: int = 3) -> str:
    """"0.712 ± 0.031 (n = 3)" over the finite values; "—" when there are none."""
    v = [float(x) for x in values if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)]
    if not v:
        return "—"
    m = sum(v) / len(v)
    if len(v) == 1:
        return f"{m:.{places}f} (n = 1)"
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    return f"{m:.{places}f} ± {sd:.{places}f} (n = {len(v)})"


def _count(flags: list[bool | None]) -> str:
    known = [f for f in flags if f is not None]
    return f"{sum(known)} of {len(known)}" if known else "not recorded"


def _majority(data: ReportData, setting: str, task: str) -> float | None:
    rates = [a.dev_majority_rate for a in data.analyses(setting) if a.task == task
             and isinstance(getattr(a, "dev_majority_rate", None), (int, float))]
    return rates[0] if rates else None


def _arm_label(arm: str) -> Safe:
    return el("span", arm, class_=f"arm-{slug(arm)}")


def health_table(data: ReportData) -> Safe:
    """Arm × task per setting: training loss at θ1 (chance = ln C), dev accuracy against the majority rate, and how
    many runs learned and converged (as the claims run recorded them)."""
    rep = data.claims
    rows = []
    for setting in rep.settings:
        for task in rep.tasks:
            majority = _majority(data, setting, task)
            for arm in ARMS:
                runs = [r for r in rep.runs if r.setting == setting and r.task == task and r.init == arm]
                if not runs:
                    continue
                acc = [r.dev_accuracy for r in runs]
                above = (f"{sum(1 for a in acc if isinstance(a, (int, float)) and a > majority)} of {len(acc)} "
                         f"above {majority:.3f}" if majority is not None else "majority rate not recorded")
                rows.append([setting, task, _arm_label(arm), mean_sd((r.train_loss_theta1 for r in runs), 4),
                             mean_sd(acc), above, _count([r.learned for r in runs]),
                             _count([getattr(r, "converged", None) for r in runs])])
    caption = ("Health of the arms: training loss at θ1 (mean ± sd over seeds; chance is ln C, ln 2 = 0.693 for two "
               "classes), dev accuracy against the majority-class rate, and how many runs learned (training loss at "
               f"θ1 ≤ {rep.learned_fraction_of_chance} ln C) and converged (recorded from schema 2 on)")
    return el("section", el("h2", "Did the arms train?", id="health"),
              table(["setting", "task", "arm", "train loss θ1", "dev accuracy", "vs majority rate", "learned",
                     "converged"], rows, caption=caption, class_="health"),
              results_table(data), class_="health-section")


def results_table(data: ReportData) -> Safe:
    """Task × arm (per setting): dev accuracy mean ± sd over seeds, one row per task."""
    rep = data.claims
    head = ["task", *[join(_arm_label(a), f" · {s}") for s in rep.settings for a in ARMS]]
    rows = []
    for task in rep.tasks:
        cells = []
        for setting in rep.settings:
            for arm in ARMS:
                runs = [r for r in rep.runs if r.setting == setting and r.task == task and r.init == arm]
                cells.append(mean_sd(r.dev_accuracy for r in runs))
        rows.append([task, *cells])
    return table(head, rows, caption="Results: dev accuracy, mean ± sd over seeds", class_="results")
