"""Each figure kind of the report draws something different: no claim section shows a copy of another's figure
under a new name (the §5.1 contours and the §5.2 trajectories once were byte-identical PNGs)."""

from __future__ import annotations

import itertools

import numpy as np

from repro.report.data import load_report_data
from repro.report.figures import KINDS, FigureRenderer
from tests.report_fixture import SMOKE


def _trajectory_lines(fig) -> list:
    return [ln for ax in fig.axes for ln in ax.get_lines() if str(ln.get_gid() or "").startswith("trajectory:")]


def test_no_two_figure_kinds_render_the_same_png() -> None:
    data = load_report_data(SMOKE)
    renderer = FigureRenderer(data)
    setting, task = "base", data.tasks()[0]
    pngs = {kind: renderer.render(kind, setting, task if spec.per_task else None).data
            for kind, spec in KINDS.items()}
    for a, b in itertools.combinations(pngs, 2):
        assert pngs[a] != pngs[b], f"figure kinds {a!r} and {b!r} render identical PNGs"


def test_contours_show_the_surface_and_trajectories_the_path() -> None:
    data = load_report_data(SMOKE)
    task = data.tasks()[0]
    contours = KINDS["dev_surface"].draw(data, "base", task)
    trajectories = KINDS["surface_trajectory"].draw(data, "base", task)
    assert not _trajectory_lines(contours)
    assert _trajectory_lines(trajectories)
    assert KINDS["dev_surface"].caption != KINDS["surface_trajectory"].caption


class _WithDensity:
    """A saved analysis with the optional ``density`` field (SLQ result as saved JSON) that newer analyses carry."""

    def __init__(self, analysis: object, density: dict) -> None:
        self._a, self.density = analysis, density

    def __getattr__(self, name: str) -> object:
        return getattr(self._a, name)


def _density(scale: float) -> dict:
    grid = np.linspace(-1.0, 10.0 * scale, 50)
    return {"grid": grid.tolist(), "density": np.exp(-((grid - scale) ** 2)).tolist(), "trace": 3.0 * scale,
            "trace_stderr": 0.1, "converged": True, "deflated_eigenvalues": [9.0 * scale]}


def test_curvature_figure_is_the_density_when_measured_else_the_spectrum() -> None:
    import dataclasses

    from repro.plots import data_lines

    data = load_report_data(SMOKE)
    spectrum = KINDS["hessian"].draw(data, "base", None)  # old analyses: no density field, no error
    assert any(data_lines(ax, "hessian:") for ax in spectrum.axes)
    runs = tuple(dataclasses.replace(r, analysis=_WithDensity(r.analysis, _density(1.0 if r.summary.init ==
                                                                                    "pretrained" else 2.0)))
                 if r.analysis is not None else r for r in data.runs)
    dense = KINDS["hessian"].draw(dataclasses.replace(data, runs=runs), "base", None)
    gids = {ln.get_gid() for ax in dense.axes for ln in data_lines(ax, "density:")}
    assert gids == {"density:pretrained", "density:scratch"}
    assert "seed" in dense.axes[0].get_title()  # the figure names its seed
