"""plot_spectral_density draws saved SLQ results (objects or JSON dicts): one line per arm in the arm's colour, a log
density axis with labelled ticks, deflated eigenvalues marked, unconverged densities dashed, PNG rendering."""

from __future__ import annotations

import json

import numpy as np
import torch
from matplotlib.colors import same_color

from repro.curvature import LambdaOperator, lanczos, spectral_density
from repro.plots import ARM_COLORS, data_lines, figure_png, plot_spectral_density
from repro.storage import dumps


def _results():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(60, 60, generator=g, dtype=torch.float64))
    lam = torch.cat([torch.tensor([12.0, 8.0], dtype=torch.float64), torch.linspace(-1, 1, 58, dtype=torch.float64)])
    A = q @ torch.diag(lam) @ q.T
    top = lanczos(LambdaOperator(A), 2, tol=1e-10, max_iter=60, return_vectors=True)
    pre = spectral_density(LambdaOperator(A), num_probes=3, num_steps=30, deflate=top, seed=0)
    scr = spectral_density(LambdaOperator(0.5 * A), num_probes=2, num_steps=3, seed=1)  # too short: not converged
    return pre, scr


def test_both_arms_overlaid_on_a_log_axis_with_labels() -> None:
    pre, scr = _results()
    fig = plot_spectral_density({"pretrained": pre, "scratch": json.loads(dumps(scr))})
    ax = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in data_lines(ax, "density:")}
    assert set(lines) == {"density:pretrained", "density:scratch"}
    assert same_color(lines["density:pretrained"].get_color(), ARM_COLORS["pretrained"])
    assert same_color(lines["density:scratch"].get_color(), ARM_COLORS["scratch"])
    np.testing.assert_allclose(lines["density:pretrained"].get_xdata(), pre.grid)
    y = np.asarray(lines["density:pretrained"].get_ydata(), dtype=float)
    d = np.asarray(pre.density)
    np.testing.assert_allclose(y[d > 0], d[d > 0])
    assert lines["density:scratch"].get_linestyle() == "--" and lines["density:pretrained"].get_linestyle() == "-"
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    fig.canvas.draw()
    assert any(t.get_text() for t in ax.get_yticklabels()) and any(t.get_text() for t in ax.get_xticklabels())
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("pretrained (fine-tuned): trace") for t in texts)
    assert any("deflated eigenvalues" in t for t in texts) and any("not converged" in t for t in texts)
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_results_is_a_placeholder() -> None:
    fig = plot_spectral_density({"pretrained": None})
    ax = fig.axes[0]
    assert not data_lines(ax) and any("no spectral density" in t.get_text() for t in ax.texts)
