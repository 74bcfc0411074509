"""Kept first-order graphs across every batch of a solve (issue 42): ``reuse_graph=True`` / ``"auto"`` must give
the products and eigenvalues of the operator that rebuilds its graphs at every product (float64), keep what fits a
memory budget batch by batch, measure what a kept graph holds, release the graphs on close, and rebuild them when the
parameters move under them."""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch
from classifier_fixture import CountingClassifier, batches, ce_loss
from conftest import synthetic_batches

from repro.curvature import (
    HessianOperator,
    ScaledHessianOperator,
    group_curvature,
    hutchinson_trace,
    lanczos,
    spectral_density,
)
from repro.landscape import get_params, set_params
from repro.models.groups import parameter_groups


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model, batch):  # noqa: ANN001, ANN204
        self.calls += 1
        return ce_loss(model, batch)


def _vectors(n: int, size: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(size, generator=g, dtype=torch.float64) for _ in range(n)]


def test_kept_graphs_over_several_batches_give_the_rebuilt_products_and_eigenvalues_in_float64(
        tiny_model: torch.nn.Module) -> None:
    """A BERT encoder (float64), three batches: every product and the top-3 eigenvalues are the same with the graphs
    kept (True and "auto") as rebuilt at every product; only the first product runs the forwards."""
    model = tiny_model.double()
    data = synthetic_batches(3, 3, max_len=8, seed=11)
    names = parameter_groups(model)["high"] + parameter_groups(model)["head"]
    fresh = HessianOperator(model, data, names)
    kept = HessianOperator(model, data, names, reuse_graph=True)
    auto = HessianOperator(model, data, names, reuse_graph="auto")
    for v in _vectors(3, fresh.size):
        want = fresh.matvec(v)
        torch.testing.assert_close(kept.matvec(v), want, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(auto.matvec(v), want, rtol=1e-12, atol=1e-14)
    assert fresh.graph_builds == 9 and kept.graph_builds == 3 and auto.graph_builds == 3
    assert kept.kept_batches == auto.kept_batches == 3 and fresh.kept_batches == 0
    assert all(b is not None and b > 0 for b in kept.graph_bytes) and fresh.graph_bytes == [None] * 3
    assert kept.graph_bytes == auto.graph_bytes and kept.kept_graph_bytes == sum(kept.graph_bytes)
    a = lanczos(fresh, 3, tol=1e-10, max_iter=40, seed=0)
    b = lanczos(kept, 3, tol=1e-10, max_iter=40, seed=0)
    assert a.num_matvecs == b.num_matvecs
    torch.testing.assert_close(torch.tensor(b.eigenvalues), torch.tensor(a.eigenvalues), rtol=1e-10, atol=1e-12)
    assert kept.graph_builds == 3  # the whole solve on the kept graphs


def test_auto_keeps_what_fits_the_budget_batch_by_batch_with_the_same_products() -> None:
    model, data = CountingClassifier(seed=3).eval(), batches([5, 3, 4], seed=2)
    probe = HessianOperator(model, data, loss_fn=ce_loss, reuse_graph=True)
    v1, v2 = _vectors(2, probe.size, seed=4)
    want = [probe.matvec(v1), probe.matvec(v2)]
    sizes = probe.graph_bytes
    assert all(s > 0 for s in sizes)
    count = _Counting()
    partial = HessianOperator(model, data, loss_fn=count, reuse_graph="auto", graph_memory_budget=sizes[0] + sizes[1])
    got = [partial.matvec(v1), partial.matvec(v2)]
    assert partial.kept_batches == 2 and partial.kept_graph_bytes == sizes[0] + sizes[1]
    assert count.calls == 3 + 1  # the third batch is rebuilt at the second product
    none = HessianOperator(model, data, loss_fn=ce_loss, reuse_graph="auto", graph_memory_budget=0)
    got_none = [none.matvec(v1), none.matvec(v2)]
    assert none.kept_batches == 0 and none.graph_builds == 6 and none.graph_bytes == sizes
    for g, gn, w in zip(got, got_none, want):
        torch.testing.assert_close(g, w, rtol=1e-13, atol=0)
        torch.testing.assert_close(gn, w, rtol=1e-13, atol=0)


def test_close_and_the_context_manager_release_the_graphs_and_the_operator_stays_usable() -> None:
    model, data = CountingClassifier(seed=1).eval(), batches([4, 2], seed=5)
    v = _vectors(1, HessianOperator(model, data, loss_fn=ce_loss).size)[0]
    with HessianOperator(model, data, loss_fn=ce_loss, reuse_graph="auto") as op:
        first = op.matvec(v)
        assert op.kept_batches == 2
        kept_gradient = weakref.ref(op._kept[0][0])  # a kept first-order gradient, the head of its graph
        scaled = ScaledHessianOperator(op)
        scaled.matvec(v)
        scaled.close()  # releases the wrapped operator's graphs
        gc.collect()
        assert op.kept_batches == 0 and kept_gradient() is None  # freed, not merely forgotten
        torch.testing.assert_close(op.matvec(v), first, rtol=1e-13, atol=0)
        assert op.kept_batches == 2 and op.graph_builds == 4
    assert op.kept_batches == 0 and op.kept_graph_bytes == 0 and all(b for b in op.graph_bytes)


def test_moving_the_parameters_under_kept_graphs_rebuilds_them_at_the_new_point() -> None:
    """set_params writes in place (the version counters move): the next product is the Hessian at the new point, as
    without reuse, not a stale or failing one."""
    model, data = CountingClassifier(seed=2).eval(), batches([3, 3], seed=1)
    kept = HessianOperator(model, data, loss_fn=ce_loss, reuse_graph=True)
    v = _vectors(1, kept.size, seed=9)[0]
    kept.matvec(v)
    theta = get_params(model)
    set_params(model, theta, [(0.5, theta)])
    want = HessianOperator(model, data, loss_fn=ce_loss).matvec(v)
    torch.testing.assert_close(kept.matvec(v), want, rtol=1e-13, atol=0)
    assert kept.graph_builds == 4


def test_every_instrument_on_a_kept_operator_matches_the_rebuilt_one() -> None:
    """Hutchinson, SLQ and the scaled λ_max on one kept operator, and group curvature (default "auto"), equal the
    rebuilt operator's (float64)."""
    model, data = CountingClassifier(seed=4).eval(), batches([4, 3, 2], seed=8)
    fresh = HessianOperator(model, data, loss_fn=ce_loss)
    with HessianOperator(model, data, loss_fn=ce_loss, reuse_graph="auto") as kept:
        assert hutchinson_trace(kept, 6, seed=1).estimate == pytest.approx(
            hutchinson_trace(fresh, 6, seed=1).estimate, rel=1e-12)
        dk, df = (spectral_density(op, num_probes=2, num_steps=4, seed=2) for op in (kept, fresh))
        torch.testing.assert_close(torch.tensor(dk.nodes), torch.tensor(df.nodes), rtol=1e-10, atol=1e-12)
        sk, sf = (lanczos(ScaledHessianOperator(op), 1, tol=1e-10, max_iter=30, seed=0) for op in (kept, fresh))
        assert sk.eigenvalues[0] == pytest.approx(sf.eigenvalues[0], rel=1e-10)
        assert kept.graph_builds == 3
    groups = {"first": ["l1.weight", "l1.bias"], "second": ["l2.weight", "l2.bias"]}
    auto = group_curvature(copy.deepcopy(model), data, groups, loss_fn=ce_loss, tol=1e-10, max_iter=20,
                           trace_samples=4)
    off = group_curvature(copy.deepcopy(model), data, groups, loss_fn=ce_loss, tol=1e-10, max_iter=20,
                          trace_samples=4, reuse_graph=False)
    for ga, go in zip(auto.groups, off.groups):
        assert ga.lambda_max == pytest.approx(go.lambda_max, rel=1e-10)
        assert ga.trace == pytest.approx(go.trace, rel=1e-12)


def test_reuse_graph_values_are_checked() -> None:
    model, data = CountingClassifier(seed=0).eval(), batches([2], seed=0)
    with pytest.raises(ValueError, match="reuse_graph must be one of"):
        HessianOperator(model, data, loss_fn=ce_loss, reuse_graph="yes")
    with pytest.raises(ValueError, match="graph_memory_budget"):
        HessianOperator(model, data, loss_fn=ce_loss, reuse_graph="auto", graph_memory_budget=-1)
    fd = HessianOperator(model, data, loss_fn=ce_loss, reuse_graph="auto", method="finite_difference")
    fd.matvec(torch.ones(fd.size, dtype=torch.float64))
    assert fd.kept_batches == 0 and fd.graph_bytes == [None]
