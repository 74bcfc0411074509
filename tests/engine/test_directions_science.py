"""Orientation of the paper's directions, checked against known parameter vectors.

A norm or an orthogonality check passes for δ and −δ alike, and for δ2 taken from the wrong run. These tests pin
the *direction*: δ1 = θ1 − θ0 (so the 1-D curve is θ0 at α=0 and θ1 at α=1), δ2 = θ1′ − θ0 rescaled to ‖δ1‖ (so the
surface point (0, β) lies on the ray from θ1 towards the partner's displacement), and the trajectory projection
puts θ0 at (−1, 0) of the plane around θ1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import label_batches, make_quadratic, quad_loss
from repro.landscape import (
    ParamVector,
    compute_curve,
    compute_surface,
    cross_task_direction,
    get_params,
    optimization_direction,
    orthogonalize,
    project_onto_plane,
)

QUAD_KW = {"loss_fn": quad_loss, "logits_fn": None}


def _vec(seed: int, shapes: tuple[tuple[int, ...], ...] = ((5,), (3, 4), (2,))) -> ParamVector:
    g = torch.Generator().manual_seed(seed)
    names = tuple(f"p{i}" for i in range(len(shapes)))
    return ParamVector(names, tuple(torch.randn(s, generator=g, dtype=torch.float64) for s in shapes))


def _exact(a: ParamVector, b: ParamVector) -> bool:
    return a.names == b.names and all(torch.equal(x, y) for x, y in zip(a.tensors, b.tensors))


def test_delta1_is_theta1_minus_theta0() -> None:
    theta0, theta1 = _vec(0), _vec(1)
    d1 = optimization_direction(theta0, theta1)
    assert _exact(d1.vector, theta1 - theta0)  # not θ0 − θ1, not θ1 + θ0
    assert ((theta0 + d1.vector) - theta1).norm() <= 1e-14 * theta1.norm()  # the end point is θ1
    assert d1.info.kind == "optimization" and d1.info.norm == pytest.approx((theta1 - theta0).norm(), rel=1e-12)


def test_delta2_points_along_the_partner_displacement_rescaled_to_delta1() -> None:
    theta0, theta1, theta1p = _vec(0), _vec(1), _vec(2)
    d1 = optimization_direction(theta0, theta1)
    partner = theta1p - theta0
    d2 = cross_task_direction(theta0, theta1p, d1.vector)
    expected = partner * (d1.vector.norm() / partner.norm())
    for got, want in zip(d2.vector.tensors, expected.tensors):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert d2.vector.dot(partner) > 0 and d2.vector.cosine(partner) == pytest.approx(1.0, abs=1e-12)
    assert d2.vector.norm() == pytest.approx(d1.vector.norm(), rel=1e-12)
    assert d2.info.rescaled_to == pytest.approx(d1.vector.norm(), rel=1e-12)
    # δ2 is the partner's displacement, not the run's own: it is not parallel to δ1
    assert abs(d2.vector.cosine(d1.vector)) < 0.9
    # the scale may be given as a number; θ0 + (‖θ1′−θ0‖/‖δ1‖)·δ2 is θ1′ itself
    d2n = cross_task_direction(theta0, theta1p, d1.vector.norm())
    assert all(torch.equal(a, b) for a, b in zip(d2n.vector.tensors, d2.vector.tensors))
    back = theta0.clone().axpy_(partner.norm() / d1.vector.norm(), d2.vector)
    assert (back - theta1p).norm() <= 1e-12 * theta1p.norm()


def test_delta2_on_a_mismatched_head_keeps_the_orientation_of_the_shared_parameters() -> None:
    theta0, theta1 = _vec(0), _vec(1)
    other = dict(_vec(2).as_dict())
    other["p2"] = torch.zeros(3, dtype=torch.float64)  # the partner's head has another label count
    del other["p0"]  # and θ1′ lacks a parameter
    d1 = optimization_direction(theta0, theta1)
    d2 = cross_task_direction(theta0, ParamVector.from_dict(other), d1.vector)
    assert d2.info.excluded_params == ("p0", "p2")
    shared = other["p1"] - theta0.as_dict()["p1"]
    got = d2.vector.as_dict()["p1"]
    factor = float(got.norm() / shared.norm())
    torch.testing.assert_close(got, factor * shared, rtol=1e-12, atol=1e-12)  # positive multiple of θ1′ − θ0
    assert factor == pytest.approx(d1.vector.norm() / float(shared.norm()), rel=1e-12)
    assert (d2.vector.as_dict()["p0"] == 0).all() and (d2.vector.as_dict()["p2"] == 0).all()


def _quad_at(model, x: torch.Tensor) -> float:  # noqa: ANN001
    return float(0.5 * x @ model.A @ x + model.b @ x)


def test_curve_along_delta1_is_the_loss_at_theta0_then_theta1() -> None:
    """The paper's Fig. 1: θ0 + α(θ1 − θ0). With a flipped δ1, α=1 would be 2θ0 − θ1."""
    model = make_quadratic(9, seed=11)
    theta0 = get_params(model)
    g = torch.Generator().manual_seed(5)
    theta1 = ParamVector(("x",), (theta0.tensors[0] + torch.randn(9, generator=g, dtype=torch.float64),))
    d1 = optimization_direction(theta0, theta1)
    alphas = [-0.25, 0.0, 0.5, 1.0, 1.5]
    c = compute_curve(model, theta0, d1, alphas, {"train": label_batches([3])}, **QUAD_KW)
    x0, x1 = theta0.tensors[0], theta1.tensors[0]
    loss = c.array("train_loss")
    assert loss[1] == pytest.approx(_quad_at(model, x0), rel=1e-12)
    assert loss[3] == pytest.approx(_quad_at(model, x1), rel=1e-12)
    assert loss[4] == pytest.approx(_quad_at(model, x0 + 1.5 * (x1 - x0)), rel=1e-12)
    assert loss[0] == pytest.approx(_quad_at(model, x0 - 0.25 * (x1 - x0)), rel=1e-12)


def test_surface_around_theta1_has_delta1_on_rows_and_delta2_on_columns() -> None:
    """The paper's Figs. 2-3: θ1 + αδ1 + βδ2. Point (−1, 0) is θ0, point (0, t) lies towards θ1′."""
    model = make_quadratic(9, seed=12)
    g = torch.Generator().manual_seed(6)
    x0 = torch.randn(9, generator=g, dtype=torch.float64)
    x1 = x0 + torch.randn(9, generator=g, dtype=torch.float64)
    x1p = x0 + torch.randn(9, generator=g, dtype=torch.float64)
    theta0, theta1, theta1p = (ParamVector(("x",), (x,)) for x in (x0, x1, x1p))
    d1 = optimization_direction(theta0, theta1)
    d2 = cross_task_direction(theta0, theta1p, d1.vector)
    alphas, betas = [-1.0, 0.0, 0.5], [-0.5, 0.0, 1.0, 2.0]  # different lengths: a transposed grid cannot pass
    s = compute_surface(model, theta1, d1, d2, alphas, betas, {"train": label_batches([2])}, **QUAD_KW)
    grid = s.train_loss
    assert grid.shape == (3, 4)
    scale = float((x1 - x0).norm() / (x1p - x0).norm())
    assert grid[0, 1] == pytest.approx(_quad_at(model, x0), rel=1e-12)  # θ1 − δ1 = θ0
    assert grid[1, 1] == pytest.approx(_quad_at(model, x1), rel=1e-12)
    for j, b in enumerate(betas):
        want = _quad_at(model, x1 + b * scale * (x1p - x0))
        assert grid[1, j] == pytest.approx(want, rel=1e-10), b
    assert grid[2, 3] == pytest.approx(_quad_at(model, x1 + 0.5 * (x1 - x0) + 2.0 * scale * (x1p - x0)), rel=1e-10)
    assert s.cosine_d1_d2 == pytest.approx(float(torch.nn.functional.cosine_similarity(x1 - x0, x1p - x0, dim=0)),
                                           abs=1e-12)


def test_trajectory_projection_puts_theta0_at_minus_one_and_the_partner_at_positive_beta() -> None:
    theta0, theta1, theta1p = _vec(0), _vec(1), _vec(2)
    d1 = optimization_direction(theta0, theta1).vector
    d2 = cross_task_direction(theta0, theta1p, d1).vector
    mid = theta0.clone().axpy_(0.5, theta1 - theta0)
    p = project_onto_plane([theta0, mid, theta1, theta1p], theta1, d1, d2, steps=[0, 5, 10, 99])
    np.testing.assert_allclose(p.alphas[:3], [-1.0, -0.5, 0.0], atol=1e-10)
    np.testing.assert_allclose(p.betas[:3], [0.0, 0.0, 0.0], atol=1e-10)
    np.testing.assert_allclose(p.residual[:3], [0.0, 0.0, 0.0], atol=1e-10)
    # θ1′ = θ0 + k·δ2 with k = ‖θ1′−θ0‖/‖δ1‖ > 0 lies in the plane at (−1, k)
    k = (theta1p - theta0).norm() / d1.norm()
    assert p.alphas[3] == pytest.approx(-1.0, abs=1e-10) and p.betas[3] == pytest.approx(k, rel=1e-10)
    assert p.steps == (0, 5, 10, 99)
    assert p.gram == ((d1.dot(d1), d1.dot(d2)), (d2.dot(d1), d2.dot(d2)))  # the plane's metric, as stored


def test_orthogonalize_keeps_the_side_of_d2() -> None:
    """Gram-Schmidt removes the δ1 component; what is left still points towards θ1′ (positive dot product)."""
    theta0, theta1, theta1p = _vec(0), _vec(1), _vec(2)
    d1 = optimization_direction(theta0, theta1)
    d2 = cross_task_direction(theta0, theta1p, d1.vector)
    o = orthogonalize(d1, d2)
    assert abs(o.vector.dot(d1.vector)) <= 1e-10 * d1.vector.norm() ** 2
    assert o.vector.dot(d2.vector) > 0
    resid = d2.vector.clone().axpy_(-d2.vector.dot(d1.vector) / d1.vector.dot(d1.vector), d1.vector)
    assert o.vector.cosine(resid) == pytest.approx(1.0, abs=1e-12)
    assert o.vector.norm() == pytest.approx(d2.vector.norm(), rel=1e-12)
    raw = orthogonalize(d1, d2, keep_norm=False)
    assert raw.vector.norm() == pytest.approx(resid.norm(), rel=1e-12)


# ---------------------------------------------------------------- provenance and edge cases (mutation pass)


def test_derived_directions_keep_their_provenance() -> None:
    """A restricted or orthogonalised δ2 is still δ2: kind, rescaling, excluded parameters and note travel with it,
    only the norm (recomputed), the group and the note's suffix change. Result files rely on these fields."""
    import dataclasses

    from repro.landscape import restrict_direction

    theta0, theta1 = _vec(0), _vec(1)
    other = dict(_vec(2).as_dict())
    other["p2"] = torch.zeros(4, dtype=torch.float64)
    d1 = optimization_direction(theta0, theta1)
    d2 = cross_task_direction(theta0, ParamVector.from_dict(other), d1.vector)
    assert d2.info == dataclasses.replace(
        d2.info, kind="cross_task", norm=d2.vector.norm(), one_dim_policy="include", rescaled_to=d1.vector.norm(),
        excluded_params=("p2",), note="defined on shared parameters; zero on 1 mismatched/missing", seed=None,
        group=None)
    assert d2.info.norm == pytest.approx(d1.vector.norm(), rel=1e-12)
    plain = cross_task_direction(theta0, _vec(3), d1.vector)
    assert plain.info.note == "" and plain.info.excluded_params == ()

    r = restrict_direction(d2, ["p1"], group="middle")
    assert r.info == dataclasses.replace(d2.info, norm=r.vector.norm(), group="middle")
    assert r.vector.norm() == pytest.approx(float(d2.vector.as_dict()["p1"].norm()), rel=1e-12)

    o = orthogonalize(d1, d2)
    assert o.info == dataclasses.replace(d2.info, norm=o.vector.norm(),
                                         note=d2.info.note + "; orthogonalised against d1")
    assert orthogonalize(d1, plain).info.note == "orthogonalised against d1"
    from repro.landscape import filter_normalized_direction

    rnd = restrict_direction(filter_normalized_direction(theta1, seed=9), ["p1"], group="g")
    assert rnd.info.seed == 9 and rnd.info.kind == "random" and rnd.info.one_dim_policy == "zero"
    assert orthogonalize(d1, rnd).info.seed == 9 and orthogonalize(d1, rnd).info.group == "g"


def test_cross_task_scaling_edge_cases() -> None:
    """A small partner displacement (‖θ1′−θ0‖ < 1) is still rescaled to ‖δ1‖; a partner equal to θ0 gives a zero δ2,
    not NaN."""
    theta0 = _vec(0)
    theta1 = theta0 + _vec(1) * 3.0
    tiny = theta0 + _vec(2) * 1e-3
    d1 = optimization_direction(theta0, theta1)
    d2 = cross_task_direction(theta0, tiny, d1.vector)
    assert (tiny - theta0).norm() < 1 and d2.vector.norm() == pytest.approx(d1.vector.norm(), rel=1e-10)
    same = cross_task_direction(theta0, theta0.clone(), d1.vector)
    assert same.vector.norm() == 0.0 and all(torch.isfinite(t).all() for t in same.vector.tensors)


def test_orthogonalize_edge_cases() -> None:
    """d1 = 0: nothing to remove, d2 is returned as is. d2 = d1: the remainder is exactly zero and stays zero (no
    NaN from rescaling a zero vector)."""
    theta0, theta1 = _vec(0), _vec(1)
    d = optimization_direction(theta0, theta1)
    zero = optimization_direction(theta0, theta0.clone())
    assert orthogonalize(zero, d) is d
    same = orthogonalize(d, d)
    assert all(torch.isfinite(t).all() for t in same.vector.tensors) and same.vector.norm() == 0.0
    par = orthogonalize(d, optimization_direction(theta0, theta0 + (theta1 - theta0) * 2.0), keep_norm=False)
    assert par.vector.norm() <= 1e-12 * d.vector.norm()


def _pca_oracle(snaps: list[ParamVector], center: ParamVector, k: int, subtract_mean: bool):  # noqa: ANN202
    rows = np.stack([(s - center).flatten().numpy() for s in snaps])
    if subtract_mean:
        rows = rows - rows.mean(axis=0)
    _, sv, vt = np.linalg.svd(rows, full_matrices=False)
    return vt[:k], (sv**2 / (sv**2).sum())[:k]


@pytest.mark.parametrize("subtract_mean", [True, False])
def test_pca_directions_match_an_svd_of_the_trajectory(subtract_mean: bool) -> None:
    """Li et al.'s PCA (sklearn's: rows θ_t − θ_end, centred) against numpy's SVD, in float64 to 1e-9, with a
    trajectory whose mean is far from θ_end (so centring matters) and small steps (so unit-normalising matters)."""
    from repro.landscape import pca_directions

    center = _vec(10)
    drift, wiggle = _vec(11), _vec(12)
    snaps = [center + drift * (0.01 * t) + wiggle * (0.003 * np.sin(1.3 * t)) + _vec(20 + t) * 1e-4
             for t in range(1, 7)]
    got = pca_directions(snaps, center, subtract_mean=subtract_mean)
    assert len(got) == 2  # k defaults to the paper's 2-D plot
    want, ratio = _pca_oracle(snaps, center, 2, subtract_mean)
    for d, w, r in zip(got, want, ratio):
        v = d.vector.flatten().numpy()
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-12) and d.info.norm == pytest.approx(1.0, abs=1e-12)
        assert abs(float(v @ w)) == pytest.approx(1.0, abs=1e-9)
        assert d.info.kind == "pca" and d.info.one_dim_policy == "include"
        assert d.info.note == f"explained variance ratio {r:.4f}"
    assert len(pca_directions(snaps[:3], center, k=3)) == 3  # as many snapshots as directions is enough
    with pytest.raises(ValueError, match="need at least 3 snapshots for 3 PCA directions"):
        pca_directions(snaps[:2], center, k=3)
