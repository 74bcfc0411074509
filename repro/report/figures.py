"""Which figures show which claim, rendering each once into the smallest embeddable image, and placing each image
once in the page.

A claim's section opens with its effect-size figure (drawn from claims.json) and then shows the figures named in
:data:`CLAIM_FIGURES` for every training setting. Every figure shows every seed: curves as thin lines per seed with
the arm's mean in bold, surfaces as small multiples (seed × arm) on one colour scale per quantity. A figure that
serves two claims (the training-loss surface with the trajectory serves §5.1 and §5.2) is drawn once and linked
from the second place, and byte-identical images are stored once: the page stays small.

Each figure is encoded as a palette PNG (256 colours, no dithering: plots have few colours) and as SVG; the smaller
is embedded.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from repro.plots import (
    plot_extended_dev_accuracy,
    plot_hessian_spectra,
    plot_layer_curves,
    plot_loss_curves,
    plot_random_curves,
    plot_relative_change,
    plot_spectral_density,
    plot_training_loss,
)
from repro.plots.curvature import plot_matched_lambda
from repro.plots.effects import plot_effect_sizes
from repro.plots.landscape import plot_surfaces
from repro.plots.style import new_figure, placeholder
from repro.report.data import ReportData
from repro.report.summary import COMPARISON_NAMES

# claim id -> figure kinds, in display order
CLAIM_FIGURES: dict[str, tuple[str, ...]] = {
    "wider_optima": ("matched_lambda", "surface_trajectory", "hessian", "random_curves"),
    "easier_optimization": ("training_loss", "curves_1d", "surface_trajectory"),
    "overfitting_robustness": ("extended_dev_accuracy",),
    "generalization_consistency": ("dev_surface",),
    "lower_layer_invariance": ("layer_curves", "relative_change"),
}


@dataclass(frozen=True)
class FigureKind:
    per_task: bool  # one figure per task (else one figure with a panel per task)
    title: str
    caption: str  # format fields: {setting}, {task}
    draw: Callable[[ReportData, str, str | None], Figure]


def _task_runs(data: ReportData, setting: str, task: str | None) -> list[Any]:
    return [a for a in data.analyses(setting) if a.task == task]


def _majority_rates(data: ReportData, setting: str) -> dict[str, float]:
    """Task → the dev split's majority-class rate as the setting's saved analyses record it
    (``RunAnalysis.dev_majority_rate``); training metrics do not hold it and the report never reads data files, so
    a task without an analysis that records it is left out (its extended-training panel then has no chance line)."""
    out: dict[str, float] = {}
    for a in data.analyses(setting):
        rate = getattr(a, "dev_majority_rate", None)
        if isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate):
            out.setdefault(a.task, float(rate))
    return out


def _curvature(data: ReportData, setting: str, task: str | None) -> Figure:
    """The SLQ density where the analyses have one (field ``density``, absent in older analyses), else the
    top-k Lanczos spectrum."""
    runs = data.analyses(setting)
    dense = [a for a in runs if getattr(a, "density", None) is not None]
    if not dense:
        return plot_hessian_spectra(runs)
    by_arm: dict[str, Any] = {}
    seeds: dict[str, int] = {}
    for a in sorted(dense, key=lambda a: (a.task, a.seed)):
        if a.task == dense[0].task and a.init not in by_arm:
            by_arm[a.init], seeds[a.init] = a.density, a.seed
    return plot_spectral_density(by_arm, title=f"Hessian eigenvalue density (SLQ), {dense[0].task}, seed "
                                               f"{', '.join(f'{k} {v}' for k, v in seeds.items())}")


_SEEDS = "every seed (one row each), both arms (one column each), one colour scale"
KINDS: dict[str, FigureKind] = {
    "surface_trajectory": FigureKind(
        True, "Training-loss surface with the trajectory",
        "Training loss on the plane θ1 + αδ1 + βδ2 around θ1 (origin), {task}, setting {setting}; " + _SEEDS +
        ". A wider low-loss region around the origin is a wider optimum (paper Fig. 2). The line is the "
        "optimization trajectory projected on the plane, from θ0 (square, α ≈ −1) to θ1 (star); a point's fill "
        "shows its off-plane residual relative to its distance from θ1 (white = in the plane; paper Fig. 3). "
        "Levels and colours are log-spaced (losses span decades), the colour bar reads in nats; the red dashed "
        "line bounds the measured §5.1 basin, L ≤ L_min + 0.1 around the panel's grid minimum. A path drawn along "
        "the α axis (β ≈ 0) is expected, not a fault: δ2 comes from another task's run and is nearly orthogonal "
        "to this run's path (the legend then says so).",
        lambda d, s, t: plot_surfaces(_task_runs(d, s, t), "train_loss", trajectory=True)),
    "dev_surface": FigureKind(
        True, "Dev-error surface",
        "Dev error on the same δ1/δ2 plane around θ1, {task}, setting {setting}; " + _SEEDS + ". Compare with "
        "the training-loss surface of §5.1: where the landscapes agree, low training loss means low dev error "
        "(paper §6.2).",
        lambda d, s, t: plot_surfaces(_task_runs(d, s, t), "dev_error")),
    "matched_lambda": FigureKind(
        False, "λ_max at a matched training loss",
        "The primary §5.1 curvature: the largest Hessian eigenvalue at the first trajectory point where the "
        "training loss reaches the same level in both arms, setting {setting}; one dot per seed (s0, s1, …), the "
        "bar is the arm's mean. Lower = flatter.",
        lambda d, s, t: plot_matched_lambda(d.analyses(s))),
    "hessian": FigureKind(
        False, "Top Hessian eigenvalue(s) at θ1",
        "The largest Hessian eigenvalue(s) of the training loss at θ1 (Lanczos top-k: λ_max alone where the "
        "profile measures k = 1, a spectrum of k values otherwise, as each panel's title says; or the SLQ density "
        "where measured), every seed, setting {setting}; error bars are the residuals ‖Hv − λv‖, hollow markers "
        "did not converge (secondary in §5.1: confounded by how far each arm drove its loss down).",
        _curvature),
    "random_curves": FigureKind(
        False, "Random-direction curves",
        "Training loss along filter-normalised random directions through θ1 (α = 0), every seed and direction, "
        "setting {setting}: a width that does not depend on the scale of δ1.",
        lambda d, s, t: plot_random_curves(d.analyses(s))),
    "curves_1d": FigureKind(
        False, "1D curves θ0 → θ1",
        "Training loss (top) and dev error (bottom) along θ0 + αδ1, setting {setting}: α = 0 is θ0, α = 1 is θ1; "
        "thin: each seed, bold: the arm's mean (paper Fig. 1).",
        lambda d, s, t: plot_loss_curves(d.analyses(s), ("train_loss", "dev_error"))),
    "training_loss": FigureKind(
        False, "Training curves",
        "Training loss per epoch, setting {setting}; thin: each seed, bold: the arm's mean (paper §5.2, Fig. 4).",
        lambda d, s, t: plot_training_loss(d.training(s))),
    "extended_dev_accuracy": FigureKind(
        False, "Extended training",
        "Dev accuracy during extended training, every seed, setting {setting}; the dashed line is the end of the "
        "standard schedule, the dotted line the dev set's majority-class rate (chance: an arm on it predicts one "
        "class; drawn where the saved analyses record it). A falling curve is overfitting (paper §5.3).",
        lambda d, s, t: plot_extended_dev_accuracy(d.training(s), _majority_rates(d, s))),
    "layer_curves": FigureKind(
        True, "Layer-group curves",
        "Training loss along δ1 restricted to the low / middle / high layer groups around θ1 (α = 0), {task}, "
        "setting {setting}, every seed; × marks the group rolled back to θ0 (α = −1) (paper §7).",
        lambda d, s, t: plot_layer_curves(_task_runs(d, s, t))),
    "relative_change": FigureKind(
        False, "Relative change per layer",
        "Relative change ‖θ1 − θ0‖ / ‖θ0‖ of each layer, every seed, setting {setting} (paper §7).",
        lambda d, s, t: plot_relative_change(d.analyses(s))),
}


@dataclass(frozen=True)
class RenderedFigure:
    kind: str
    setting: str
    task: str | None
    title: str
    caption: str
    data: bytes
    mime: str  # image/png or image/svg+xml

    @property
    def png(self) -> bytes:
        """The image bytes (kept under its old name for callers that read PNGs; check ``mime``)."""
        return self.data


def _png(fig: Figure, dpi: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    with Image.open(buf) as img:
        pal = img.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
        out = io.BytesIO()
        pal.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _svg(fig: Figure) -> bytes:
    """SVG without a date and with fixed element ids (``svg.hashsalt``; otherwise random per call), so the same
    saved results give the same report bytes and a regenerated report diffs only where the results changed."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "repro-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def encode(fig: Figure, dpi: int = 96) -> tuple[bytes, str]:
    """The smaller of a palette PNG and an SVG of ``fig``, with its MIME type. Surfaces (many filled contours)
    are nearly always smaller as PNG, line plots as SVG."""
    png = _png(fig, dpi)
    has_fill = any(getattr(ax, "collections", None) and any(type(c).__name__ in ("QuadContourSet", "ContourSet")
                                                           for c in ax.collections) for ax in fig.axes)
    if has_fill:
        return png, "image/png"
    svg = _svg(fig)
    return (svg, "image/svg+xml") if len(svg) < len(png) else (png, "image/png")


class FigureRenderer:
    """Renders figures on demand, caches them for the lifetime of one report and remembers where each image was
    first placed, so a figure shown twice is embedded once."""

    def __init__(self, data: ReportData, dpi: int = 96) -> None:
        self.data = data
        self.dpi = dpi
        self._cache: dict[tuple[str, str, str | None], RenderedFigure] = {}
        self._placed: dict[str, str] = {}  # digest of the image -> id of the figure that shows it

    def _rendered(self, kind: str, setting: str, task: str | None, title: str, caption: str, fig: Figure
                  ) -> RenderedFigure:
        data, mime = encode(fig, self.dpi)
        return RenderedFigure(kind, setting, task, title, caption, data, mime)

    def render(self, kind: str, setting: str, task: str | None = None) -> RenderedFigure:
        key = (kind, setting, task)
        if key not in self._cache:
            spec = KINDS[kind]
            self._cache[key] = self._rendered(kind, setting, task, spec.title,
                                              spec.caption.format(setting=setting, task=task),
                                              spec.draw(self.data, setting, task))
        return self._cache[key]

    def effect_sizes(self, claim: Any) -> RenderedFigure | None:
        """The claim's effect-size figure (from claims.json), or None when it has no primary comparison."""
        # no primary comparison with a valid pair: no figure (its panels would be empty; the tables say why)
        if not any(c.primary and any(isinstance(p.get("effect"), (int, float)) and math.isfinite(p["effect"])
                                     for p in c.per_pair) for s in claim.settings for c in s.comparisons):
            return None
        key = ("effect_sizes", "all", claim.id)
        if key not in self._cache:
            fig = plot_effect_sizes(claim, COMPARISON_NAMES, list(self.data.tasks()))
            self._cache[key] = self._rendered(
                "effect_sizes", "all", None, "Paired effects",
                "Paired effect of every seed (dots; a hollow ▶ is a censored lower bound, the true effect at "
                "least there, a hollow ◀ an upper bound) for each primary comparison with a valid pair, per "
                "task and setting: diamond = mean, bar = 95% Student-t interval, dashed line = the minimum effect "
                "(the project's registered choice), grey line = 0. Reproduced needs the bar above 0 and the diamond "
                "past the dashed line; an interval that excludes the dashed line is not reproduced.", fig)
        return self._cache[key]

    def place(self, rendered: RenderedFigure, figure_id: str) -> str | None:
        """Record that ``rendered`` is shown as ``figure_id``; return the id where it was already shown, if any."""
        digest = hashlib.sha256(rendered.data).hexdigest()
        if digest in self._placed:
            return self._placed[digest]
        self._placed[digest] = figure_id
        return None

    def for_claim(self, claim_id: str, setting: str) -> Sequence[RenderedFigure]:
        out: list[RenderedFigure] = []
        for kind in CLAIM_FIGURES.get(claim_id, ()):
            if KINDS[kind].per_task:
                out.extend(self.render(kind, setting, t) for t in self.data.tasks())
            else:
                out.append(self.render(kind, setting))
        return out


def empty_figure(message: str) -> Figure:
    fig, axes = new_figure(1, 1, width=3.0, height=2.0)
    placeholder(axes[0, 0], message)
    return fig
