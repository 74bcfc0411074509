"""One visual vocabulary for every figure: arm colours, axis units, figure creation and PNG export.

The two arms (pretrained / scratch) get one constant colour each, so a reader can match them across every figure of
a report without reading legends. Figures are plain :class:`matplotlib.figure.Figure` objects, never pyplot: pyplot
keeps a global registry of open figures (a leak in a long report run) and picks a GUI backend from the environment.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

ARMS: tuple[str, ...] = ("pretrained", "scratch")
ARM_COLORS: dict[str, str] = {"pretrained": "#1f5fa8", "scratch": "#d1495b"}
ARM_LABELS: dict[str, str] = {"pretrained": "pretrained (fine-tuned)", "scratch": "from scratch"}
OTHER_COLOR = "#555555"
DEPTH_GROUPS: tuple[str, ...] = ("low", "middle", "high")

# Axis labels with their units; directions are the paper's δ1 = θ1 − θ0 and δ2 = θ1′ − θ0 rescaled to ‖δ1‖.
ALPHA_D1 = "α (multiples of δ1 = θ1 − θ0)"
ALPHA_D1_AROUND = "α (multiples of δ1, from θ1)"
BETA_D2 = "β (multiples of δ2, rescaled to ‖δ1‖)"
ALPHA_RANDOM = "α (multiples of a filter-normalised random direction)"
EPOCH = "epoch"
METRIC_LABELS: dict[str, str] = {
    "train_loss": "training loss (nats)",
    "dev_loss": "dev loss (nats)",
    "train_error": "training error (fraction)",
    "dev_error": "dev error (fraction)",
    "train_acc": "training accuracy (fraction)",
    "dev_acc": "dev accuracy (fraction)",
}


def arm_color(init: str) -> str:
    """The arm's colour; any other label (a future arm) gets a neutral grey rather than an error."""
    return ARM_COLORS.get(init, OTHER_COLOR)


def arm_label(init: str) -> str:
    return ARM_LABELS.get(init, init)


def shade(color: str, t: float) -> tuple[float, float, float]:
    """``color`` mixed with white: t = 0 is the colour, t = 1 white. Keeps the arm hue for sub-series (layer groups)."""
    r, g, b = to_rgb(color)
    return (r + (1 - r) * t, g + (1 - g) * t, b + (1 - b) * t)


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 5.0, height: float = 3.8,
               ) -> tuple[Figure, np.ndarray]:
    """A figure with an ``nrows × ncols`` grid of axes (always a 2D array) and constrained layout."""
    fig = Figure(figsize=(max(1, ncols) * width, max(1, nrows) * height), layout="constrained")
    axes = fig.subplots(max(1, nrows), max(1, ncols), squeeze=False)
    return fig, axes


def placeholder(ax: Axes, message: str) -> None:
    """Mark a panel whose data is missing, so a missing surface reads as missing, not as a blank plot."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#777777",
            wrap=True)


def data_lines(ax: Axes, prefix: str = "") -> list[Any]:
    """Lines drawn from data (their gid set), not guide lines such as the θ0 / θ1 markers."""
    return [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith(prefix) and ln.get_gid()]


def ordered_tasks(items: Iterable[Any]) -> list[str]:
    """Task names in first-seen order (the profile's order)."""
    return list(dict.fromkeys(i.task for i in items))


def figure_png(fig: Figure, dpi: int = 96) -> bytes:
    """Render to PNG bytes (Agg, through the figure's own canvas; no pyplot)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
