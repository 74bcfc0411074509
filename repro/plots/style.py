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

# Legibility (issue 39): the report shows a figure at most REPORT_WIDTH_PX wide and renders it at FIGURE_DPI, so a
# wider figure is scaled down and its text with it. Text must stay ≥ MIN_TEXT_PX after that scaling; with the
# smallest font the figures use (MIN_FONT_PT) that bounds the figure width: 7 pt = 9.3 px at 96 dpi, scaled by
# 800 / (9.7 in × 96) = 0.86, is 8.0 px. Multi-panel figures wrap their panels onto rows to stay within it.
REPORT_WIDTH_PX = 800
FIGURE_DPI = 96
MIN_TEXT_PX = 8.0
MIN_FONT_PT = 7.0
MAX_FIGURE_WIDTH_IN = MIN_FONT_PT * FIGURE_DPI / 72 * REPORT_WIDTH_PX / MIN_TEXT_PX / FIGURE_DPI

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


def wrapped_panels(n: int, *, width: float, height: float, blocks: int = 1) -> tuple[Figure, list[list[Axes]]]:
    """``blocks`` groups of ``n`` panels (e.g. one group per metric, a panel per task), each group wrapped onto as
    many rows as keep the figure within :data:`MAX_FIGURE_WIDTH_IN`: one row of four 4.6-inch panels would be shown
    at 45% in the report and its 8-pt text at under 5 px. Returns the figure and, per block, its ``n`` axes in
    order; the unused cells of the last row are removed."""
    n, blocks = max(1, n), max(1, blocks)
    cols = max(1, min(n, int(MAX_FIGURE_WIDTH_IN // width)))
    rows = -(-n // cols)
    fig, grid = new_figure(cols, rows * blocks, width=width, height=height)
    out = [[grid[b * rows + i // cols, i % cols] for i in range(n)] for b in range(blocks)]
    used = {id(ax) for block in out for ax in block}
    for ax in grid.flat:
        if id(ax) not in used:
            fig.delaxes(ax)
    return fig, out


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
