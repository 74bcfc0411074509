"""Figures for the report, drawn from saved results only (never recomputed).

Every function takes loaded result objects (``RunAnalysis``, ``TrainMetrics`` wrapped in :class:`TrainingRecord`)
and returns a :class:`matplotlib.figure.Figure` built without pyplot, so nothing leaks into global state; render with
:func:`figure_png`. The two arms have one constant colour each (:data:`ARM_COLORS`).
"""

from repro.plots.curvature import plot_hessian_spectra, plot_spectral_density
from repro.plots.landscape import (
    pick_arms,
    plot_contours,
    plot_loss_curves,
    plot_random_curves,
)
from repro.plots.layers import plot_layer_curves, plot_relative_change
from repro.plots.style import ARM_COLORS, ARM_LABELS, ARMS, data_lines, figure_png
from repro.plots.training import (
    TrainingRecord,
    plot_extended_dev_accuracy,
    plot_training_loss,
)

__all__ = [
    "ARMS", "ARM_COLORS", "ARM_LABELS", "TrainingRecord", "data_lines", "figure_png", "pick_arms",
    "plot_contours", "plot_extended_dev_accuracy", "plot_hessian_spectra", "plot_layer_curves", "plot_loss_curves",
    "plot_random_curves", "plot_relative_change", "plot_spectral_density", "plot_training_loss",
]
