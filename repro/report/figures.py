"""Which figures show which claim, and rendering them once each into embeddable PNGs.

A claim's section shows the figures named in :data:`CLAIM_FIGURES` for every training setting. The same figure can
serve two claims, so rendered PNGs are cached by (kind, setting, task) and rendered once per report. Two kinds never
draw the same picture: ``contours`` (§5.1) is the bare training-loss surface around θ1, whose width is the claim,
and ``trajectories`` (§5.2) is that surface with the projected optimization path on it, whose shape is the claim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from repro.plots import (
    figure_png,
    plot_contours,
    plot_extended_dev_accuracy,
    plot_hessian_spectra,
    plot_layer_curves,
    plot_loss_curves,
    plot_random_curves,
    plot_relative_change,
    plot_training_loss,
)
from repro.report.data import ReportData

# claim id -> figure kinds, in display order
CLAIM_FIGURES: dict[str, tuple[str, ...]] = {
    "wider_optima": ("contours", "hessian", "random_curves"),
    "easier_optimization": ("training_loss", "curves_1d", "trajectories"),
    "overfitting_robustness": ("extended_dev_accuracy",),
    "generalization_consistency": ("train_vs_dev_contours",),
    "lower_layer_invariance": ("layer_curves", "relative_change"),
}


@dataclass(frozen=True)
class FigureKind:
    per_task: bool  # one figure per task (else one figure with a panel per task)
    caption: str  # format fields: {setting}, {task}
    draw: Callable[[ReportData, str, str | None], Figure]


def _task_runs(data: ReportData, setting: str, task: str | None) -> list[Any]:
    return [a for a in data.analyses(setting) if a.task == task]


_CONTOUR_CAPTION = ("Training loss on the plane θ1 + αδ1 + βδ2 around θ1 (origin), {task}, setting {setting}, lowest "
                    "seed; one column per arm. A wider low-loss region around the origin is a wider optimum. "
                    "Paper Fig. 2.")
_TRAJECTORY_CAPTION = ("Optimization trajectory projected on the training-loss plane θ1 + αδ1 + βδ2, {task}, setting "
                       "{setting}, lowest seed; one column per arm. The line runs from θ0 (square, α ≈ −1) to θ1 "
                       "(star, origin); a point's fill shows its off-plane residual relative to its distance from θ1 "
                       "(white = in the plane). Paper Fig. 3.")

KINDS: dict[str, FigureKind] = {
    "contours": FigureKind(True, _CONTOUR_CAPTION,
                           lambda d, s, t: plot_contours(_task_runs(d, s, t), ("train_loss",), trajectory=False)),
    "trajectories": FigureKind(True, _TRAJECTORY_CAPTION,
                               lambda d, s, t: plot_contours(_task_runs(d, s, t), ("train_loss",), trajectory=True)),
    "train_vs_dev_contours": FigureKind(
        True, "Training loss (top) and dev error (bottom) on the same δ1/δ2 plane around θ1, {task}, setting "
              "{setting}: where the two landscapes agree, low training loss means low dev error (paper §6.2).",
        lambda d, s, t: plot_contours(_task_runs(d, s, t), ("train_loss", "dev_error"))),
    "hessian": FigureKind(
        False, "Top Hessian eigenvalues of the training loss at θ1 (Lanczos), setting {setting}; error bars are "
               "the residuals ‖Hv − λv‖, hollow markers did not converge. Lower = flatter optimum (paper §5.1).",
        lambda d, s, t: plot_hessian_spectra(d.analyses(s))),
    "random_curves": FigureKind(
        False, "Training loss along filter-normalised random directions through θ1 (α = 0), setting {setting}: a "
               "width that does not depend on the scale of δ1.",
        lambda d, s, t: plot_random_curves(d.analyses(s))),
    "curves_1d": FigureKind(
        False, "Training loss (top) and dev error (bottom) along θ0 + αδ1, setting {setting}: α = 0 is θ0, α = 1 is "
               "θ1 (paper Fig. 1).",
        lambda d, s, t: plot_loss_curves(d.analyses(s), ("train_loss", "dev_error"))),
    "training_loss": FigureKind(
        False, "Training loss during training, setting {setting}: per optimizer step (thin) and epoch means "
               "(markers) (paper §5.2, Fig. 4).",
        lambda d, s, t: plot_training_loss(d.training(s))),
    "extended_dev_accuracy": FigureKind(
        False, "Dev accuracy during extended training, setting {setting}; the dashed line is the end of the "
               "standard schedule. A falling curve is overfitting (paper §5.3).",
        lambda d, s, t: plot_extended_dev_accuracy(d.training(s))),
    "layer_curves": FigureKind(
        True, "Training loss along δ1 restricted to the low / middle / high layer groups around θ1 (α = 0), "
              "{task}, setting {setting}; × marks the group rolled back to θ0 (α = −1) (paper §7).",
        lambda d, s, t: plot_layer_curves(_task_runs(d, s, t))),
    "relative_change": FigureKind(
        False, "Relative change ‖θ1 − θ0‖ / ‖θ0‖ of each layer, setting {setting} (paper §7).",
        lambda d, s, t: plot_relative_change(d.analyses(s))),
}


@dataclass(frozen=True)
class RenderedFigure:
    kind: str
    setting: str
    task: str | None
    caption: str
    png: bytes


class FigureRenderer:
    """Renders figures on demand and caches them for the lifetime of one report."""

    def __init__(self, data: ReportData, dpi: int = 96) -> None:
        self.data = data
        self.dpi = dpi
        self._cache: dict[tuple[str, str, str | None], RenderedFigure] = {}

    def render(self, kind: str, setting: str, task: str | None = None) -> RenderedFigure:
        key = (kind, setting, task)
        if key not in self._cache:
            spec = KINDS[kind]
            fig = spec.draw(self.data, setting, task)
            self._cache[key] = RenderedFigure(kind, setting, task, spec.caption.format(setting=setting, task=task),
                                              figure_png(fig, self.dpi))
        return self._cache[key]

    def for_claim(self, claim_id: str, setting: str) -> Sequence[RenderedFigure]:
        out: list[RenderedFigure] = []
        for kind in CLAIM_FIGURES.get(claim_id, ()):
            if KINDS[kind].per_task:
                out.extend(self.render(kind, setting, t) for t in self.data.tasks())
            else:
                out.append(self.render(kind, setting))
        return out
