"""Figure functions on the committed smoke run: axes labelled with units, colour bars on contours, one data line
per run, constant arm colours, graceful missing surfaces, and no pyplot state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import same_color
from matplotlib.figure import Figure

from repro.plots import (
    ARM_COLORS,
    TrainingRecord,
    data_lines,
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
from repro.report.data import load_report_data
from tests.report_fixture import SMOKE


@pytest.fixture(scope="module")
def data():
    return load_report_data(SMOKE)


@pytest.fixture(scope="module")
def analyses(data):
    return data.analyses("base")


@pytest.fixture(scope="module")
def records(data) -> list[TrainingRecord]:
    return data.training("base")


def _main_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _colorbars(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _assert_labelled(fig: Figure) -> None:
    for ax in _main_axes(fig):
        if ax.get_xticks().size == 0 and ax.texts:  # a placeholder panel
            continue
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()


def test_fixture_is_small() -> None:
    total = sum(p.stat().st_size for p in SMOKE.rglob("*") if p.is_file())
    assert total < 1_000_000


def test_loss_curves(analyses) -> None:
    fig = plot_loss_curves(analyses, ("train_loss", "dev_error"))
    axes = _main_axes(fig)
    assert len(axes) == 4  # 2 metrics × 2 tasks
    for ax in axes:
        lines = data_lines(ax, "curve:")
        assert len(lines) == 2  # one per run of the task: pretrained and scratch, one seed
        assert "δ1" in ax.get_xlabel()
        assert ax.get_legend() is not None
        for ln in lines:
            init = ln.get_gid().split(":")[1]
            assert same_color(ln.get_color(), ARM_COLORS[init])
    _assert_labelled(fig)
    assert {ax.get_ylabel() for ax in axes} == {"training loss (nats)", "dev error (fraction)"}


@pytest.mark.parametrize("metrics", [("train_loss",), ("train_loss", "dev_error")])
def test_contours_have_colorbars_and_trajectories(analyses, metrics) -> None:
    runs = [a for a in analyses if a.task == "mrpc"]
    fig = plot_contours(runs, metrics)
    axes = _main_axes(fig)
    assert len(axes) == 2 * len(metrics)
    assert len(_colorbars(fig)) == len(axes)
    for ax in axes:
        assert "δ1" in ax.get_xlabel() and "δ2" in ax.get_ylabel()
        traj = data_lines(ax, "trajectory:")
        assert len(traj) == 1
        init = traj[0].get_gid().split(":")[1]
        assert same_color(traj[0].get_color(), ARM_COLORS[init])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("off-plane" in t for t in labels) and "start θ0" in labels and "end θ1" in labels


def test_contours_without_surface(analyses) -> None:
    runs = [a for a in analyses if a.task == "sst2"]
    runs = [dataclasses.replace(a, surface=None, projection=None) if a.init == "scratch" else a for a in runs]
    fig = plot_contours(runs, ("train_loss", "dev_error"))
    assert len(_colorbars(fig)) == 2  # only the pretrained column has surfaces
    texts = [t.get_text() for ax in _main_axes(fig) for t in ax.texts]
    assert any("no 2D surface" in t for t in texts)
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_contours_with_no_runs() -> None:
    fig = plot_contours([])
    assert figure_png(fig)[:4] == b"\x89PNG"


def test_random_curves(analyses) -> None:
    fig = plot_random_curves(analyses)
    for ax, task in zip(_main_axes(fig), ("sst2", "mrpc")):
        expected = sum(len(a.random_curves) for a in analyses if a.task == task)
        assert len(data_lines(ax, "random:")) == expected > 0
    _assert_labelled(fig)


def test_training_loss(records) -> None:
    fig = plot_training_loss(records)
    for ax in _main_axes(fig):
        assert len(data_lines(ax, "train_epoch:")) == 2  # one thin line per seed and arm
        assert len(data_lines(ax, "train_mean:")) == 2  # one bold mean per arm
        assert all(ln.get_linewidth() > 2 for ln in data_lines(ax, "train_mean:"))
        assert ax.get_xlabel() == "epoch"
    _assert_labelled(fig)


def test_extended_dev_accuracy(records) -> None:
    fig = plot_extended_dev_accuracy(records)
    for ax in _main_axes(fig):
        assert len(data_lines(ax, "dev_acc:")) == 2
        assert "accuracy" in ax.get_ylabel()
    fig = plot_extended_dev_accuracy([dataclasses.replace(r, extended=None) for r in records])
    assert all(any("no extended" in t.get_text() for t in ax.texts) for ax in _main_axes(fig))


def test_layer_curves(analyses) -> None:
    runs = [a for a in analyses if a.task == "sst2"]
    fig = plot_layer_curves(runs)
    axes = _main_axes(fig)
    assert len(axes) == 2  # one panel per arm
    for ax, a in zip(axes, sorted(runs, key=lambda a: a.init)):
        assert len(data_lines(ax, "layer:")) == len(a.layer_curves)
        assert any("rolled back" in t.get_text() for t in ax.get_legend().get_texts())
    _assert_labelled(fig)


def test_relative_change(analyses) -> None:
    fig = plot_relative_change(analyses)
    for ax in _main_axes(fig):
        assert len(data_lines(ax, "relchange:")) == 2
        assert "relative change" in ax.get_ylabel()


def test_hessian_spectra(analyses) -> None:
    fig = plot_hessian_spectra(analyses)
    for ax in _main_axes(fig):
        lines = data_lines(ax, "hessian:")
        assert len(lines) == 2
        for ln in lines:
            assert same_color(ln.get_color(), ARM_COLORS[ln.get_gid().split(":")[1]])
    _assert_labelled(fig)


def test_no_pyplot_state(analyses, records, tmp_path: Path) -> None:
    import matplotlib._pylab_helpers as helpers

    before = helpers.Gcf.get_num_fig_managers()
    figs = [plot_loss_curves(analyses), plot_hessian_spectra(analyses), plot_training_loss(records)]
    for f in figs:
        assert figure_png(f)[:4] == b"\x89PNG"
    assert helpers.Gcf.get_num_fig_managers() == before


def test_effect_sizes_show_every_pair_the_mean_and_the_threshold() -> None:
    from repro.plots.effects import plot_effect_sizes
    from repro.results import load_claims
    from tests.golden import FIXTURES

    rep = load_claims(FIXTURES / "cpu")
    claim = next(c for c in rep.claims if c.id == "easier_optimization")
    fig = plot_effect_sizes(claim, tasks=list(rep.tasks))
    primary = [c for c in claim.settings[0].comparisons if c.primary]
    assert len(fig.axes) == len(primary)
    ax = fig.axes[0]
    comp = primary[0]
    dots = [c for c in ax.collections if str(c.get_gid() or "").startswith(f"effect:{comp.name}:")]
    assert sum(len(c.get_offsets()) for c in dots) == sum(
        len(c.per_pair) for s in claim.settings for c in s.comparisons if c.name == comp.name)
    xs = sorted(float(x) for ln in ax.get_lines() for x in ln.get_xdata() if ln.get_linestyle() == "--")
    assert xs and xs[0] == pytest.approx(comp.min_effect)  # the threshold line
    assert next(t.get_text() for t in ax.get_yticklabels()) == "sst2 · base"


def test_surfaces_share_one_colour_scale_and_name_each_seed() -> None:
    from repro.plots.landscape import plot_surfaces
    from tests.golden import FIXTURES

    runs = [a for a in load_report_data(FIXTURES / "cpu").analyses("base") if a.task == "sst2"]
    assert len({a.seed for a in runs}) == 3
    fig = plot_surfaces(runs, "train_loss")
    panels = [ax for ax in fig.axes if ax.get_title()]
    levels = {tuple(np.round(c.levels, 12)) for ax in panels for c in ax.collections if hasattr(c, "levels")
              and not str(c.get_gid() or "").startswith("basin:")}  # the basin line has each panel's own level
    assert len(levels) == 1  # one colour scale for every seed and arm
    (lv,) = levels
    values = np.concatenate([np.asarray(a.surface.grids["train_loss"], dtype=float).ravel() for a in runs])
    values = values[np.isfinite(values)]
    assert lv[0] <= values.min() + 1e-9 and lv[-1] >= values.max() - 1e-9  # spanning every panel's values
    assert all("seed" in ax.get_title() for ax in panels)
    assert len(panels) == len({(a.init, a.seed) for a in runs})


def test_hessian_spectrum_has_labelled_rank_and_value_ticks() -> None:
    from repro.plots import plot_hessian_spectra
    from tests.golden import FIXTURES

    runs = load_report_data(FIXTURES / "cpu").analyses("base")
    fig = plot_hessian_spectra(runs)
    fig.canvas.draw()
    for ax in fig.axes:
        k = max(len(a.hessian.eigenvalues) for a in runs)
        assert [t for t in ax.get_xticks()] == list(range(1, k + 1))
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()
                  and ax.get_ylim()[0] <= t.get_position()[1] <= ax.get_ylim()[1]]
        assert len(labels) >= 2, labels  # at least two labelled values on the visible axis


def test_layer_curves_show_every_seed_and_the_mean() -> None:
    from tests.golden import FIXTURES

    runs = [a for a in load_report_data(FIXTURES / "cpu").analyses("base") if a.task == "sst2"]
    fig = plot_layer_curves(runs)
    for ax in _main_axes(fig):
        init = "pretrained" if "pretrained" in ax.get_title() else "scratch"
        mine = [a for a in runs if a.init == init]
        groups = len(mine[0].layer_curves)
        assert len(data_lines(ax, "layer_seed:")) == groups * len(mine) == groups * 3
        assert len(data_lines(ax, "layer:")) == groups
        assert "seeds 0, 1, 2" in ax.get_title()


def test_effect_sizes_draw_censored_bounds_by_direction_and_leave_out_empty_panels() -> None:
    """A censored pair is a hollow triangle pointing where the true effect lies; a comparison without one valid
    pair gets no (empty) panel (issue 39)."""
    from types import SimpleNamespace as NS

    from repro.plots.effects import plot_effect_sizes

    def stat(n: int) -> NS:
        return NS(verdict="inconclusive", mean=0.3 if n else float("nan"), n=n, ci_low=0.1, ci_high=0.5)

    pairs = [{"task": "sst2", "seed": 1, "effect": 0.2}, {"task": "sst2", "seed": 2, "effect": 0.4, "bound": "lower"},
             {"task": "sst2", "seed": 3, "effect": 0.3, "bound": "upper"}]
    full = NS(name="basin", primary=True, per_task={"sst2": stat(3)}, per_pair=pairs, min_effect=0.2,
              effect_unit="log ratio")
    empty = NS(name="width", primary=True, per_task={"sst2": stat(0)}, per_pair=[], min_effect=0.2,
               effect_unit="log ratio")
    claim = NS(settings=[NS(setting="base", comparisons=[full, empty])])
    fig = plot_effect_sizes(claim, tasks=["sst2"])
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "basin"
    gids = {str(c.get_gid()): c for c in fig.axes[0].collections if c.get_gid()}
    assert set(gids) == {"effect:basin:base:sst2", "bound:basin:base:sst2:lower", "bound:basin:base:sst2:upper"}
    assert [float(x) for x, _ in gids["bound:basin:base:sst2:lower"].get_offsets()] == [0.4]
    face = gids["bound:basin:base:sst2:upper"].get_facecolor()[0]
    assert tuple(face[:3]) == (1.0, 1.0, 1.0)  # hollow
    none = NS(settings=[NS(setting="base", comparisons=[empty])])
    assert "valid pair" in " ".join(t.get_text() for t in plot_effect_sizes(none).axes[0].texts)
