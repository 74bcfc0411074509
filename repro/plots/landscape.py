"""Loss-landscape figures: 1D curves θ0 → θ1 (paper Fig. 1), 2D contours around θ1 with the projected trajectory
(Figs. 2-3, and dev error beside training loss for §6.2), and curves along random directions (a scale-aware width).

Every function takes loaded :class:`claims.analysis.RunAnalysis` objects and only draws what they hold; a run with no
surface (no partner task for δ2) gets a labelled empty panel instead of an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from repro.plots.style import (
    ALPHA_D1,
    ALPHA_D1_AROUND,
    ALPHA_RANDOM,
    ARMS,
    BETA_D2,
    METRIC_LABELS,
    arm_color,
    arm_label,
    new_figure,
    ordered_tasks,
    placeholder,
)

CONTOUR_LEVELS = 14
RESIDUAL_CMAP = "Greys"  # marker fill of trajectory points: white = in the plane, black = off it (≥ 1)


def _legend_label(ax: Axes, init: str, seen: set[tuple[int, str]]) -> str | None:
    """Label only the first line of each arm in an axes, so legends list arms, not runs."""
    key = (id(ax), init)
    if key in seen:
        return None
    seen.add(key)
    return arm_label(init)


def plot_loss_curves(analyses: Sequence[Any], metrics: Sequence[str] = ("train_loss",)) -> Figure:
    """Paper Fig. 1: ``metric`` along θ0 + α·δ1, one panel per (metric, task), both arms overlaid (one line per run).

    θ0 (α = 0) and θ1 (α = 1) are marked with dotted vertical lines; data lines carry gid ``curve:<init>:<task>:<seed>``.
    """
    tasks = ordered_tasks(analyses) or ["(no runs)"]
    fig, axes = new_figure(len(tasks), len(metrics), width=4.6, height=3.4)
    seen: set[tuple[int, str]] = set()
    for r, metric in enumerate(metrics):
        for c, task in enumerate(tasks):
            ax = axes[r, c]
            runs = [a for a in analyses if a.task == task]
            if not runs:
                placeholder(ax, "no runs")
                continue
            for a in runs:
                if metric not in a.curve.values:
                    continue
                ax.plot(a.curve.alphas, a.curve.values[metric], color=arm_color(a.init), lw=0.8, alpha=0.45,
                        gid=f"curve:{a.init}:{a.task}:{a.seed}")
            _arm_means(ax, runs, metric, seen)
            for x, name in ((0.0, "θ0"), (1.0, "θ1")):
                ax.axvline(x, color="#888888", ls=":", lw=1)
                ax.annotate(name, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                            textcoords="offset points", fontsize=8, color="#555555")
            ax.set_title(f"{task}", fontsize=10)
            ax.set_xlabel(ALPHA_D1)
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="best")
    return fig


def _arm_means(ax: Axes, runs: Sequence[Any], metric: str, seen: set[tuple[int, str]]) -> None:
    """The mean over seeds of each arm's curve, bold, where the seeds share their α grid (gid ``mean:<init>``)."""
    for init in dict.fromkeys(a.init for a in runs):
        mine = [a for a in runs if a.init == init and metric in a.curve.values]
        grids = {tuple(a.curve.alphas) for a in mine}
        if not mine or len(grids) != 1:
            continue
        ys = np.asarray([a.curve.values[metric] for a in mine], dtype=np.float64)
        ax.plot(mine[0].curve.alphas, np.nanmean(ys, axis=0), color=arm_color(init), lw=2.4,
                gid=f"mean:{init}", label=f"{_legend_label(ax, init, seen) or arm_label(init)} "
                                           f"(mean of {len(mine)} seed{'s' if len(mine) > 1 else ''}; thin: each)")


def _levels(z: np.ndarray) -> np.ndarray | None:
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):  # a flat grid (e.g. constant dev error): one band, no contour lines
        pad = 1e-6 * max(1.0, abs(hi))
        return np.array([lo - pad, hi + pad])
    return np.linspace(lo, hi, CONTOUR_LEVELS + 1)


def _draw_trajectory(ax: Axes, a: Any, *, legend: bool) -> None:
    p = a.projection
    if p is None or not p.alphas:
        return
    color = arm_color(a.init)
    rel = np.asarray(p.relative_residual, dtype=np.float64)
    rel_max = float(np.nanmax(rel)) if rel.size else float("nan")
    ax.plot(p.alphas, p.betas, color=color, lw=2.0, gid=f"trajectory:{a.init}:{a.task}:{a.seed}",
            label=(f"trajectory ({len(p.alphas)} snapshots; off-plane relative residual ≤ {rel_max:.2f})"
                   if legend else None))
    ax.scatter(p.alphas, p.betas, c=np.clip(rel, 0.0, 1.0), cmap=RESIDUAL_CMAP, vmin=0.0, vmax=1.0, s=34,
               edgecolors=color, linewidths=1.2, zorder=4,
               label="marker fill: off-plane residual (white 0 → black ≥ 1)" if legend else None)
    ax.plot([p.alphas[0]], [p.betas[0]], marker="s", ms=9, mfc="none", mec="black", ls="none", zorder=5,
            label="start θ0" if legend else None)
    ax.plot([p.alphas[-1]], [p.betas[-1]], marker="*", ms=14, color="gold", mec="black", ls="none", zorder=5,
            label="end θ1" if legend else None)


def _draw_surface(fig: Figure, ax: Axes, a: Any, metric: str, *, trajectory: bool, legend: bool) -> None:
    s = a.surface
    if s is None:
        placeholder(ax, f"{arm_label(a.init)}: no 2D surface\n(no partner task for δ2)")
        return
    if metric not in s.grids:
        placeholder(ax, f"{metric} not measured")
        return
    z = np.ma.masked_invalid(np.asarray(s.grids[metric], dtype=np.float64).T)  # rows = β, columns = α
    levels = _levels(z.filled(np.nan))
    if levels is None:
        placeholder(ax, f"{metric}: no finite values")
        return
    cs = ax.contourf(s.alphas, s.betas, z, levels=levels, cmap="viridis")
    if len(levels) > 2:
        ax.contour(s.alphas, s.betas, z, levels=levels, colors="white", linewidths=0.4, alpha=0.6)
    fig.colorbar(cs, ax=ax, label=METRIC_LABELS.get(metric, metric), shrink=0.9, format="%.3g")
    if trajectory:
        _draw_trajectory(ax, a, legend=legend)
    ax.set_xlabel(ALPHA_D1_AROUND)
    ax.set_ylabel(BETA_D2)
    ax.set_title(f"{a.task} · {arm_label(a.init)} · {METRIC_LABELS.get(metric, metric)}", fontsize=9,
                 color=arm_color(a.init))


def pick_arms(analyses: Sequence[Any], seed: int | None = None) -> dict[str, Any]:
    """One run per arm (the given seed, else the lowest), in the constant arm order."""
    out: dict[str, Any] = {}
    for init in ARMS + tuple(sorted({a.init for a in analyses} - set(ARMS))):
        runs = sorted((a for a in analyses if a.init == init and (seed is None or a.seed == seed)),
                      key=lambda a: a.seed)
        if runs:
            out[init] = runs[0]
    return out


def plot_contours(analyses: Sequence[Any], metrics: Sequence[str] = ("train_loss",), *, trajectory: bool = True,
                  seed: int | None = None) -> Figure:
    """Paper Figs. 2-3 (and §6.2 with ``metrics=("train_loss", "dev_error")``): contours on θ1 + αδ1 + βδ2.

    ``analyses`` are runs of one task; one column per arm (one seed), one row per metric, a colour bar on every
    panel. The optimization trajectory projected on the plane runs from θ0 (square, at α ≈ −1) to θ1 (star, at the
    origin); each point's fill shows how far the snapshot lies off the plane, relative to its distance from θ1.
    """
    arms = pick_arms(analyses, seed)
    cols = list(arms.values()) or [None]
    fig, axes = new_figure(len(cols), len(metrics), width=5.2, height=4.2)
    for r, metric in enumerate(metrics):
        for c, a in enumerate(cols):
            if a is None:
                placeholder(axes[r, c], "no runs")
                continue
            _draw_surface(fig, axes[r, c], a, metric, trajectory=trajectory, legend=(r == 0))
    # one legend for the figure, below the panels, so it never hides the surface
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=2, fontsize=8)
    return fig


def plot_random_curves(analyses: Sequence[Any], metric: str = "train_loss") -> Figure:
    """Training loss along filter-normalised random directions through θ1 (Li et al. 2018): a scale-aware view of
    the width of the optimum, one panel per task, one line per (run, direction); gid ``random:<init>:<task>:<seed>:<k>``.
    """
    tasks = ordered_tasks(analyses) or ["(no runs)"]
    fig, axes = new_figure(len(tasks), 1, width=4.6, height=3.4)
    seen: set[tuple[int, str]] = set()
    for c, task in enumerate(tasks):
        ax = axes[0, c]
        runs = [a for a in analyses if a.task == task and a.random_curves]
        if not runs:
            placeholder(ax, "no random-direction curves")
            continue
        for a in runs:
            for k, cr in enumerate(a.random_curves):
                if metric in cr.values:
                    ax.plot(cr.alphas, cr.values[metric], color=arm_color(a.init), lw=1.3, alpha=0.8,
                            gid=f"random:{a.init}:{a.task}:{a.seed}:{k}", label=_legend_label(ax, a.init, seen))
        ax.axvline(0.0, color="#888888", ls=":", lw=1)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel(ALPHA_RANDOM)
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def shared_levels(analyses: Sequence[Any], metric: str) -> np.ndarray | None:
    """Contour levels over every run's ``metric`` grid, so the arms' (and seeds') panels share one colour scale:
    the same colour is the same loss in every panel, and a wider basin is not an artefact of each panel's own range."""
    values = [np.asarray(a.surface.grids[metric], dtype=np.float64).ravel()
              for a in analyses if a.surface is not None and metric in a.surface.grids]
    return _levels(np.concatenate(values)) if values else None


def plot_surfaces(analyses: Sequence[Any], metric: str = "train_loss", *, trajectory: bool = False,
                  max_seeds: int | None = None) -> Figure:
    """Small multiples of ``metric`` on θ1 + αδ1 + βδ2 for one task: one row per seed, one column per arm, one
    colour scale for all panels (:func:`shared_levels`) and one colour bar. Each panel names its seed; with
    ``trajectory`` the projected optimization path is drawn on it (paper Fig. 3)."""
    arms = [i for i in ARMS if any(a.init == i for a in analyses)]
    arms += sorted({a.init for a in analyses} - set(arms))
    seeds = sorted({a.seed for a in analyses})[:max_seeds]
    if not arms or not seeds:
        fig, axes = new_figure(1, 1, width=3.4, height=2.8)
        placeholder(axes[0, 0], "no runs")
        return fig
    fig, axes = new_figure(len(arms), len(seeds), width=3.1, height=2.55)
    levels = shared_levels(analyses, metric)
    mappable = None
    for r, seed in enumerate(seeds):
        for c, init in enumerate(arms):
            ax = axes[r, c]
            run = next((a for a in analyses if a.init == init and a.seed == seed), None)
            if run is None:
                placeholder(ax, f"{arm_label(init)} seed {seed}: no run")
                continue
            s = run.surface
            if s is None or metric not in s.grids or levels is None:
                placeholder(ax, f"{arm_label(init)} seed {seed}:\nno 2D surface")
                continue
            z = np.ma.masked_invalid(np.asarray(s.grids[metric], dtype=np.float64).T)
            mappable = ax.contourf(s.alphas, s.betas, z, levels=levels, cmap="viridis", extend="neither")
            if len(levels) > 2:
                ax.contour(s.alphas, s.betas, z, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
            if trajectory:
                _draw_trajectory(ax, run, legend=(r == 0 and c == 0))
            ax.set_title(f"{arm_label(init)} · seed {seed}", fontsize=8, color=arm_color(init))
            ax.tick_params(labelsize=7)
            if r == len(seeds) - 1:
                ax.set_xlabel(ALPHA_D1_AROUND, fontsize=7)
            if c == 0:
                ax.set_ylabel("β (δ2)", fontsize=7)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label=METRIC_LABELS.get(metric, metric), shrink=0.8, format="%.3g")
    handles: dict[str, Any] = {}
    for h, lab in zip(*axes[0, 0].get_legend_handles_labels()):
        handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=2, fontsize=7)
    return fig
