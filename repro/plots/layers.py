"""Layer-wise figures (paper §7): loss along δ1 restricted to the low / middle / high layer groups around θ1 with
the rolled-back points marked, and the per-layer relative change ‖θ1 − θ0‖ / ‖θ0‖.

Layer groups share the arm's hue (darker = higher layers) so the arm colour stays the one constant mapping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from repro.plots.landscape import pick_arms
from repro.plots.style import (
    ALPHA_D1_AROUND,
    DEPTH_GROUPS,
    METRIC_LABELS,
    arm_color,
    arm_label,
    new_figure,
    ordered_tasks,
    placeholder,
    shade,
    wrapped_panels,
)

_GROUP_SHADE = {"low": 0.6, "middle": 0.3, "high": 0.0}
_GROUP_MARKER = {"low": "v", "middle": "o", "high": "^"}


def plot_layer_curves(analyses: Sequence[Any], metric: str = "train_loss", *, seed: int | None = None) -> Figure:
    """Runs of one task: one panel per arm, one bold line per layer group (the mean over seeds, gid
    ``layer:<init>:<group>``) and a thin line per seed (gid ``layer_seed:<init>:<group>:<seed>``) along
    θ1 + α·δ1|group, α ∈ [−1, 1]. α = −1 rolls the group back to θ0 (marked ×); α = 0 is θ1. ``seed`` keeps one
    seed only."""
    arms = pick_arms(analyses, seed)
    fig, axes = new_figure(max(1, len(arms)), 1, width=4.6, height=3.5)
    if not arms:
        placeholder(axes[0, 0], "no layer-group curves")
        return fig
    for c, (init, first) in enumerate(arms.items()):
        ax = axes[0, c]
        runs = sorted((a for a in analyses if a.init == init and a.layer_curves and (seed is None or a.seed == seed)),
                      key=lambda a: a.seed)
        if not runs:
            placeholder(ax, "no layer-group curves")
            continue
        base = arm_color(init)
        groups = [g for g in DEPTH_GROUPS if g in first.layer_curves] + sorted(set(first.layer_curves) -
                                                                              set(DEPTH_GROUPS))
        for g in groups:
            curves = [(a.seed, a.layer_curves[g]) for a in runs if g in a.layer_curves
                      and metric in a.layer_curves[g].values]
            if not curves:
                continue
            col = shade(base, _GROUP_SHADE.get(g, 0.45))
            for s_, cr in curves:
                ax.plot(cr.alphas, cr.values[metric], color=col, lw=0.7, alpha=0.5, gid=f"layer_seed:{init}:{g}:{s_}")
            x = np.asarray(curves[0][1].alphas, dtype=np.float64)
            if len({tuple(cr.alphas) for _, cr in curves}) == 1:
                y = np.nanmean([np.asarray(cr.values[metric], dtype=np.float64) for _, cr in curves], axis=0)
            else:
                y = np.asarray(curves[0][1].values[metric], dtype=np.float64)
            ax.plot(x, y, color=col, marker=_GROUP_MARKER.get(g, "."), lw=2.0, gid=f"layer:{init}:{g}",
                    label=f"{g} layers")
            back = np.flatnonzero(np.isclose(x, -1.0))
            if back.size:
                i = int(back[0])
                ax.plot([x[i]], [y[i]], marker="X", ms=10, color=col, mec="black", ls="none", zorder=5)
        ax.plot([], [], marker="X", ms=8, color="#999999", mec="black", ls="none", label="rolled back to θ0 (α = −1)")
        ax.axvline(0.0, color="#888888", ls=":", lw=1)
        seeds = ", ".join(str(a.seed) for a in runs)
        ax.set_title(f"{first.task} · {arm_label(init)} · seed{'s' if len(runs) > 1 else ''} {seeds} "
                     f"(bold: mean)", fontsize=9, color=base)
        ax.set_xlabel(ALPHA_D1_AROUND + ", group only")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def _layer_index(name: str) -> int | None:
    m = re.fullmatch(r"layer\.(\d+)", name)
    return int(m.group(1)) if m else None


def plot_relative_change(analyses: Sequence[Any]) -> Figure:
    """Per task: ‖θ1 − θ0‖ / ‖θ0‖ of each transformer layer (x = layer index, embeddings at −1), one line per run
    (gid ``relchange:<init>:<task>:<seed>``). Log scale when every value is positive."""
    tasks = ordered_tasks(analyses) or ["(no runs)"]
    fig, (panels,) = wrapped_panels(len(tasks), width=4.6, height=3.4)
    for c, task in enumerate(tasks):
        ax = panels[c]
        runs = [a for a in analyses if a.task == task and a.relative_change]
        if not runs:
            placeholder(ax, "no relative-change data")
            continue
        labelled: set[str] = set()
        all_pos = True
        ticks: dict[int, str] = {}
        for a in runs:
            pts = sorted((i, v) for k, v in a.relative_change.items() if (i := _layer_index(k)) is not None)
            if "embeddings" in a.relative_change:
                pts.insert(0, (-1, a.relative_change["embeddings"]))
            if not pts:
                continue
            x, y = zip(*pts)
            ticks.update({i: ("emb" if i < 0 else str(i)) for i in x})
            all_pos &= all(v > 0 for v in y)
            ax.plot(x, y, color=arm_color(a.init), marker="o", lw=1.5, gid=f"relchange:{a.init}:{task}:{a.seed}",
                    label=None if a.init in labelled else arm_label(a.init))
            labelled.add(a.init)
        if all_pos and labelled:
            ax.set_yscale("log")
        ax.set_xticks(sorted(ticks), [ticks[i] for i in sorted(ticks)])
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("layer (0 = lowest transformer layer; emb = embeddings)")
        ax.set_ylabel("relative change ‖θ1 − θ0‖ / ‖θ0‖")
        ax.grid(alpha=0.3)
        if labelled:
            ax.legend(fontsize=8)
    return fig
