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
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from repro.metrics import basin_area, basin_mask
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
    wrapped_panels,
)

CONTOUR_LEVELS = 14
RESIDUAL_CMAP = "Greys"  # marker fill of trajectory points: white = in the plane, black = off it (≥ 1)
# Losses in nats span decades on a surface (θ1 of a scratch run near 0.002, far corners up to ~7): linear levels
# would put the whole basin around θ1 in the lowest band, so their levels (and colours) are spaced logarithmically.
# Errors and accuracies (0..1) keep linear levels.
LOG_METRICS = frozenset({"train_loss", "dev_loss"})
# The §5.1 basin {L ≤ L_min + 0.1} drawn on training-loss surfaces: claims.effects.FLAT_EPS, duplicated rather than
# imported (plots do not depend on how results are judged); tests/test_plots_issue39.py checks that the two agree.
BASIN_EPS = 0.1
BASIN_COLOR = "#e00000"
BASIN_LABEL = f"basin: L ≤ L_min + {BASIN_EPS:g} (the §5.1 basin area; L_min = the panel's grid minimum)"
# A projected path with every |β| below this fraction of its α range is drawn along the α axis; the legend says why.
ALONG_D1_FRACTION = 0.05
ALONG_D1_NOTE = "path lies along δ1 (β ≈ 0): δ2, from another task, is nearly orthogonal to it"


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
    fig, blocks = wrapped_panels(len(tasks), width=4.6, height=3.4, blocks=len(metrics))
    seen: set[tuple[int, str]] = set()
    for r, metric in enumerate(metrics):
        for c, task in enumerate(tasks):
            ax = blocks[r][c]
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


def _levels(z: np.ndarray, *, log: bool = False) -> np.ndarray | None:
    """Contour levels spanning ``z``: geometric with ``log`` (a loss spanning decades; only where every value is
    positive, else linear), linear otherwise; a flat grid gets one band."""
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):  # a flat grid (e.g. constant dev error): one band, no contour lines
        pad = 1e-6 * max(1.0, abs(hi))
        return np.array([lo - pad, hi + pad])
    if log and lo > 0:
        return np.geomspace(lo, hi, CONTOUR_LEVELS + 1)
    return np.linspace(lo, hi, CONTOUR_LEVELS + 1)


def _is_log(metric: str, levels: np.ndarray) -> bool:
    return metric in LOG_METRICS and len(levels) > 2 and float(levels[0]) > 0


def _log_ticks(levels: np.ndarray) -> list[float]:
    """Colour-bar ticks in nats on a log scale: 1-2-5 values inside the levels' range (decades only where those
    are many); a narrow range with fewer than three of them is labelled at every few levels instead, ends included,
    so every bar reads at least three losses."""
    lo, hi = float(levels[0]), float(levels[-1])
    nice = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
            for m in (1.0, 2.0, 5.0)]
    ticks = [t for t in nice if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    if len(ticks) > 7:
        ticks = [t for t in ticks if np.isclose(t, 10.0 ** np.round(np.log10(t)))]
    if len(ticks) < 3:
        at = np.unique(np.round(np.linspace(0, len(levels) - 1, 4)).astype(int))
        ticks = [float(levels[i]) for i in at]
    return ticks


def _colorbar(fig: Figure, mappable: Any, ax: Any, metric: str, levels: np.ndarray, **kw: Any) -> None:
    """A colour bar whose ticks read in the metric's units: on a log axis (labelled 1-2-5 values in nats) for a
    loss drawn with log-spaced levels, else the levels formatted to 3 significant digits."""
    label = METRIC_LABELS.get(metric, metric)
    if not _is_log(metric, levels):
        fig.colorbar(mappable, ax=ax, label=label, format="%.3g", **kw)
        return
    cb = fig.colorbar(mappable, ax=ax, label=label.replace(")", ", log scale)") if label.endswith(")")
                      else f"{label} (log scale)", **kw)
    cb.set_ticks(_log_ticks(levels))
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    cb.ax.yaxis.set_minor_formatter(NullFormatter())


def basin_region(surface: Any) -> tuple[np.ndarray, float] | None:
    """The §5.1 basin of a saved surface as the claim measures it (``claims.effects.basin`` through
    :func:`repro.metrics.basin_area`): the grid points of the 4-connected sub-level set {L ≤ L_min + 0.1} of the
    training loss that holds the grid minimum, L_min being *that surface's grid minimum* (not L(θ1)), NaN counted
    outside. Returns ``(mask over grid[i][j], level)``, or None without a finite training-loss grid."""
    if surface is None or "train_loss" not in surface.grids:
        return None
    g = np.asarray(surface.grids["train_loss"], dtype=np.float64)
    if not np.isfinite(g).any():
        return None
    measured = basin_area(surface.alphas, surface.betas, g, eps=BASIN_EPS)
    return basin_mask(g, measured.threshold), float(measured.threshold)


def _draw_basin(ax: Axes, a: Any) -> None:
    """The boundary of the measured basin (:func:`basin_region`) as a dashed red contour at L_min + 0.1 (gid
    ``basin:<init>:<task>:<seed>``), so the region a reader sees is the one the basin area counts: outside the
    basin's connected component, points below the level (another pocket) are lifted just above it. A basin that
    fills the grid has no boundary to draw and says so."""
    region = basin_region(a.surface)
    if region is None:
        return
    mask, level = region
    gid = f"basin:{a.init}:{a.task}:{a.seed}"
    ax.plot([], [], color=BASIN_COLOR, ls="--", lw=1.4, label=BASIN_LABEL)  # the legend entry
    if mask.all():
        ax.text(0.5, 0.97, "basin fills the grid", transform=ax.transAxes, ha="center", va="top",
                fontsize=7, color=BASIN_COLOR, gid=gid, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        return
    g = np.asarray(a.surface.grids["train_loss"], dtype=np.float64)
    above = level + max(1e-9, 1e-6 * abs(level))
    field = np.where(mask, g, np.fmax(g, above))  # fmax: NaN (outside the basin) becomes `above`
    cs = ax.contour(a.surface.alphas, a.surface.betas, field.T, levels=[level], colors=BASIN_COLOR,
                    linestyles="--", linewidths=1.4, zorder=3)
    cs.set_gid(gid)


def path_along_d1(projection: Any) -> bool:
    """Whether every projected trajectory point has |β| below :data:`ALONG_D1_FRACTION` of the path's α range: the
    path then runs along the α axis, which is expected (δ2 comes from another task's run and is nearly orthogonal to
    this run's path) but reads as a broken plot unless said."""
    if projection is None or not projection.alphas:
        return False
    al = np.asarray(projection.alphas, dtype=np.float64)
    be = np.asarray(projection.betas, dtype=np.float64)
    span = float(np.nanmax(al) - np.nanmin(al))
    return span > 0 and float(np.nanmax(np.abs(be))) < ALONG_D1_FRACTION * span


def _figure_legend(fig: Figure, axes: Any, fontsize: float) -> None:
    """One legend for the figure, below the panels (never over a surface), with each label once from any panel, in
    one column (its notes are long); the figure grows by the legend's height so the panels keep theirs."""
    handles: dict[str, Any] = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.set_figheight(fig.get_figheight() + 0.2 + len(handles) * 1.9 * fontsize / 72)
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=1, fontsize=fontsize)


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
    if path_along_d1(p):  # a legend note (no marker), on whichever panel it holds
        ax.plot([], [], ls="none", gid=f"along_d1:{a.init}:{a.task}:{a.seed}", label=ALONG_D1_NOTE)


def _draw_surface(fig: Figure, ax: Axes, a: Any, metric: str, *, trajectory: bool, legend: bool) -> None:
    s = a.surface
    if s is None:
        placeholder(ax, f"{arm_label(a.init)}: no 2D surface\n(no partner task for δ2)")
        return
    if metric not in s.grids:
        placeholder(ax, f"{metric} not measured")
        return
    z = np.ma.masked_invalid(np.asarray(s.grids[metric], dtype=np.float64).T)  # rows = β, columns = α
    levels = _levels(z.filled(np.nan), log=metric in LOG_METRICS)
    if levels is None:
        placeholder(ax, f"{metric}: no finite values")
        return
    norm = LogNorm(levels[0], levels[-1]) if _is_log(metric, levels) else None
    cs = ax.contourf(s.alphas, s.betas, z, levels=levels, cmap="viridis", norm=norm)
    if len(levels) > 2:
        ax.contour(s.alphas, s.betas, z, levels=levels, colors="white", linewidths=0.4, alpha=0.6)
    _colorbar(fig, cs, ax, metric, levels, shrink=0.9)
    if metric == "train_loss":
        _draw_basin(ax, a)
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
    panel (log-spaced levels for a loss, see :func:`plot_surfaces`; the training loss with the measured basin's
    boundary). The optimization trajectory projected on the plane runs from θ0 (square, at α ≈ −1) to θ1 (star, at
    the origin); each point's fill shows how far the snapshot lies off the plane, relative to its distance from θ1.
    """
    arms = pick_arms(analyses, seed)
    cols = list(arms.values()) or [None]
    fig, axes = new_figure(len(cols), len(metrics), width=4.6, height=3.9)
    for r, metric in enumerate(metrics):
        for c, a in enumerate(cols):
            if a is None:
                placeholder(axes[r, c], "no runs")
                continue
            _draw_surface(fig, axes[r, c], a, metric, trajectory=trajectory, legend=(r == 0))
    _figure_legend(fig, axes, 8)
    return fig


def plot_random_curves(analyses: Sequence[Any], metric: str = "train_loss") -> Figure:
    """Training loss along filter-normalised random directions through θ1 (Li et al. 2018): a scale-aware view of
    the width of the optimum, one panel per task, one line per (run, direction); gid ``random:<init>:<task>:<seed>:<k>``.
    """
    tasks = ordered_tasks(analyses) or ["(no runs)"]
    fig, (panels,) = wrapped_panels(len(tasks), width=4.6, height=3.4)
    seen: set[tuple[int, str]] = set()
    for c, task in enumerate(tasks):
        ax = panels[c]
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
    return _levels(np.concatenate(values), log=metric in LOG_METRICS) if values else None


def plot_surfaces(analyses: Sequence[Any], metric: str = "train_loss", *, trajectory: bool = False,
                  max_seeds: int | None = None) -> Figure:
    """Small multiples of ``metric`` on θ1 + αδ1 + βδ2 for one task: one row per seed, one column per arm, one
    colour scale for all panels (:func:`shared_levels`) and one colour bar. Each panel names its seed; with
    ``trajectory`` the projected optimization path is drawn on it (paper Fig. 3).

    A loss (:data:`LOG_METRICS`) is drawn with log-spaced levels and a log colour bar in nats, so the basin around θ1
    (losses near 0.002 beside corners near 7) is not one band; every training-loss panel also shows the measured
    §5.1 basin's boundary at L_min + 0.1 (:func:`_draw_basin`), and a path lying along δ1 gets a legend note
    (:func:`path_along_d1`)."""
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
            norm = LogNorm(levels[0], levels[-1]) if _is_log(metric, levels) else None
            mappable = ax.contourf(s.alphas, s.betas, z, levels=levels, cmap="viridis", extend="neither", norm=norm)
            if len(levels) > 2:
                ax.contour(s.alphas, s.betas, z, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
            if metric == "train_loss":
                _draw_basin(ax, run)
            if trajectory:
                _draw_trajectory(ax, run, legend=(r == 0 and c == 0))
            ax.set_title(f"{arm_label(init)} · seed {seed}", fontsize=8, color=arm_color(init))
            ax.tick_params(labelsize=7)
            if r == len(seeds) - 1:
                ax.set_xlabel(ALPHA_D1_AROUND, fontsize=7)
            if c == 0:
                ax.set_ylabel("β (δ2)", fontsize=7)
    if mappable is not None and levels is not None:
        _colorbar(fig, mappable, axes, metric, levels, shrink=0.8)
    _figure_legend(fig, axes, 7)
    return fig
