"""evaluate_grid's checkpoints, sharding and merging by behaviour (mutation-testing pass, issue 10).

A surface of a BERT model costs hours; what a kill at any moment leaves on disk is the checkpoint cadence, and it
is measured here by recording how many points are done at each write of the store."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib

import numpy as np
import pytest
import torch

from classifier_fixture import CountingClassifier, batches, ce_loss, logits_of, random_vector
from conftest import label_batches, make_quadratic, quad_loss
from repro.landscape import (
    CurveResult,
    DirectionInfo,
    GridStore,
    ParamVector,
    compute_surface,
    evaluate_grid,
    get_params,
    merge_surfaces,
    surface_coords,
)

QUAD_KW = {"loss_fn": quad_loss, "logits_fn": None}
grid_mod = importlib.import_module("repro.landscape.grid")
evaluate_mod = importlib.import_module("repro.landscape.evaluate")


def _quadratic(n_points: int):
    model = make_quadratic(4, seed=7)
    base = get_params(model)
    d = ParamVector(("x",), (torch.linspace(-1.0, 1.0, 4, dtype=torch.float64),))
    coords = np.linspace(-1.0, 1.0, n_points).reshape(-1, 1)
    return model, base, [d], coords, {"train": label_batches([2])}


@pytest.fixture
def flushes(monkeypatch) -> list[int]:
    """Number of done points in the store at each write to disk (what a kill right after it would keep)."""
    seen: list[int] = []
    real = GridStore.flush

    def recording(self: GridStore) -> None:
        seen.append(int(self.done.sum()))
        real(self)

    monkeypatch.setattr(GridStore, "flush", recording)
    return seen


@pytest.mark.parametrize(("n_points", "every", "want"), [
    (10, 4, [4, 8, 10]),  # every 4 points, then the remainder on the way out
    (8, 4, [4, 8, 8]),
    (3, 4, [3]),  # fewer points than the cadence: one write at the end
    (20, None, [16, 20]),  # the documented default: every 16 points
])
def test_store_is_written_every_checkpoint_every_points(tmp_path, flushes, n_points, every, want) -> None:
    """A run killed between writes loses at most ``checkpoint_every`` points, and no more writes happen than that
    cadence needs (each write of a large store costs). Counting from 1, resetting to 1, or counting only the
    last chunk would each move or drop the writes."""
    model, base, dirs, coords, sets = _quadratic(n_points)
    kw = {} if every is None else {"checkpoint_every": every}
    out = evaluate_grid(model, base, dirs, coords, sets, store_dir=tmp_path, **kw, **QUAD_KW)
    assert flushes == want
    with np.load(tmp_path / "grid.npz") as z:
        assert z["done"].all()
        np.testing.assert_array_equal(z["values"][0], out["train_loss"])


class _Crash(Exception):
    pass


def test_a_crash_after_k_points_leaves_the_last_checkpoint_on_disk(tmp_path, monkeypatch) -> None:
    """An exception from the evaluator after 6 points (checkpoint_every=4): the store is written at 4 and once
    more on the way out, so all 6 finished points survive and a rerun computes only the other 4."""
    model, base, dirs, coords, sets = _quadratic(10)
    calls = {"n": 0}

    def failing(m, b):
        calls["n"] += 1
        if calls["n"] > 6:
            raise _Crash
        return quad_loss(m, b)

    with pytest.raises(_Crash):
        evaluate_grid(model, base, dirs, coords, sets, store_dir=tmp_path, checkpoint_every=4, loss_fn=failing,
                      logits_fn=None)
    with np.load(tmp_path / "grid.npz") as z:
        assert z["done"].tolist() == [True] * 6 + [False] * 4
    calls["n"] = -100
    evaluate_grid(model, base, dirs, coords, sets, store_dir=tmp_path, checkpoint_every=4, loss_fn=failing,
                  logits_fn=None)
    assert calls["n"] == -100 + 4


def _classifier_grid(n_points: int):
    model = CountingClassifier(3)
    base = get_params(model)
    dirs = [random_vector(base, 4), random_vector(base, 5)]
    coords = np.stack([np.linspace(-1, 1, n_points), np.linspace(0.5, -0.5, n_points)], axis=1)
    return model, base, dirs, coords, {"train": batches([3, 2], 6)}


def test_vmapped_grid_evaluates_each_point_once_and_checkpoints_on_chunks(tmp_path, flushes) -> None:
    """With vmap_points=2 the grid runs in chunks of 2 (9 points: 5 passes per batch, 10 for the two batches),
    each point once, with the same values as the one-point-per-pass run; a checkpoint cadence of 3 is met by the
    chunk that crosses it (writes at 4 and 8, then 9 at the end). Overlapping chunks would give the same values
    at twice the cost."""
    model, base, dirs, coords, sets = _classifier_grid(9)
    loop = evaluate_grid(model, base, dirs, coords, sets, loss_fn=ce_loss, logits_fn=logits_of)
    model.forwards = 0
    vm = evaluate_grid(model, base, dirs, coords, sets, loss_fn=ce_loss, logits_fn=logits_of, vmap_points=2,
                       store_dir=tmp_path, checkpoint_every=3)
    assert model.forwards == 5 * 2
    assert flushes == [4, 8, 9]
    for k in loop:
        np.testing.assert_allclose(vm[k], loop[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("autocast", [False, True])
def test_evaluate_grid_hands_autocast_to_the_evaluator(monkeypatch, autocast: bool) -> None:
    """``autocast=False`` asks for a full-precision surface on a GPU; the grid must pass it on (on the CPU,
    seen by recording what ``autocast_context`` is asked for)."""
    seen: list[object] = []

    def spy(device: torch.device, enabled: bool | None = None) -> contextlib.AbstractContextManager:
        seen.append(enabled)
        return contextlib.nullcontext()

    monkeypatch.setattr(evaluate_mod, "autocast_context", spy)
    model, base, dirs, coords, sets = _classifier_grid(3)
    for vmap_points in (1, 2):
        evaluate_grid(model, base, dirs, coords, sets, loss_fn=ce_loss, logits_fn=logits_of, autocast=autocast,
                      vmap_points=vmap_points)
    assert seen and all(e is autocast for e in seen)


def test_without_distributed_an_initialised_process_group_is_not_consulted(monkeypatch) -> None:
    """A process group may exist for other reasons (DDP training in the same process); a grid shards over it only
    when asked with ``distributed=True``, otherwise each process would silently compute a fraction of the
    surface. Seen by making the process-group query fail."""

    def no_dist() -> None:
        raise AssertionError("torch.distributed was consulted without distributed=True")

    monkeypatch.setattr(grid_mod, "_dist_shard", no_dist)
    model, base, dirs, coords, sets = _quadratic(3)
    out = evaluate_grid(model, base, dirs, coords, sets, **QUAD_KW)
    assert np.isfinite(out["train_loss"]).all()
    with pytest.raises(AssertionError, match="consulted"):
        evaluate_grid(model, base, dirs, coords, sets, distributed=True, **QUAD_KW)


@pytest.mark.parametrize("shard", [(2, 2), (3, 2), (-1, 2)])
def test_a_shard_outside_the_world_is_refused(shard) -> None:
    """``shard=(world, world)`` would compute no point and leave the grid silently NaN."""
    model, base, dirs, coords, sets = _quadratic(4)
    with pytest.raises(ValueError, match="shard"):
        evaluate_grid(model, base, dirs, coords, sets, shard=shard, **QUAD_KW)


def _surfaces(world: int):
    model = make_quadratic(3, seed=2)
    base = get_params(model)
    d1 = ParamVector(("x",), (torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64),))
    d2 = ParamVector(("x",), (torch.tensor([0.0, 1.0, -0.5], dtype=torch.float64),))
    args = (model, base, d1, d2, [-1.0, 0.0, 1.0], [-0.5, 0.5], {"train": label_batches([1])})
    full = compute_surface(*args, **QUAD_KW)
    return full, [compute_surface(*args, shard=(r, world), **QUAD_KW) for r in range(world)]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_merged_shards_equal_the_full_surface_in_any_order(order) -> None:
    """Shard files are collected in whatever order a directory listing gives; the merge must not depend on it."""
    full, parts = _surfaces(3)
    merged = merge_surfaces([parts[i] for i in order])
    assert merged == full


def test_merging_a_single_complete_part_returns_it() -> None:
    """world=1 (or an already merged result passed through the merge step) is the trivial merge."""
    full, parts = _surfaces(1)
    assert parts[0] == full
    assert merge_surfaces(parts) == full


def test_results_read_with_integer_values_are_float_arrays() -> None:
    """A result file edited or written by another tool may hold 0 and 1 as integers (accuracies!); the arrays a
    metric or a merge reads are float64 anyway, so NaN fills and divisions behave."""
    full, _ = _surfaces(1)
    ints = {k: tuple(tuple(int(i + j) for j in range(len(row))) for i, row in enumerate(v))
            for k, v in full.grids.items()}
    s = dataclasses.replace(full, grids=ints)
    assert s.array("train_acc").dtype == np.float64 and s.train_loss.dtype == np.float64
    assert merge_surfaces([s]).train_loss.tolist() == [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]
    c = CurveResult(alphas=(0.0, 1.0), values={"train_acc": (1, 0)}, direction=DirectionInfo("custom", 1.0),
                    num_params=3)
    acc = c.array("train_acc")
    assert acc.dtype == np.float64
    acc[acc == 0] = np.nan  # masking a point must be possible on what array() returns
    assert np.isnan(acc).tolist() == [False, True]


def test_surface_coords_from_integer_axes_are_float_and_row_major() -> None:
    """Integer axes (``range(-2, 3)``) are a natural way to write a grid; the coordinates are float64, α outer and
    β inner, so that ``values.reshape(len(α), len(β))[i, j]`` is at (α_i, β_j)."""
    c = surface_coords([0, 1, 2], [-1, 1])
    assert c.dtype == np.float64
    assert c.tolist() == [[0.0, -1.0], [0.0, 1.0], [1.0, -1.0], [1.0, 1.0], [2.0, -1.0], [2.0, 1.0]]
    assert all(type(x) is float for row in c.tolist() for x in row)


def test_a_store_that_does_not_fit_the_grid_is_refused_with_the_fix(tmp_path) -> None:
    """Resuming into a store of another grid would mix two surfaces; the error names the fix (a fresh directory,
    or delete the store). Also for a values file whose shape does not match its own metadata (a store written by
    another version, or truncated by hand)."""
    from repro.errors import ReproError

    coords, metrics = np.array([[0.0], [1.0]]), ["train_loss", "train_acc"]
    store = GridStore(tmp_path, coords, metrics)
    store.flush()
    with pytest.raises(ReproError, match="use a fresh directory or delete it to recompute"):
        GridStore(tmp_path, np.array([[0.0], [2.0]]), metrics)
    np.savez(tmp_path / "grid.npz", values=np.zeros((1, 2)), done=np.zeros(2, dtype=bool))
    with pytest.raises(ReproError, match="wrong shape; delete it to recompute"):
        GridStore(tmp_path, coords, metrics)
