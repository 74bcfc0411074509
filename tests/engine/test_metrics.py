from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_batches
from repro.landscape import ParamVector, evaluate, filter_normalized_direction, get_params
from repro.metrics import (
    basin_area,
    basin_mask,
    flatness_width,
    monotonicity,
    relative_change,
    rollback_loss,
    roughness,
    surface_agreement,
    trajectory_straightness,
)


def test_flatness_width_of_a_v_is_exact_and_flags_boundary() -> None:
    xs = np.linspace(-1, 1, 21)
    ys = np.abs(xs - 0.1) + 2.0
    w = flatness_width(xs, ys, eps=0.25)
    assert (w.left, w.right) == (pytest.approx(-0.15), pytest.approx(0.35))
    assert w.width == pytest.approx(0.5) and not w.hit_boundary
    rel = flatness_width(xs, ys, eps=0.125, relative=True)  # threshold 2 * 1.125 = 2.25
    assert rel.width == pytest.approx(0.5)
    wide = flatness_width(xs, ys, eps=10)
    assert wide.hit_left_boundary and wide.hit_right_boundary and wide.width == pytest.approx(2.0)


def test_basin_area_of_a_disc() -> None:
    a = b = np.linspace(-2, 2, 81)
    A, B = np.meshgrid(a, b, indexing="ij")
    grid = A**2 + B**2
    res = basin_area(a, b, grid, eps=1.0)
    assert res.area == pytest.approx(np.pi, rel=0.03)
    assert not res.touches_boundary and res.argmin == (0.0, 0.0)
    # a second, disconnected low region is not counted
    grid2 = grid.copy()
    grid2[-3:, -3:] = 0.5
    assert basin_area(a, b, grid2, eps=1.0).cells == res.cells
    assert basin_area(a, b, grid, eps=100.0).touches_boundary


def test_path_shapes() -> None:
    line = np.stack([np.linspace(0, 1, 5), np.linspace(0, 2, 5)], axis=1)
    assert trajectory_straightness(line).ratio == pytest.approx(1.0)
    zig = np.array([[0, 0], [1, 1], [2, 0]], dtype=float)
    assert trajectory_straightness(zig).ratio == pytest.approx(2 / (2 * np.sqrt(2)))
    vecs = [ParamVector(("x",), (torch.tensor([float(t), 0.0]),)) for t in range(4)]
    assert trajectory_straightness(vecs).ratio == pytest.approx(1.0)
    m = monotonicity([3, 2, 2.5, 1])
    assert m.fraction_decreasing == pytest.approx(2 / 3)
    assert m.total_variation_ratio == pytest.approx(2 / 3)
    xs = np.linspace(0, 1, 11)
    assert roughness(xs, 2 * xs + 1) == pytest.approx(0.0, abs=1e-9)
    assert roughness(xs, np.sin(40 * xs)) > 10 * roughness(xs, xs**2)


def test_surface_agreement() -> None:
    a, b = np.linspace(-1, 1, 5), np.linspace(-1, 1, 4)
    A, B = np.meshgrid(a, b, indexing="ij")
    tl = A**2 + B**2
    same = surface_agreement(a, b, tl, 2 * tl)
    assert same.spearman == pytest.approx(1.0) and same.gap == 0.0 and same.argmin_distance == 0.0
    shifted = (A - 1) ** 2 + B**2
    s = surface_agreement(a, b, tl, shifted)
    assert s.argmin_dev[0] == 1.0 and s.argmin_distance == pytest.approx(1.0, abs=0.35)
    assert s.gap == pytest.approx(s.dev_error_at_train_argmin - shifted.min())


def test_relative_change_and_rollback(tiny_model) -> None:
    theta0 = get_params(tiny_model)
    step = filter_normalized_direction(theta0, seed=3).vector
    theta1 = theta0.clone().axpy_(0.5, step)
    groups = {"all": list(theta0.names), "layer.0": [n for n in theta0.names if ".layer.0." in n]}
    rc = relative_change(theta0, theta1, groups)
    assert rc["all"] == pytest.approx(0.5 * step.norm() / theta0.norm(), rel=1e-6)
    sel = groups["layer.0"]
    assert rc["layer.0"] == pytest.approx(0.5 * step.select(sel).norm() / theta0.select(sel).norm(), rel=1e-6)
    batches = synthetic_batches(2, 4, seed=2)
    rb = rollback_loss(tiny_model, theta0, theta1, theta0.names, batches, group="all")
    assert rb.loss_rolled_back == pytest.approx(evaluate(tiny_model, batches).loss)  # all rolled back = θ0
    assert (get_params(tiny_model) - theta0).norm() == 0.0
    none = rollback_loss(tiny_model, theta0, theta1, [], batches)
    assert none.loss_increase == pytest.approx(0.0, abs=1e-9)


def test_roughness_is_the_scaled_rms_second_derivative() -> None:
    """Hand-computed: y = c·x² has y'' = 2c everywhere, so roughness = 2c·width²/range(y), on uniform and non-uniform
    grids alike; three points are enough, two have no second derivative (0)."""
    xs = np.array([-1.0, -0.2, 0.5, 1.1, 2.0])  # non-uniform, width 3
    c = 0.7
    ys = c * xs**2 + 0.3 * xs - 4.0  # the linear part has no curvature
    assert roughness(xs, ys) == pytest.approx(2 * c * 9.0 / np.ptp(ys), rel=1e-12)
    three = np.array([0.0, 0.25, 1.0])
    assert roughness(three, 5 * three**2) == pytest.approx(2 * 5 * 1.0 / 5.0, rel=1e-12)
    assert roughness([0.0, 1.0], [3.0, 1.0]) == 0.0
    # a kink: y'' is a spike at one interior point, RMS over the 3 interior points
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y = np.abs(x - 2.0)
    assert roughness(x, y) == pytest.approx(np.sqrt(4.0 / 3.0) * 16.0 / 2.0, rel=1e-12)


def test_flatness_width_every_field_on_an_asymmetric_curve() -> None:
    """Hand-computed on an asymmetric, non-uniform curve: the interval stops at the first point above the level on
    each side (not at a later dip), edges are interpolated, points exactly at the level count as inside."""
    xs = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.5, 2.0, 3.0]
    ys = [0.9, 0.6, 0.35, 0.1, 0.3, 0.7, 0.2, 0.9]  # a second dip at x=2 lies outside the basin of x=0
    w = flatness_width(xs, ys, eps=0.25)  # level 0.35: the point at x=-0.5 is exactly on it
    assert (w.argmin, w.min_value, w.threshold) == (0.0, 0.1, pytest.approx(0.35))
    assert w.left == pytest.approx(-0.5)  # the crossing between x=-1 (0.6) and x=-0.5 (0.35, on the level)
    assert w.right == pytest.approx(0.5 + (0.35 - 0.3) * 1.0 / (0.7 - 0.3))
    assert w.width == pytest.approx(w.right - w.left)
    assert not w.hit_left_boundary and not w.hit_right_boundary and not w.hit_boundary
    edge = flatness_width(xs[3:], ys[3:], eps=0.25)  # minimum on the first point
    assert edge.hit_left_boundary and not edge.hit_right_boundary and edge.left == 0.0 and edge.hit_boundary
    for bad in (([0.0, 0.0, 1.0], [1.0, 0.0, 1.0]), ([0.0], [1.0]), ([0.0, 1.0], [1.0, 2.0, 3.0]),
                ([1.0, 0.0], [0.0, 1.0])):
        with pytest.raises(ValueError, match="increasing"):
            flatness_width(*bad)
    assert flatness_width([0.0, 1.0], [1.0, 0.5], eps=0.1).hit_right_boundary  # two points are enough


def test_basin_area_every_field_on_a_small_grid() -> None:
    """A 4×5 grid by hand: the basin is the 4-connected set ≤ level that holds the minimum; a diagonal neighbour
    and a separate low region do not count; NaN is outside."""
    a = [0.0, 1.0, 2.0, 3.0]
    b = [0.0, 0.5, 1.0, 1.5, 2.0]
    g = np.array([
        [9.0, 9.0, 9.0, 9.0, 0.5],  # (0, 4): low, but not connected to the basin
        [9.0, 0.2, 0.1, 9.0, 9.0],
        [0.3, 9.0, 0.2, np.nan, 9.0],  # (2, 0) touches (1, 1) only diagonally
        [9.0, 9.0, 9.0, 9.0, 9.0],
    ])
    r = basin_area(a, b, g, eps=0.25)
    assert r.min_value == 0.1 and r.threshold == pytest.approx(0.35) and r.argmin == (1.0, 1.0)
    assert r.cells == 3 and r.area == pytest.approx(3 * 1.0 * 0.5) and r.fraction == pytest.approx(3 / 20)
    assert not r.touches_boundary
    rel = basin_area(a, b, g, eps=1.0, relative=True)  # level 0.2
    assert rel.threshold == pytest.approx(0.2) and rel.cells == 3
    g2 = g.copy()
    g2[0, 1] = 0.3  # now the basin reaches the first row
    edge = basin_area(a, b, g2, eps=0.25)
    assert edge.cells == 4 and edge.touches_boundary
    with pytest.raises(ValueError, match="does not match"):
        basin_area(a, b[:-1], g)


def test_basin_mask_is_the_component_of_the_minimum() -> None:
    """The mask the figures draw is exactly the set the area counts: the minimum's 4-connected component below the
    level; a separate pocket below the level, a diagonal neighbour and NaN are outside."""
    g = np.array([
        [9.0, 9.0, 9.0, 9.0, 0.5],
        [9.0, 0.2, 0.1, 9.0, 9.0],
        [0.3, 9.0, 0.2, np.nan, 9.0],
        [9.0, 9.0, 9.0, 9.0, 9.0],
    ])
    m = basin_mask(g, 0.6)
    assert sorted(zip(*np.nonzero(m))) == [(1, 1), (1, 2), (2, 2)]
    assert basin_area(range(4), range(5), g, eps=0.5).cells == int(m.sum())
    assert basin_mask(g, 100.0).sum() == 19  # everything but the NaN


def test_surface_agreement_every_field_by_hand() -> None:
    """Rows are α, columns β: a transposed or mislabelled argmin shows on a non-square grid."""
    a = [-1.0, 0.0, 1.0]
    b = [-2.0, 0.0, 2.0, 4.0]
    tl = np.array([[5.0, 4.0, 6.0, 7.0], [3.0, 0.5, 2.0, 8.0], [9.0, 1.0, 10.0, 11.0]])
    de = np.array([[0.5, 0.4, 0.6, 0.7], [0.3, 0.25, 0.2, 0.8], [0.9, 0.1, 0.95, 0.99]])
    s = surface_agreement(a, b, tl, de)
    assert s.argmin_train == (0.0, 0.0) and s.argmin_dev == (1.0, 0.0)
    assert s.argmin_distance == pytest.approx(1.0)
    assert s.dev_error_at_train_argmin == 0.25 and s.min_dev_error == 0.1 and s.gap == pytest.approx(0.15)
    from scipy import stats

    assert s.spearman == pytest.approx(stats.spearmanr(tl.ravel(), de.ravel()).statistic, abs=1e-12)
    s2 = surface_agreement(a, b, tl, np.where(np.arange(12).reshape(3, 4) == 5, 0.0, de))  # dev min at the train min
    assert s2.argmin_dev == (0.0, 0.0) and s2.argmin_distance == 0.0 and s2.gap == 0.0
    off = np.array([[0.5, 0.4, 0.6, 0.7], [0.3, 0.25, 0.2, 0.8], [0.9, 0.9, 0.95, 0.01]])
    s3 = surface_agreement(a, b, tl, off)  # dev argmin at (1, 4): both coordinates differ
    assert s3.argmin_dev == (1.0, 4.0) and s3.argmin_distance == pytest.approx(np.hypot(1.0, 4.0))
    # non-finite points are left out of both the correlation and the argmins
    tl_nan, de_nan = tl.copy(), de.copy()
    tl_nan[1, 1] = np.nan
    de_nan[2, 1] = np.inf
    t = surface_agreement(a, b, tl_nan, de_nan)
    ok = np.isfinite(tl_nan) & np.isfinite(de_nan)
    assert t.argmin_train == (0.0, 2.0) and t.argmin_dev == (0.0, 2.0)
    assert t.spearman == pytest.approx(stats.spearmanr(tl_nan[ok], de_nan[ok]).statistic, abs=1e-12)
    three = surface_agreement([0.0], [0.0, 1.0, 2.0], [[1.0, 2.0, 3.0]], [[0.1, 0.3, 0.2]])
    assert three.spearman == pytest.approx(0.5)  # three finite points are enough for a correlation
    assert np.isnan(surface_agreement([0.0], [0.0, 1.0], [[1.0, 2.0]], [[0.1, 0.3]]).spearman)


def test_straightness_and_monotonicity_every_field_by_hand() -> None:
    """A 3-4-5 path that does not start at the origin, with steps shorter than 1; as arrays, lists and ParamVectors.
    A trajectory that never moves is straight (ratio 1), not 0/0."""
    pts = np.array([[10.0, 20.0], [10.3, 20.0], [10.3, 20.4]])  # steps 0.3 and 0.4, displacement 0.5
    for form in (pts, pts.tolist(), [ParamVector(("p",), (torch.tensor(p, dtype=torch.float64),)) for p in pts]):
        s = trajectory_straightness(form)
        assert s.displacement == pytest.approx(0.5) and s.path_length == pytest.approx(0.7)
        assert s.ratio == pytest.approx(0.5 / 0.7)
    still = trajectory_straightness(np.array([[1.0, 2.0], [1.0, 2.0]]))
    assert (still.displacement, still.path_length, still.ratio) == (0.0, 0.0, 1.0)
    still_v = trajectory_straightness([ParamVector(("p",), (torch.ones(2),))] * 3)
    assert still_v.ratio == 1.0
    m = monotonicity([5.0, 4.0, 4.5, 2.0, 2.0])  # steps -1, +0.5, -2.5, 0: two of four decrease
    assert m.fraction_decreasing == pytest.approx(0.5)
    assert m.total_variation_ratio == pytest.approx(3.0 / 4.0) and m.net_change == pytest.approx(-3.0)
    flat = monotonicity([1.0, 1.0])
    assert (flat.fraction_decreasing, flat.total_variation_ratio, flat.net_change) == (0.0, 1.0, 0.0)
    one = monotonicity([3.0])
    assert (one.fraction_decreasing, one.total_variation_ratio, one.net_change) == (1.0, 1.0, 0.0)


def test_relative_change_by_hand_with_zero_norm_and_empty_groups() -> None:
    """‖θ1−θ0‖/‖θ0‖ per group, by hand; a group that starts at zero is inf if it moved and 0 if not; a group with no
    parameters is left out without stopping the others; small norms (< 1) are not special."""
    theta0 = ParamVector(("a", "b", "z", "still"), (torch.tensor([0.3, 0.4]), torch.tensor([0.06, 0.08]),
                                                    torch.zeros(2), torch.zeros(3)))
    theta1 = ParamVector(theta0.names, (torch.tensor([0.3, 0.4]) * 1.5, torch.tensor([0.06, 0.08]),
                                        torch.tensor([1.0, 0.0]), torch.zeros(3)))
    groups = {"none": ["missing"], "a": ["a"], "ab": ["a", "b"], "z": ["z"], "still": ["still"]}
    rc = relative_change(theta0, theta1, groups)
    assert list(rc) == ["a", "ab", "z", "still"]
    assert rc["a"] == pytest.approx(0.5) and rc["ab"] == pytest.approx(0.25 / np.hypot(0.5, 0.1))
    assert rc["z"] == float("inf") and rc["still"] == 0.0
