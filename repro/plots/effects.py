"""The effect-size figure of a claim: for each primary comparison, the paired effect of every seed (one dot per
pair), their mean and 95% interval, per setting and task, with the minimum effect (the project's registered choice)
as a line.

Why this figure first: a verdict is this picture (interval above 0 and mean past the threshold, or the threshold
excluded); a reader sees at once whether the effects are near the line or far from it, and how many pairs there
were. Drawn from ``claims.json`` only (:class:`~repro.results.ClaimResult`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from repro.plots.style import placeholder, wrapped_panels

VERDICT_COLORS = {"reproduced": "#1e7b34", "not_reproduced": "#b3261e", "inconclusive": "#9a6700",
                  "undecidable": "#5b6470"}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def plot_effect_sizes(claim: Any, names: dict[str, str] | None = None,
                      tasks: list[str] | None = None) -> Figure:
    """One panel per primary comparison that has at least one valid pair (a panel with none would be empty axes:
    the report's tables say why its pairs were excluded); one row per (setting, task): dots = per-seed paired
    effects, hollow triangles = censored bounds pointing the way the true effect lies (▶ at least, ◀ at most), bar =
    95% t-interval, diamond = mean, dashed line = the minimum effect, grey line = 0. Data markers carry gid
    ``effect:<comparison>:<setting>:<task>``, bounds ``bound:<comparison>:<setting>:<task>:<lower|upper>``."""
    names = names or {}
    comps: dict[str, list[tuple[str, Any]]] = {}
    for s in claim.settings:
        for c in s.comparisons:
            if c.primary:
                comps.setdefault(c.name, []).append((s.setting, c))
    comps = {n: ps for n, ps in comps.items()
             if any(_finite(p.get("effect")) for _, c in ps for p in c.per_pair)}
    seen = list(dict.fromkeys(t for s in claim.settings for c in s.comparisons for t in c.per_task))
    tasks = [t for t in (tasks or []) if t in seen] + [t for t in seen if t not in (tasks or [])]
    rows = [(s.setting, t) for s in claim.settings for t in tasks if s.comparisons]
    fig, (panels,) = wrapped_panels(len(comps), width=4.0, height=0.9 + 0.42 * max(2, len(rows)))
    if not comps:
        placeholder(panels[0], "no primary comparison has a valid pair")
        return fig
    for ax, (name, per_setting) in zip(panels, comps.items()):
        y_labels = []
        for y, (setting, task) in enumerate(rows):
            y_labels.append(f"{task} · {setting}")
            comp = dict(per_setting).get(setting)
            if comp is None or task not in comp.per_task:
                continue
            st = comp.per_task[task]
            color = VERDICT_COLORS.get(st.verdict, "#5b6470")
            pairs = [p for p in comp.per_pair if p.get("task") == task and _finite(p.get("effect"))]
            xs = np.asarray([p["effect"] for p in pairs], dtype=np.float64)
            side = np.asarray([str(p.get("bound") or "") for p in pairs])
            bound = side != ""
            jitter = np.linspace(-0.12, 0.12, len(xs)) if len(xs) > 1 else np.zeros(len(xs))
            if xs.size:
                ax.scatter(xs[~bound], y + jitter[~bound], s=16, color=color, alpha=0.75, zorder=3,
                           gid=f"effect:{name}:{setting}:{task}")
                for which, marker in (("lower", ">"), ("upper", "<")):  # the way the true effect lies
                    at = side == which
                    if at.any():
                        ax.scatter(xs[at], y + jitter[at], s=30, marker=marker, facecolors="white",
                                   edgecolors=color, linewidths=1.2, zorder=3,
                                   gid=f"bound:{name}:{setting}:{task}:{which}")
            if _finite(st.mean):
                if st.n >= 2 and _finite(st.ci_low) and _finite(st.ci_high):
                    ax.plot([st.ci_low, st.ci_high], [y, y], color=color, lw=2.2, solid_capstyle="butt", zorder=2)
                ax.plot([st.mean], [y], marker="D", ms=6, color=color, mec="black", mew=0.6, zorder=4)
            else:
                ax.text(0.02, y, "no valid pair", transform=ax.get_yaxis_transform(), va="center", fontsize=7,
                        color="#5b6470")
        min_effect = per_setting[0][1].min_effect
        ax.axvline(0.0, color="#999999", lw=1)
        ax.axvline(min_effect, color="black", ls="--", lw=1, label=f"minimum effect {min_effect:+.3g}")
        ax.set_yticks(range(len(rows)), y_labels, fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlabel(per_setting[0][1].effect_unit, fontsize=8)
        ax.set_title(names.get(name, name.replace("_", " ")), fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(alpha=0.3, axis="x")
        ax.legend(fontsize=7, loc="lower right")
    return fig
