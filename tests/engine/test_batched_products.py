"""Several vectors in one pass (issue 42): :meth:`HessianOperator.matmat` vmaps the second backward over k vectors
on each batch's gradient graph; every row must be today's single product (float64, a tiny MLP and a tiny BERT with
eager attention), counted as k products, with a loop of single products as the fallback (finite differences, vmap
refusing an op). Hutchinson/Hutch++ and SLQ with ``batch_vectors`` > 1 must give the sequential estimates: the same
probes, each probe's Lanczos recurrence unchanged in lockstep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from classifier_fixture import CountingClassifier, batches, ce_loss
from conftest import synthetic_batches
from spectra import known_spectrum

from repro.curvature import (
    HessianOperator,
    LambdaOperator,
    ScaledHessianOperator,
    hutchinson_trace,
    hutchpp_trace,
    lanczos,
    spectral_density,
)
from repro.errors import NonFiniteError
from repro.models.groups import parameter_groups


def _rows(k: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, size, generator=g, dtype=torch.float64)


def _looped(op: HessianOperator, V: torch.Tensor) -> torch.Tensor:
    return torch.stack([op.matvec(V[i]) for i in range(V.shape[0])])


@pytest.mark.parametrize("reuse", [True, "auto", False])
def test_matmat_rows_are_the_single_products_of_a_float64_mlp_and_count_as_k_products(reuse) -> None:
    model, data = CountingClassifier(seed=5).train(), batches([4, 3, 2], seed=3)  # train(): eval() must be forced
    op = HessianOperator(model, data, loss_fn=ce_loss, reuse_graph=reuse)
    V = _rows(5, op.size, seed=1)
    got = op.matmat(V)
    assert op.num_matvecs == 5 and op.batched and op.batched_fallback is None
    assert op.graph_builds == 3  # one pass over each batch served all 5 rows
    want = _looped(op, V)
    assert op.num_matvecs == 10
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    assert model.training  # restored
    assert op.graph_builds == (3 if reuse is not False else 3 + 5 * 3)


def test_matmat_through_a_float64_bert_with_eager_attention(tiny_model: torch.nn.Module) -> None:
    """vmap goes through BERT's eager double backward (attention softmax, GELU, LayerNorm, embeddings): the batched
    path runs (no fallback) and every row is the single product, on a group and on all parameters, kept graphs and
    graphs built for the call."""
    model = tiny_model.double()
    data = synthetic_batches(2, 3, max_len=8, seed=11)
    groups = parameter_groups(model)
    for names, reuse in ((groups["high"] + groups["head"], True), (None, False)):
        op = HessianOperator(model, data, names, reuse_graph=reuse)
        V = _rows(3, op.size, seed=2)
        got = op.matmat(V)
        assert op.batched, op.batched_fallback
        torch.testing.assert_close(got, _looped(op, V), rtol=1e-11, atol=1e-13)
        assert op.num_matvecs == 6
        op.close()


def test_finite_difference_and_single_rows_loop_over_single_products() -> None:
    model, data = CountingClassifier(seed=1).eval(), batches([3, 3], seed=4)
    fd = HessianOperator(model, data, loss_fn=ce_loss, method="finite_difference")
    assert not fd.batched and "finite_difference" in fd.batched_fallback
    V = _rows(3, fd.size, seed=3)
    assert torch.equal(fd.matmat(V), _looped(fd, V))
    assert fd.num_matvecs == 6
    op = HessianOperator(model, data, loss_fn=ce_loss)
    one = op.matmat(V[:1])
    assert torch.equal(one[0], op.matvec(V[0])) and op.graph_builds == 4


def test_a_vmap_refusal_falls_back_once_for_good_and_other_errors_propagate(monkeypatch) -> None:
    model, data = CountingClassifier(seed=2).eval(), batches([3, 2], seed=5)
    op = HessianOperator(model, data, loss_fn=ce_loss, reuse_graph=True)
    V = _rows(4, op.size, seed=4)
    want = _looped(op, V)
    calls = []

    def refuse(V: torch.Tensor) -> torch.Tensor:
        calls.append(V.shape[0])
        raise RuntimeError("Batching rule not implemented for aten::frobnicate; vmap cannot run it")

    monkeypatch.setattr(op, "_batched_hvp", refuse)
    torch.testing.assert_close(op.matmat(V), want, rtol=1e-13, atol=0)
    assert not op.batched and "frobnicate" in op.batched_fallback
    torch.testing.assert_close(op.matmat(V), want, rtol=1e-13, atol=0)
    assert calls == [4] and op.num_matvecs == 12 and op.kept_batches == 2  # tried once; kept graphs survive

    other = HessianOperator(model, data, loss_fn=ce_loss)
    monkeypatch.setattr(other, "_batched_hvp", lambda V: (_ for _ in ()).throw(RuntimeError("something else")))
    with pytest.raises(RuntimeError, match="something else"):
        other.matmat(V)
    assert other.batched


def test_matmat_checks_shapes_and_non_finite_products_and_the_base_operator_loops() -> None:
    A, _ = known_spectrum([3.0, 2.0], 6, seed=1)
    op = LambdaOperator(A)
    V = _rows(3, 6, seed=5)
    assert torch.equal(op.matmat(V), torch.stack([A @ V[i] for i in range(3)])) and op.num_matvecs == 3
    for bad in (V[0], _rows(2, 5)):
        with pytest.raises(ValueError, match="expected vectors of shape"):
            op.matmat(bad)
    nan = LambdaOperator(lambda v: v * float("nan"), size=6)
    with pytest.raises(NonFiniteError, match="NaN/Inf"):
        nan.matmat(V)


def test_the_scaled_operator_batches_through_the_wrapped_hessian() -> None:
    model, data = CountingClassifier(seed=6).eval(), batches([3, 4], seed=6)
    h = HessianOperator(model, data, loss_fn=ce_loss, reuse_graph=True)
    s = ScaledHessianOperator(h)
    V = _rows(3, s.size, seed=6)
    got = s.matmat(V)
    assert s.num_matvecs == 3 and h.num_matvecs == 3 and h.batched
    torch.testing.assert_close(got, torch.stack([s.matvec(V[i]) for i in range(3)]), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bv", [2, 3, 7])
def test_hutchinson_and_hutchpp_in_chunks_give_the_sequential_estimates(bv: int) -> None:
    model, data = CountingClassifier(seed=7).eval(), batches([4, 3], seed=7)
    with HessianOperator(model, data, loss_fn=ce_loss, reuse_graph=True) as op:
        seq = hutchinson_trace(op, 7, seed=3)
        bat = hutchinson_trace(op, 7, seed=3, batch_vectors=bv)
        assert bat.estimate == pytest.approx(seq.estimate, rel=1e-12)
        assert bat.stderr == pytest.approx(seq.stderr, rel=1e-10)
        assert bat.num_matvecs == seq.num_matvecs == 7 and bat.num_samples == 7
        for budget in (9, 99):  # Hutch++ proper (size 51 > 3m = 9) and the exact-trace branch (size <= 3m)
            a = hutchpp_trace(op, budget, seed=4)
            b = hutchpp_trace(op, budget, seed=4, batch_vectors=bv)
            assert (b.method, b.num_matvecs, b.num_samples) == (a.method, a.num_matvecs, a.num_samples)
            assert b.estimate == pytest.approx(a.estimate, rel=1e-11)
            assert b.stderr == pytest.approx(a.stderr, rel=1e-9, abs=1e-14)
    with pytest.raises(ValueError, match="batch_vectors"):
        hutchinson_trace(op, 4, batch_vectors=0)


def _same_density(a, b) -> None:
    assert a.steps == b.steps and a.num_matvecs == b.num_matvecs
    for x, y in zip(a.nodes + a.weights, b.nodes + b.weights):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-9, atol=1e-11)
    for f in ("trace", "trace_stderr", "second_moment", "density_change", "sigma"):
        assert getattr(b, f) == pytest.approx(getattr(a, f), rel=1e-9, abs=1e-12), f
    np.testing.assert_allclose(np.asarray(b.density), np.asarray(a.density), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("bv", [2, 5, 8])
def test_slq_in_lockstep_is_the_sequential_slq_with_deflation_and_probes_of_different_lengths(bv: int) -> None:
    A, _ = known_spectrum([30.0, 20.0, 10.0], 120, seed=3, rest=1.0)
    top = lanczos(LambdaOperator(A), 2, tol=1e-12, max_iter=60, seed=0, return_vectors=True)
    for probe, deflate in (("rademacher", None), ("gaussian", top)):
        a = spectral_density(LambdaOperator(A), num_probes=5, num_steps=12, probe=probe, seed=1, deflate=deflate)
        b = spectral_density(LambdaOperator(A), num_probes=5, num_steps=12, probe=probe, seed=1, deflate=deflate,
                             batch_vectors=bv)
        _same_density(a, b)
    # eigenvalues 1 (on e0+e1 and e2..e5) and 5 (on e0−e1): a probe with z0 = z1 spans an invariant subspace in one
    # step, one with z0 ≠ z1 in two -- the early runs must drop out of the lockstep without disturbing the others
    u = torch.zeros(6, dtype=torch.float64)
    u[0], u[1] = 2**-0.5, -(2**-0.5)
    B = torch.eye(6, dtype=torch.float64) + 4.0 * torch.outer(u, u)
    a = spectral_density(LambdaOperator(B), num_probes=8, num_steps=5, seed=0)
    b = spectral_density(LambdaOperator(B), num_probes=8, num_steps=5, seed=0, batch_vectors=bv)
    assert set(a.steps) == {1, 2}
    _same_density(a, b)
    with pytest.raises(ValueError, match="batch_vectors"):
        spectral_density(LambdaOperator(B), batch_vectors=0)


def test_slq_and_hutchinson_in_lockstep_on_a_float64_bert(tiny_model: torch.nn.Module) -> None:
    model = tiny_model.double()
    data = synthetic_batches(2, 3, max_len=8, seed=12)
    names = parameter_groups(model)["high"] + parameter_groups(model)["head"]
    with HessianOperator(model, data, names, reuse_graph="auto") as op:
        a = spectral_density(op, num_probes=3, num_steps=5, seed=2)
        b = spectral_density(op, num_probes=3, num_steps=5, seed=2, batch_vectors=2)
        _same_density(a, b)
        ta, tb = (hutchinson_trace(op, 4, seed=5, batch_vectors=bv) for bv in (1, 4))
        assert tb.estimate == pytest.approx(ta.estimate, rel=1e-11) and tb.num_matvecs == ta.num_matvecs == 4
        assert op.batched and op.graph_builds == 2


def test_the_bench_measures_batched_against_looped_products(tiny_model: torch.nn.Module) -> None:
    from repro.bench.hvp import batched_products_comparison

    model = tiny_model.double()
    data = synthetic_batches(1, 3, max_len=8, seed=13)
    r = batched_products_comparison(model, data, None, ks=(1, 3), repeats=1, seed=0)
    assert r["batched_available"] and r["batched_fallback"] is None and r["ks"] == [1, 3]
    assert r["max_rel_difference"] < 1e-12 and r["dtype"] == "float64" and r["threads"] >= 1
    for k, v in r["per_k"].items():
        assert v["products_counted"] == v["products_expected"] == 2 * int(k)
        assert set(v["seconds_per_product"]) == {"looped", "batched"}
        assert all(s > 0 for s in v["seconds_per_product"].values()) and v["speedup_batched_over_looped"] > 0
