from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_batches
from repro.landscape import ParamVector, evaluate, filter_normalized_direction, get_params
from repro.metrics import (
    basin_area,
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
