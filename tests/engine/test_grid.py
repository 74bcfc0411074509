from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import label_batches, make_quadratic, quad_loss, rebatch, synthetic_batches
from repro.landscape import (
    CurveResult,
    ParamVector,
    SurfaceResult,
    compute_curve,
    compute_surface,
    evaluate,
    filter_normalized_direction,
    get_params,
    merge_surfaces,
)
from repro.storage import from_json_dict, read_json, to_json_dict, write_json

QUAD_KW = {"loss_fn": quad_loss, "logits_fn": None}


def _closed_form(model, x0: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, a: float, b: float) -> float:
    x = x0 + a * d1 + b * d2
    return float(0.5 * x @ model.A @ x + model.b @ x)


def test_quadratic_surface_and_curve_equal_closed_form() -> None:
    model = make_quadratic(8, seed=3)
    base = get_params(model)
    g = torch.Generator().manual_seed(1)
    d1 = ParamVector(("x",), (torch.randn(8, generator=g, dtype=torch.float64),))
    d2 = ParamVector(("x",), (torch.randn(8, generator=g, dtype=torch.float64),))
    alphas, betas = [-2.0, -0.5, 0.0, 1.0, 2.5], [-1.0, 0.0, 0.75, 3.0]  # extrapolation beyond [0, 1]
    sets = {"train": label_batches([3, 5]), "dev": label_batches([4])}
    s = compute_surface(model, base, d1, d2, alphas, betas, sets, **QUAD_KW)
    x0, v1, v2 = base.tensors[0], d1.tensors[0], d2.tensors[0]
    expected = np.array([[_closed_form(model, x0, v1, v2, a, b) for b in betas] for a in alphas])
    np.testing.assert_allclose(s.train_loss, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.dev_loss, expected, rtol=1e-12, atol=1e-12)
    assert s.cosine_d1_d2 == pytest.approx(float(v1 @ v2 / (v1.norm() * v2.norm())))
    c = compute_curve(model, base, d1, alphas, sets, **QUAD_KW)
    np.testing.assert_allclose(c.array("train_loss"), [_closed_form(model, x0, v1, v2, a, 0) for a in alphas],
                               rtol=1e-12)
    assert torch.equal(model.x.detach(), x0)  # restored


def test_results_round_trip_json(tmp_path) -> None:
    model = make_quadratic(4)
    base = get_params(model)
    d = ParamVector(("x",), (torch.ones(4, dtype=torch.float64),))
    sets = {"train": label_batches([2]), "dev": label_batches([2])}
    s = compute_surface(model, base, d, d * 0.5, [0.0, 1.0], [0.0, 1.0, 2.0], sets, **QUAD_KW)
    write_json(tmp_path / "s.json", s)
    assert from_json_dict(SurfaceResult, read_json(tmp_path / "s.json")) == s
    c = compute_curve(model, base, d, [0.0, 0.5], sets, **QUAD_KW)
    assert from_json_dict(CurveResult, to_json_dict(c)) == c


@pytest.fixture(scope="module")
def tiny_setup(tiny_bert):
    base = get_params(tiny_bert)
    d1 = filter_normalized_direction(base, seed=1)
    d2 = filter_normalized_direction(base, seed=2)
    sets = {"train": synthetic_batches(2, 4, seed=0), "dev": synthetic_batches(1, 5, seed=1)}
    return base, d1, d2, sets


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 1000))
def test_surface_at_origin_equals_base_loss(tiny_bert, tiny_setup, seed: int) -> None:
    base, _, _, sets = tiny_setup
    d1 = filter_normalized_direction(base, seed=seed)
    d2 = filter_normalized_direction(base, seed=seed + 1)
    s = compute_surface(tiny_bert, base, d1, d2, [-0.5, 0.0], [0.0, 0.5], sets)
    assert s.train_loss[1, 0] == pytest.approx(evaluate(tiny_bert, sets["train"]).loss, rel=1e-6)
    assert s.dev_error[1, 0] == pytest.approx(evaluate(tiny_bert, sets["dev"]).error, abs=1e-12)
    assert (get_params(tiny_bert) - base).norm() == 0.0


@settings(max_examples=4, deadline=None)
@given(size=st.integers(1, 8), seed=st.integers(0, 100))
def test_loss_does_not_depend_on_batch_size(tiny_bert, size: int, seed: int) -> None:
    batches = synthetic_batches(2, 4, seed=seed)
    a = evaluate(tiny_bert, batches)
    b = evaluate(tiny_bert, rebatch(batches, size))
    assert b.loss == pytest.approx(a.loss, rel=1e-5)
    assert b.accuracy == pytest.approx(a.accuracy)
    assert a.count == b.count == 8


@settings(max_examples=3, deadline=None)
@given(world=st.integers(2, 4))
def test_result_does_not_depend_on_number_of_shards(tiny_bert, tiny_setup, world: int) -> None:
    base, d1, d2, sets = tiny_setup
    grid = ([-1.0, 0.0, 1.0], [-0.5, 0.5])
    full = compute_surface(tiny_bert, base, d1, d2, *grid, sets)
    parts = [compute_surface(tiny_bert, base, d1, d2, *grid, sets, shard=(r, world)) for r in range(world)]
    assert np.isnan(parts[0].train_loss).any()
    merged = merge_surfaces(parts)
    for k in full.grids:
        np.testing.assert_array_equal(merged.array(k), full.array(k))


def test_vmap_points_equals_loop(tiny_bert, tiny_setup) -> None:
    base, d1, d2, sets = tiny_setup
    grid = ([-1.0, 0.0, 0.5], [0.0, 2.0])
    loop = compute_surface(tiny_bert, base, d1, d2, *grid, sets)
    vm = compute_surface(tiny_bert, base, d1, d2, *grid, sets, vmap_points=4)
    for k in loop.grids:
        np.testing.assert_allclose(vm.array(k), loop.array(k), rtol=1e-5, atol=1e-6)
    assert (get_params(tiny_bert) - base).norm() == 0.0


class _Interrupt(Exception):
    pass


def test_interrupted_surface_resumes_to_the_same_result(tiny_bert, tiny_setup, tmp_path) -> None:
    base, d1, d2, sets = tiny_setup
    grid = ([-1.0, -0.5, 0.0, 0.5], [0.0, 1.0])
    reference = compute_surface(tiny_bert, base, d1, d2, *grid, sets)
    from repro.landscape import classification_loss

    calls = {"n": 0}

    def flaky(model, batch):
        calls["n"] += 1
        if calls["n"] > 3 * (len(sets["train"]) + len(sets["dev"])):  # fail during the 4th point
            raise _Interrupt
        return classification_loss(model, batch)

    with pytest.raises(_Interrupt):
        compute_surface(tiny_bert, base, d1, d2, *grid, sets, store_dir=tmp_path, checkpoint_every=2, loss_fn=flaky)
    assert (get_params(tiny_bert) - base).norm() == 0.0  # restored even on failure
    with np.load(tmp_path / "grid.npz") as z:
        assert int(z["done"].sum()) == 3  # flushed on the way out
    counted = {"n": 0}

    def counting(model, batch):
        counted["n"] += 1
        return classification_loss(model, batch)

    resumed = compute_surface(tiny_bert, base, d1, d2, *grid, sets, store_dir=tmp_path, loss_fn=counting)
    assert counted["n"] == 5 * (len(sets["train"]) + len(sets["dev"]))  # only the 5 missing points
    for k in reference.grids:
        np.testing.assert_array_equal(resumed.array(k), reference.array(k))


def test_store_rejects_a_different_grid(tiny_bert, tiny_setup, tmp_path) -> None:
    from repro.errors import ReproError

    base, d1, d2, sets = tiny_setup
    compute_curve(tiny_bert, base, d1, [0.0, 1.0], sets, store_dir=tmp_path)
    with pytest.raises(ReproError):
        compute_curve(tiny_bert, base, d1, [0.0, 2.0], sets, store_dir=tmp_path)


def test_store_layout_and_result_provenance_on_the_quadratic(tmp_path) -> None:
    """What a resumed or merged run relies on: a nested store directory is created, each shard writes its own file
    (``grid.r{rank}of{world}.npz``) next to one ``grid.meta.json`` holding the float coordinates and the metric
    names, the done mask is boolean; and every result says where it came from (coefficients, direction, size,
    group, torch version)."""
    import json

    from repro.landscape import GridStore, optimization_direction

    model = make_quadratic(5, seed=4)
    base = get_params(model)
    d1 = optimization_direction(base, base + ParamVector(("x",), (torch.ones(5, dtype=torch.float64),)))
    d2 = ParamVector(("x",), (torch.arange(5, dtype=torch.float64),))
    sets = {"train": label_batches([2])}
    store = tmp_path / "a" / "b"
    c = compute_curve(model, base, d1, [0, 1, 2], sets, store_dir=store, param_group="low", shard=(1, 3), **QUAD_KW)
    assert (store / "grid.r1of3.npz").is_file() and not (store / "grid.npz").exists()
    meta = json.loads((store / "grid.meta.json").read_text())
    assert meta == {"coords": [[0.0], [1.0], [2.0]], "metrics": ["train_loss", "train_acc"]}
    assert np.isnan(c.array("train_loss")[[0, 2]]).all() and np.isfinite(c.array("train_loss")[1])  # shard 1 of 3
    with np.load(store / "grid.r1of3.npz") as z:
        assert z["done"].dtype == bool and z["done"].tolist() == [False, True, False]
    assert c.alphas == (0.0, 1.0, 2.0) and all(type(a) is float for a in c.alphas)
    assert c.direction == d1.info and c.num_params == 5 and c.param_group == "low"
    assert c.provenance == {"torch": torch.__version__} and c.array("train_loss").dtype == np.float64
    s = compute_surface(model, base, d1, d2, [0, 1], [-1, 0, 1], sets, param_group="high", **QUAD_KW)
    assert s.alphas == (0.0, 1.0) and s.betas == (-1.0, 0.0, 1.0)
    assert s.d1 == d1.info and s.d2.kind == "custom" and s.d2.norm == pytest.approx(d2.norm())
    assert s.num_params == 5 and s.param_group == "high" and s.provenance == {"torch": torch.__version__}
    assert s.train_loss.shape == (2, 3) and s.train_loss.dtype == np.float64
    with pytest.raises(Exception, match="different grid"):
        GridStore(store, np.array([[0.0], [1.0], [3.0]]), ["train_loss", "train_acc"])
