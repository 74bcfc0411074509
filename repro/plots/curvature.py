"""Curvature figures (paper §5.1): the top-k Hessian eigenvalues of the training loss at θ1 for both arms, and the
SLQ eigenvalue density of both arms overlaid.

Lanczos results carry their own quality, so the figure shows it: residuals ‖Hv − λv‖ as error bars and
unconverged runs as hollow markers, rather than presenting every estimate as exact. Densities are drawn on a log
axis (the outliers carry mass 1/n next to a bulk of mass ≈ 1) and an unconverged density is dashed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from repro.plots.style import (
    arm_color,
    arm_label,
    new_figure,
    ordered_tasks,
    placeholder,
    wrapped_panels,
)


def plot_hessian_spectra(analyses: Sequence[Any]) -> Figure:
    """Per task: eigenvalue against rank (1 = largest), one line per run (gid ``hessian:<init>:<task>:<seed>``).
    The y axis is symmetric-log because Lanczos can return small negative eigenvalues away from a minimum.

    With one eigenvalue per run (the lean profiles' ``hessian_top_k = 1``) there is no spectrum to show: the panel
    is titled and labelled "λ_max at θ1" (the top eigenvalue) instead, so it does not promise more than it holds."""
    tasks = ordered_tasks(analyses) or ["(no runs)"]
    fig, (panels,) = wrapped_panels(len(tasks), width=4.6, height=3.4)
    for c, task in enumerate(tasks):
        ax = panels[c]
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
        if everything and min(everything) > 0:
            # labelled ticks inside a narrow range too (a log axis over 80-500 would label only 100)
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        elif everything:
            small = max(1e-3, 1e-2 * max(abs(v) for v in everything))
            ax.set_yscale("symlog", linthresh=small)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        kmax = max(len(a.hessian.eigenvalues) for a in runs)
        ax.set_xticks(range(1, kmax + 1))
        ax.set_xlim(0.5, kmax + 0.5)
        ax.plot([], [], marker="o", mfc="white", mec="#555555", ls="none", label="hollow: Lanczos not converged")
        if kmax == 1:
            ax.set_title(f"{task}: λ_max at θ1 (top eigenvalue only)", fontsize=10)
            ax.set_xlabel("top eigenvalue (rank 1; one per run)")
            ax.set_ylabel("λ_max of ∇²(training loss) at θ1")
        else:
            ax.set_title(f"{task}: top-{kmax} spectrum at θ1", fontsize=10)
            ax.set_xlabel("eigenvalue rank (1 = largest)")
            ax.set_ylabel("eigenvalue of ∇²(training loss)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def _density_fields(result: Any) -> dict[str, Any]:
    """A :class:`~repro.curvature.DensityResult` or its saved JSON dict, as the fields the figure reads."""
    if isinstance(result, Mapping):
        return dict(result)
    import dataclasses

    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}


def plot_spectral_density(results_by_arm: Mapping[str, Any], *, title: str | None = None) -> Figure:
    """Eigenvalue densities (SLQ) of the arms overlaid, density on a log axis, one data line per arm (gid
    ``density:<arm>``), deflated eigenvalues as ticks on the x axis, each legend entry with the trace estimate
    ± 2 standard errors. Reads saved results only (``DensityResult`` objects or their JSON dicts)."""
    fig, axes = new_figure(1, 1, width=6.0, height=3.8)
    ax = axes[0, 0]
    drawn = {arm: _density_fields(r) for arm, r in results_by_arm.items() if r is not None}
    if not drawn:
        placeholder(ax, "no spectral density")
        return fig
    peak, floor = 0.0, float("inf")
    for arm, r in drawn.items():
        grid = np.asarray(r["grid"], dtype=np.float64)
        dens = np.asarray(r["density"], dtype=np.float64)
        color = arm_color(arm)
        label = (f"{arm_label(arm)}: trace {float(r['trace']):.3g} ± {2 * float(r['trace_stderr']):.2g}"
                 + ("" if r.get("converged", True) else " (not converged)"))
        positive = dens[dens > 0]
        if positive.size:
            peak, floor = max(peak, float(positive.max())), min(floor, float(positive.min()))
        (line,) = ax.plot(grid, np.where(dens > 0, dens, np.nan), color=color, lw=1.5, label=label,
                          ls="-" if r.get("converged", True) else "--")
        line.set_gid(f"density:{arm}")
        defl = list(r.get("deflated_eigenvalues") or [])
        if defl:
            ax.plot(defl, [0.0] * len(defl), ls="none", marker="|", ms=12, color=color,
                    transform=ax.get_xaxis_transform(), label=f"{arm_label(arm)}: deflated eigenvalues")
    ax.set_yscale("log")
    if peak > 0:
        ax.set_ylim(max(floor, peak * 1e-8), peak * 3)
    ax.set_xlabel("eigenvalue of ∇²(training loss)")
    ax.set_ylabel("eigenvalue density (log scale)")
    ax.set_title(title or "Hessian eigenvalue density (stochastic Lanczos quadrature)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_matched_lambda(analyses: Sequence[Any]) -> Figure:
    """The §5.1 primary curvature: λ_max at the first trajectory point where the training loss reaches a level
    both arms reach (``matched_learned``, else the older ``matched``), one dot per seed and arm, per task; a run
    that never reached the level is listed under the axis. Data markers carry gid ``matched:<init>:<task>``.

    A task where no run has a matched point (no trajectory point reached the level in both arms, as in the smoke
    run) gets a placeholder saying so, not empty axes that read as a drawing failure."""
    tasks = ordered_tasks(analyses) or ["(no runs)"]
    fig, (panels,) = wrapped_panels(len(tasks), width=3.6, height=3.0)
    for c, task in enumerate(tasks):
        ax = panels[c]
        runs = sorted((a for a in analyses if a.task == task), key=lambda a: (a.init, a.seed))
        inits = list(dict.fromkeys(a.init for a in sorted(runs, key=lambda a: a.init != "pretrained")))
        missing, level, drawn, reached = [], None, False, False
        for x, init in enumerate(inits):
            vals = []
            for a in (a for a in runs if a.init == init):
                m = getattr(a, "matched_learned", None) or getattr(a, "matched", None)
                ev = m.hessian.eigenvalues if m is not None and m.reached and m.hessian is not None else ()
                level = m.level if m is not None else level
                reached |= bool(m is not None and m.reached)
                if ev:
                    vals.append((a.seed, float(max(ev))))
                else:
                    missing.append(f"{arm_label(init)} seed {a.seed}")
            if vals:
                ys = np.asarray([v for _, v in vals])
                ax.scatter(np.full(len(ys), x) + np.linspace(-0.08, 0.08, len(ys)), ys, color=arm_color(init),
                           s=22, zorder=3, gid=f"matched:{init}:{task}")
                for (seed, v), dx in zip(vals, np.linspace(-0.08, 0.08, len(ys))):
                    ax.annotate(f"s{seed}", (x + dx, v), xytext=(4, 0), textcoords="offset points", fontsize=7)
                ax.plot([x - 0.2, x + 0.2], [ys.mean()] * 2, color=arm_color(init), lw=2)
                drawn = True
        if not inits:
            placeholder(ax, "no runs")
            continue
        if not drawn:
            at = f" ({level:.3g} nats)" if level is not None else ""
            why = ("the matched point's λ_max was not measured" if reached else
                   f"no trajectory point reached the matched\ntraining-loss level{at} in both arms")
            placeholder(ax, f"{task}: no λ_max at a matched loss:\n{why}")
            continue
        ax.set_xticks(range(len(inits)), [arm_label(i) for i in inits], fontsize=8)
        ax.set_xlim(-0.6, len(inits) - 0.4)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("λ_max of ∇²(training loss)", fontsize=8)
        ax.set_title(f"{task}: at training loss {level:.3g}" if level is not None else task, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        if missing:
            ax.text(0.5, -0.22, "level not reached: " + ", ".join(missing), transform=ax.transAxes, ha="center",
                    fontsize=7, color="#555555", wrap=True)
    return fig
