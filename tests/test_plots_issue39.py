"""Issue 39's figure fixes, each checked on the artists it draws (found by gid, label, levels or text): log-spaced
loss surfaces with the measured basin, the majority rate in extended training, text that stays legible at the
report's width, a placeholder for an empty matched-λ figure, "λ_max" rather than "spectrum" for one eigenvalue, and
a note where the projected path lies along δ1."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace as NS

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from repro.plots import data_lines, plot_extended_dev_accuracy, plot_hessian_spectra
from repro.plots.curvature import plot_matched_lambda
from repro.plots.landscape import (
    ALONG_D1_NOTE,
    BASIN_EPS,
    BASIN_LABEL,
    basin_region,
    path_along_d1,
    plot_contours,
    plot_surfaces,
)
from repro.plots.style import FIGURE_DPI, MIN_TEXT_PX, REPORT_WIDTH_PX
from repro.report.data import load_report_data
from repro.report.figures import KINDS
from tests.golden import FIXTURES
from tests.report_fixture import SMOKE


@pytest.fixture(scope="module")
def smoke():
    return load_report_data(SMOKE)


@pytest.fixture(scope="module")
def cpu():
    return load_report_data(FIXTURES / "cpu")


def _sst2(data) -> list:
    return [a for a in data.analyses("base") if a.task == "sst2"]


def _filled(fig: Figure) -> list:
    """The filled contour sets of the surface panels (not the basin line, not the white level lines)."""
    return [c for ax in fig.axes for c in ax.collections if type(c).__name__ == "QuadContourSet" and c.filled]


def _colorbar_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for lg in fig.legends for t in lg.get_texts()]


# 1. training-loss surfaces: log levels, a colour bar in nats, the measured basin ----------------------------------

def test_training_loss_levels_are_log_spaced_and_dev_error_levels_linear(cpu) -> None:
    runs = _sst2(cpu)
    loss = plot_surfaces(runs, "train_loss", trajectory=True)
    (levels,) = {tuple(c.levels) for c in _filled(loss)}
    lv = np.asarray(levels)
    ratios = lv[1:] / lv[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] > 1.5  # geometric: the scratch arm's 4e-5 .. 3.3 nats
    assert lv[0] == pytest.approx(min(np.nanmin(a.surface.array("train_loss")) for a in runs))
    (bar,) = _colorbar_axes(loss)
    assert bar.get_yscale() == "log"
    loss.draw_without_rendering()
    lo, hi = lv[0], lv[-1]
    ticks = [float(t.get_text()) for t in bar.get_yticklabels() if t.get_text()]  # plain numbers: nats
    assert len(ticks) >= 3 and all(lo * 0.999 <= t <= hi * 1.001 for t in ticks)
    assert "nats" in bar.get_ylabel()

    dev = plot_surfaces(runs, "dev_error")
    (levels,) = {tuple(c.levels) for c in _filled(dev)}
    assert np.allclose(np.diff(levels), np.diff(levels)[0])  # linear for an error in 0..1
    assert _colorbar_axes(dev)[0].get_yscale() != "log"


def test_a_flat_loss_grid_still_draws_one_band(cpu) -> None:
    run = _sst2(cpu)[0]
    flat = {k: tuple(tuple(0.5 for _ in row) for row in g) for k, g in run.surface.grids.items()}
    a = dataclasses.replace(run, surface=dataclasses.replace(run.surface, grids=flat))
    for fig in (plot_surfaces([a], "train_loss"), plot_contours([a])):
        assert [len(c.levels) for c in _filled(fig)] == [2]
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert "basin fills the grid" in texts


def test_the_basin_line_is_the_measured_basin_on_every_training_loss_panel(cpu) -> None:
    from claims.effects import FLAT_EPS, basin

    assert BASIN_EPS == FLAT_EPS  # the drawn level is the claim's
    runs = _sst2(cpu)
    fig = plot_surfaces(runs, "train_loss", trajectory=True)
    lines = {str(c.get_gid()): c for ax in fig.axes for c in ax.collections
             if str(c.get_gid() or "").startswith("basin:")}
    assert set(lines) == {f"basin:{a.init}:sst2:{a.seed}" for a in runs}  # one per panel
    for a in runs:
        measured = basin(NS(analysis=a))
        mask, level = basin_region(a.surface)
        assert list(lines[f"basin:{a.init}:sst2:{a.seed}"].levels) == [pytest.approx(measured.threshold)]
        assert level == pytest.approx(np.nanmin(a.surface.array("train_loss")) + 0.1)  # L_min = the grid minimum
        assert int(mask.sum()) == measured.cells  # the region drawn is the region counted
        assert lines[f"basin:{a.init}:sst2:{a.seed}"].get_linestyle()[0][1]  # dashed
    assert _legend_texts(fig).count(BASIN_LABEL) == 1 and "L ≤ L_min + 0.1" in BASIN_LABEL
    dev = plot_surfaces(runs, "dev_error")
    assert not [c for ax in dev.axes for c in ax.collections if str(c.get_gid() or "").startswith("basin:")]


def test_the_basin_line_encloses_only_the_pocket_of_the_minimum(cpu) -> None:
    """Two separate pockets below L_min + 0.1: the measure counts the one holding the minimum, so the line must not
    draw around the other."""
    run = _sst2(cpu)[0]
    x = np.linspace(-1, 1, 9)
    alpha, beta = np.meshgrid(x, x, indexing="ij")
    g = 5.0 - 4.99 * np.exp(-((alpha + 0.5) ** 2 + (beta + 0.5) ** 2) / 0.02) \
        - 4.95 * np.exp(-((alpha - 0.5) ** 2 + (beta - 0.5) ** 2) / 0.02)
    surface = dataclasses.replace(run.surface, alphas=tuple(x), betas=tuple(x),
                                  grids={"train_loss": tuple(map(tuple, g))})
    a = dataclasses.replace(run, surface=surface, projection=None)
    fig = plot_surfaces([a], "train_loss")
    (cs,) = [c for ax in fig.axes for c in ax.collections if str(c.get_gid() or "").startswith("basin:")]
    verts = np.concatenate([p.vertices for p in cs.get_paths() if len(p.vertices)])
    assert verts.size and (verts < 0).all()  # around the minimum at (-0.5, -0.5) only
    assert (g[5:, 5:] <= cs.levels[0]).any()  # the other pocket is below the level too


# 2. extended training: the majority rate --------------------------------------------------------------------------

def test_extended_dev_accuracy_draws_the_saved_majority_rate(smoke) -> None:
    fig = KINDS["extended_dev_accuracy"].draw(smoke, "base", None)
    rates = {a.task: a.dev_majority_rate for a in smoke.analyses("base")}
    for ax in fig.axes:
        task = ax.get_title()
        (line,) = data_lines(ax, "majority:")
        assert line.get_gid() == f"majority:{task}"
        assert list(line.get_ydata()) == [pytest.approx(rates[task])] * 2
        assert any(t.get_text().startswith("majority rate") for t in ax.get_legend().get_texts())
    assert "majority" in KINDS["extended_dev_accuracy"].caption
    bare = plot_extended_dev_accuracy(smoke.training("base"), {"sst2": 0.5})  # no saved rate for mrpc: no line
    assert {ln.get_gid() for ax in bare.axes for ln in data_lines(ax, "majority:")} == {"majority:sst2"}


# 3. legibility at the report's width ------------------------------------------------------------------------------

def _text_px(fig: Figure) -> list[tuple[float, str]]:
    """Every visible text's height in px as the report shows it: rendered at FIGURE_DPI, scaled to fit
    REPORT_WIDTH_PX (never enlarged)."""
    fig.draw_without_rendering()
    scale = min(1.0, REPORT_WIDTH_PX / (fig.get_figwidth() * FIGURE_DPI))
    return [(t.get_fontsize() * FIGURE_DPI / 72 * scale, t.get_text()) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip()]


def _four_tasks(items: list) -> list:
    """The smoke run's two tasks copied under two more names: a four-task profile's one-panel-per-task figures."""
    return list(items) + [dataclasses.replace(i, task=f"{i.task}_copy") for i in items]


def test_text_stays_legible_when_the_report_scales_a_figure_down(smoke) -> None:
    from repro.plots import plot_loss_curves, plot_random_curves, plot_relative_change, plot_training_loss
    from repro.plots.effects import plot_effect_sizes
    from repro.report.summary import COMPARISON_NAMES
    from repro.results import load_claims

    analyses, records = _four_tasks(smoke.analyses("base")), _four_tasks(smoke.training("base"))
    figures = {
        "curves_1d (4 tasks)": plot_loss_curves(analyses, ("train_loss", "dev_error")),
        "hessian (4 tasks)": plot_hessian_spectra(analyses),
        "random_curves (4 tasks)": plot_random_curves(analyses),
        "relative_change (4 tasks)": plot_relative_change(analyses),
        "matched_lambda (4 tasks)": plot_matched_lambda(analyses),
        "training_loss (4 tasks)": plot_training_loss(records),
        "extended_dev_accuracy (4 tasks)": plot_extended_dev_accuracy(records),
        "contours": plot_contours(_sst2(smoke), ("train_loss", "dev_error")),
    }
    rep = load_claims(FIXTURES / "cpu")
    for claim in rep.claims:
        figures[f"effects {claim.id}"] = plot_effect_sizes(claim, COMPARISON_NAMES, list(rep.tasks))
    for kind, spec in KINDS.items():
        figures[kind] = spec.draw(smoke, "base", "sst2" if spec.per_task else None)
    assert figures["curves_1d (4 tasks)"].get_figwidth() * FIGURE_DPI <= 1.25 * REPORT_WIDTH_PX
    for name, fig in figures.items():
        px, text = min(_text_px(fig))
        assert px >= MIN_TEXT_PX - 1e-9, f"{name}: {text!r} is {px:.1f} px at the report's width"


# 4. matched λ: a placeholder that says why --------------------------------------------------------------------------

def test_matched_lambda_without_a_matched_point_says_why(smoke) -> None:
    fig = KINDS["matched_lambda"].draw(smoke, "base", None)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert not ax.collections  # no data drawn
        (text,) = [t.get_text() for t in ax.texts]
        assert "no trajectory point reached the matched" in text and "in both arms" in text


def test_matched_lambda_with_a_matched_point_draws_it(cpu) -> None:
    fig = plot_matched_lambda(cpu.analyses("base"))
    gids = {str(c.get_gid()) for ax in fig.axes for c in ax.collections}
    assert any(g.startswith("matched:") for g in gids)
    assert not any("no trajectory point" in t.get_text() for ax in fig.axes for t in ax.texts)


# 5. one eigenvalue is λ_max, not a spectrum -------------------------------------------------------------------------

def test_hessian_titles_say_lambda_max_for_one_eigenvalue_and_spectrum_for_several(cpu, smoke) -> None:
    assert {len(a.hessian.eigenvalues) for a in cpu.analyses("base")} == {1}
    one = plot_hessian_spectra(cpu.analyses("base"))
    for ax in one.axes:
        assert "λ_max at θ1" in ax.get_title() and "spectrum" not in ax.get_title()
        assert "λ_max" in ax.get_ylabel()
    assert {len(a.hessian.eigenvalues) for a in smoke.analyses("base")} == {2}
    several = plot_hessian_spectra(smoke.analyses("base"))
    assert all("spectrum" in ax.get_title() for ax in several.axes)
    spec = KINDS["hessian"]
    assert "spectrum" not in spec.title.lower() and "k = 1" in spec.caption and "λ_max" in spec.caption


# 6. a path along δ1 is said to be expected --------------------------------------------------------------------------

def test_a_path_along_delta1_gets_a_note_and_a_bent_path_none(smoke) -> None:
    runs = _sst2(smoke)
    assert all(path_along_d1(a.projection) for a in runs)  # the smoke run: |β| ≤ 0.05 of an α range of 1
    fig = KINDS["surface_trajectory"].draw(smoke, "base", "sst2")
    assert _legend_texts(fig).count(ALONG_D1_NOTE) == 1
    assert {ln.get_gid() for ax in fig.axes for ln in data_lines(ax, "along_d1:")} == {
        f"along_d1:{a.init}:sst2:{a.seed}" for a in runs}
    assert "nearly orthogonal" in KINDS["surface_trajectory"].caption

    bent = [dataclasses.replace(a, projection=dataclasses.replace(
        a.projection, betas=tuple(0.3 * abs(x) for x in a.projection.alphas))) for a in runs]
    fig = plot_surfaces(bent, "train_loss", trajectory=True)
    assert ALONG_D1_NOTE not in _legend_texts(fig)
    assert not [ln for ax in fig.axes for ln in data_lines(ax, "along_d1:")]


@pytest.mark.parametrize(("betas", "along"), [((0.0, 0.049, 0.0), True), ((0.0, 0.051, 0.0), False),
                                              ((0.0, -0.06, 0.0), False)])
def test_path_along_delta1_threshold(betas: tuple[float, ...], along: bool) -> None:
    assert path_along_d1(NS(alphas=(-1.0, -0.5, 0.0), betas=betas)) is along
