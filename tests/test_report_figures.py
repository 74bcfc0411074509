"""Each figure kind of the report draws something different: no claim section shows a copy of another's figure
under a new name (the §5.1 contours and the §5.2 trajectories once were byte-identical PNGs)."""

from __future__ import annotations

import itertools

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
