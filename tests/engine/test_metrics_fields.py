"""Every field of the §7 rollback and of the flatness/agreement metrics, by hand, on the cases the earlier tests
left open: defaults, basins on one edge only, single-row grids, points exactly on the level (mutation-testing pass,
issue 10)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classifier_fixture import CountingClassifier, batches, ce_loss, oracle, random_vector
from repro.landscape import ParamVector, get_params
from repro.metrics import basin_area, flatness_width, monotonicity, rollback_loss, surface_agreement

# -- rollback (paper §7) ---------------------------------------------------------------------------------------------


def test_rollback_reports_every_field_with_the_callers_loss() -> None:
    """Loss and accuracy at θ1 and with one group put back to θ0, against an independent computation, under the
    group's name, with the caller's loss function (this model is not a Hugging Face classifier, so the default loss
    could not run on it). A swapped or missing accuracy would misreport what rolling back a layer group costs."""
    model = CountingClassifier(11)
    theta0 = get_params(model)
    theta1 = theta0 + random_vector(theta0, 14, scale=0.8)
    data = batches([30, 10], 13)
    group = ["l1.weight", "l1.bias"]
    mixed = ParamVector(theta1.names, tuple(t0 if n in group else t1 for n, t0, t1 in
                                            zip(theta1.names, theta0.tensors, theta1.tensors)))
    want1, want_rb = oracle(model, theta1, data), oracle(model, mixed, data)
    assert want1[1] != want_rb[1]  # the accuracies differ, so swapping them shows
    r = rollback_loss(model, theta0, theta1, group, data, group="low", loss_fn=ce_loss)
    assert r.group == "low"
    assert r.loss_theta1 == pytest.approx(want1[0], rel=1e-10)
    assert r.loss_rolled_back == pytest.approx(want_rb[0], rel=1e-10)
    assert r.accuracy_theta1 == pytest.approx(want1[1], abs=1e-12)
    assert r.accuracy_rolled_back == pytest.approx(want_rb[1], abs=1e-12)
    assert r.loss_increase == pytest.approx(want_rb[0] - want1[0], rel=1e-9)
    assert (get_params(model) - theta0).norm() == 0.0  # the model is handed back at θ0
    assert rollback_loss(model, theta0, theta1, group, data, loss_fn=ce_loss).group == ""  # unnamed: empty


# -- flatness_width --------------------------------------------------------------------------------------------------


def test_flatness_width_default_eps_is_0_1() -> None:
    """The documented default ε = 0.1 (absolute): a different default would change every width reported without
    an explicit ε."""
    w = flatness_width([0.0, 1.0, 2.0, 3.0], [1.0, 0.3, 0.45, 1.0])
    assert w.threshold == pytest.approx(0.4) and w.min_value == 0.3
    assert w.right == pytest.approx(1.0 + (0.4 - 0.3) / (0.45 - 0.3))


def test_flatness_width_points_exactly_on_the_level_are_inside() -> None:
    """Loss ≤ L_min + ε, not <: a plateau exactly at the level reaching the left edge belongs to the interval, so
    the width reaches the boundary and is flagged as a lower bound (exact binary values: level 0.5)."""
    w = flatness_width([0.0, 1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.0, 0.25, 1.0], eps=0.5)
    assert w.left == 0.0 and w.hit_left_boundary and w.hit_boundary
    assert w.right == pytest.approx(3.0 + 0.25 / 0.75) and not w.hit_right_boundary
    assert w.width == pytest.approx(w.right)


def test_flatness_width_walks_to_the_immediate_neighbour() -> None:
    """The interval grows one neighbour at a time: from the minimum at x=2 the point x=1 is inside and x=0 is not,
    so the left edge is interpolated between x=0 and x=1 (at 2/3). Looking two points back (or wrapping to the last
    point) would stop or go on at the wrong place."""
    w = flatness_width([0.0, 1.0, 2.0], [2.0, 0.5, 0.0], eps=1.0)
    assert w.left == pytest.approx(2.0 / 3.0) and not w.hit_left_boundary
    assert w.right == 2.0 and w.hit_right_boundary
    assert w.width == pytest.approx(4.0 / 3.0)


# -- basin_area ------------------------------------------------------------------------------------------------------


def _one_cell(shape: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    g = np.full(shape, 9.0)
    g[at] = 0.0
    return g


@pytest.mark.parametrize(("at", "touches"), [
    ((1, 3), True),  # last column only
    ((2, 1), True),  # last row only
    ((0, 2), True),  # first row only
    ((1, 0), True),  # first column only
    ((1, 1), False),  # interior
    ((1, 2), False),  # interior, next to the last column
])
def test_basin_touching_any_one_edge_is_a_lower_bound(at, touches) -> None:
    """A basin that reaches any edge of the grid may continue beyond it: its area is only a lower bound, and a
    flatness claim must say so. One-cell basins in a 3×4 grid, each touching exactly one edge (or none)."""
    r = basin_area([0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0], _one_cell((3, 4), at))
    assert r.cells == 1 and r.touches_boundary is touches


def test_basin_area_default_eps_is_0_1() -> None:
    """The documented default ε = 0.1: the cell at 0.15 is out, the one at 0.05 in."""
    g = np.array([[9.0, 0.15, 9.0], [0.05, 0.0, 9.0], [9.0, 9.0, 9.0]])
    r = basin_area([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], g)
    assert r.threshold == pytest.approx(0.1) and r.cells == 2


@pytest.mark.parametrize("transpose", [False, True])
def test_single_row_or_column_grid_uses_cell_size_one_on_that_axis(transpose: bool) -> None:
    """A 1×n (or n×1) grid has no spacing on its short axis: that side of a cell counts as 1, the other is the
    grid spacing (0.5), so two cells have area 1.0 -- not NaN from the mean of no differences."""
    alphas, betas, g = [0.0], [0.0, 0.5, 1.0, 1.5], np.array([[9.0, 0.0, 0.05, 9.0]])
    if transpose:
        alphas, betas, g = betas, alphas, g.T
    r = basin_area(alphas, betas, g)
    assert r.cells == 2 and r.area == pytest.approx(1.0) and r.fraction == pytest.approx(0.5)


def test_two_point_axes_use_their_spacing() -> None:
    """Two points per axis already define a spacing (0.5 along α, 2.0 along β): area = cells × 0.5 × 2."""
    r = basin_area([0.0, 0.5], [0.0, 2.0], np.array([[0.0, 0.05], [9.0, 9.0]]))
    assert r.cells == 2 and r.area == pytest.approx(2.0)


# -- surface_agreement, monotonicity ---------------------------------------------------------------------------------


def test_argmin_distance_when_both_coordinates_are_away_from_zero() -> None:
    """The distance between the train-loss and the dev-error minimum is √(Δα² + Δβ²): with both minima away from
    the origin, a sum instead of a difference in either coordinate shows (the earlier tests had α_train = 0)."""
    a, b = [-1.0, 1.0, 2.0], [1.0, 2.0, 4.0]
    tl = np.array([[5.0, 6.0, 7.0], [8.0, 0.1, 9.0], [10.0, 11.0, 12.0]])  # train minimum at (1, 2)
    de = np.array([[0.5, 0.6, 0.05], [0.4, 0.3, 0.2], [0.9, 0.8, 0.7]])  # dev minimum at (-1, 4)
    s = surface_agreement(a, b, tl, de)
    assert s.argmin_train == (1.0, 2.0) and s.argmin_dev == (-1.0, 4.0)
    assert s.argmin_distance == pytest.approx(np.hypot(2.0, 2.0))
    assert s.dev_error_at_train_argmin == 0.3 and s.gap == pytest.approx(0.25)


def test_monotonicity_with_total_variation_below_one() -> None:
    """Loss curves of a converged model move by less than 1 in total; the ratio |net| / total variation must still
    be computed (1/3 here), not replaced by the constant-curve value 1."""
    m = monotonicity([1.0, 0.8, 0.9])
    assert m.total_variation_ratio == pytest.approx(1.0 / 3.0)
    assert m.net_change == pytest.approx(-0.1) and m.fraction_decreasing == pytest.approx(0.5)


def test_relative_change_of_a_group_with_norm_below_one() -> None:
    """A group whose θ0 norm is below 1 (0.6) gets the plain ratio ‖Δ‖/‖θ0‖ = 0.5, not the inf or 0 reserved for
    a group that starts at zero."""
    from repro.metrics import relative_change

    t0 = ParamVector(("w",), (torch.tensor([0.6, 0.0]),))
    t1 = ParamVector(("w",), (torch.tensor([0.6, 0.3]),))
    assert relative_change(t0, t1, {"g": ["w"]})["g"] == pytest.approx(0.5)
