"""Curvature figure (paper §5.1): the top-k Hessian eigenvalues of the training loss at θ1 for both arms.

Lanczos results carry their own quality, so the figure shows it: residuals ‖Hv − λv‖ as error bars and
unconverged runs as hollow markers, rather than presenting every estimate as exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from repro.plots.style import arm_color, arm_label, new_figure, ordered_tasks, placeholder


def plot_hessian_spectra(analyses: Sequence[Any]) -> Figure:
    """Per task: eigenvalue against rank (1 = largest), one line per run (gid ``hessian:<init>:<task>:<seed>``).
    The y axis is symmetric-log because Lanczos can return small negative eigenvalues away from a minimum."""
    tasks = ordered_tasks(analyses) or ["(no runs)"]
    fig, axes = new_figure(len(tasks), 1, width=4.6, height=3.4)
    for c, task in enumerate(tasks):
        ax = axes[0, c]
        runs = [a for a in analyses if a.task == task and a.hessian is not None and a.hessian.eigenvalues]
        if not runs:
            placeholder(ax, "no Hessian spectrum")
            continue
        labelled: set[str] = set()
        everything: list[float] = []
        for a in runs:
            ev = np.asarray(a.hessian.eigenvalues, dtype=np.float64)
            order = np.argsort(-ev)
            ev = ev[order]
            res = np.asarray(a.hessian.residuals, dtype=np.float64)
            res = res[order] if res.shape == order.shape else np.zeros_like(ev)
            rank = np.arange(1, len(ev) + 1)
            color = arm_color(a.init)
            conv = bool(a.hessian.converged)
            bars = ax.errorbar(rank, ev, yerr=np.abs(res), color=color, capsize=3, lw=1.4, marker="o",
                               mfc=color if conv else "white", mec=color,
                               label=None if a.init in labelled else arm_label(a.init))
            bars.lines[0].set_gid(f"hessian:{a.init}:{task}:{a.seed}")  # the data line, not the error-bar caps
            labelled.add(a.init)
            everything.extend(ev[np.isfinite(ev)].tolist())
        if everything:
            small = max(1e-3, 1e-2 * max(abs(v) for v in everything))
            ax.set_yscale("symlog", linthresh=small)
        ax.plot([], [], marker="o", mfc="white", mec="#555555", ls="none", label="hollow: Lanczos not converged")
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("eigenvalue rank (1 = largest)")
        ax.set_ylabel("eigenvalue of ∇²(training loss)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
