from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.landscape import (
    ONE_DIM_POLICY,
    ParamVector,
    cross_task_direction,
    filter_normalized_direction,
    get_params,
    optimization_direction,
    orthogonalize,
    restrict_direction,
    set_params,
)


def _theta(rows: int, cols: int, seed: int, zero_rows: int = 0) -> ParamVector:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g)
    w[:zero_rows] = 0
    emb = torch.randn(rows + 3, cols, generator=g)
    conv = torch.randn(rows, 2, 3, generator=g)
    return ParamVector(("w", "b", "ln.weight", "emb", "conv"),
                       (w, torch.randn(rows, generator=g), torch.ones(cols), emb, conv))


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 5), seed=st.integers(0, 10_000),
       zero_rows=st.integers(0, 2))
def test_filter_normalized_rows_have_reference_norms(rows: int, cols: int, seed: int, zero_rows: int) -> None:
    theta = _theta(rows, cols, seed, min(zero_rows, rows))
    d = filter_normalized_direction(theta, seed=seed + 1)
    assert d.info.one_dim_policy == ONE_DIM_POLICY["random"] == "zero"
    for n, w, v in zip(theta.names, theta.tensors, d.vector.tensors):
        assert torch.isfinite(v).all()
        if w.ndim <= 1:
            assert (v == 0).all(), n  # Li et al. ignore='biasbn'
            continue
        wn = w.reshape(w.shape[0], -1).norm(dim=1)
        vn = v.reshape(v.shape[0], -1).norm(dim=1)
        torch.testing.assert_close(vn, wn, rtol=1e-5, atol=1e-6)


def test_filter_normalized_is_seeded_and_leaves_global_rng() -> None:
    theta = _theta(4, 3, 0)
    state = torch.random.get_rng_state()
    a = filter_normalized_direction(theta, seed=7).vector
    b = filter_normalized_direction(theta, seed=7).vector
    c = filter_normalized_direction(theta, seed=8).vector
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.dot(b) == pytest.approx(a.norm() ** 2)
    assert abs(a.cosine(c)) < 0.99


def test_copy_mode_and_restriction() -> None:
    theta = _theta(3, 3, 1)
    d = filter_normalized_direction(theta, seed=1, one_dim="copy", names=["w", "b"])
    dd = d.vector.as_dict()
    assert torch.equal(dd["b"], theta.as_dict()["b"])
    assert (dd["emb"] == 0).all() and (dd["ln.weight"] == 0).all()
    r = restrict_direction(filter_normalized_direction(theta, seed=1), ["emb"], group="embeddings")
    assert r.info.group == "embeddings"
    assert all((t == 0).all() for n, t in zip(r.vector.names, r.vector.tensors) if n != "emb")


def test_optimization_and_cross_task_with_mismatched_head() -> None:
    theta0 = _theta(3, 2, 0)
    theta1 = theta0 + _theta(3, 2, 1) * 0.1
    d1 = optimization_direction(theta0, theta1)
    assert d1.info.norm == pytest.approx((theta1 - theta0).norm())
    other = dict((theta0 + _theta(3, 2, 2) * 0.3).as_dict())
    other["w"] = torch.zeros(5, 2)  # different head shape (e.g. 3 MNLI labels)
    d2 = cross_task_direction(theta0, ParamVector.from_dict(other), d1.vector)
    assert d2.info.excluded_params == ("w",)
    assert (d2.vector.as_dict()["w"] == 0).all()
    assert d2.vector.norm() == pytest.approx(d1.vector.norm(), rel=1e-6)
    o = orthogonalize(d1, d2)
    assert abs(o.vector.cosine(d1.vector)) < 1e-6
    assert o.vector.norm() == pytest.approx(d2.vector.norm(), rel=1e-6)


def test_set_params_writes_base_plus_combination(tiny_model: torch.nn.Module) -> None:
    base = get_params(tiny_model)
    d1 = filter_normalized_direction(base, seed=1).vector
    d2 = filter_normalized_direction(base, seed=2).vector
    set_params(tiny_model, base, [(0.5, d1), (-2.0, d2)])
    now = get_params(tiny_model)
    expected = base.clone().axpy_(0.5, d1).axpy_(-2.0, d2)
    assert (now - expected).norm() <= 1e-6 * expected.norm()
    set_params(tiny_model, base)
    assert (get_params(tiny_model) - base).norm() == 0.0


def test_paramvector_arithmetic() -> None:
    a, b = _theta(3, 2, 0), _theta(3, 2, 1)
    assert (a + b - b - a).norm() == pytest.approx(0.0, abs=1e-6)
    assert a.dot(a) == pytest.approx(a.norm() ** 2)
    assert (2.0 * a).norm() == pytest.approx(2 * a.norm())
    flat = a.flatten()
    assert (a.unflatten(flat) - a).norm() == 0.0
    assert math.isclose(a.select(["w"]).norm(), float(a.as_dict()["w"].norm()), rel_tol=1e-6)


def test_filter_normalize_rescales_rows_to_theta_and_zeroes_the_rest() -> None:
    """Rows of ≥2-D tensors in ``names`` get the norm of θ's matching row; 1-D tensors and other names are zero."""
    import torch

    from repro.landscape import ParamVector, filter_normalize

    theta = ParamVector(("w", "b", "v"), (torch.tensor([[3.0, 4.0], [0.0, 2.0]]), torch.tensor([1.0, 1.0]),
                                          torch.tensor([[1.0, 0.0]])))
    vec = ParamVector(("w", "b", "v"), (torch.tensor([[1.0, 0.0], [0.0, -0.5]]), torch.tensor([2.0, 2.0]),
                                        torch.tensor([[7.0, 7.0]])))
    out = filter_normalize(vec, theta, names=["w", "b"])
    assert torch.allclose(out.tensors[0], torch.tensor([[5.0, 0.0], [0.0, -2.0]]))  # row norms 5 and 2, signs kept
    assert torch.equal(out.tensors[1], torch.zeros(2)) and torch.equal(out.tensors[2], torch.zeros(1, 2))
    assert torch.equal(vec.tensors[0], torch.tensor([[1.0, 0.0], [0.0, -0.5]]))  # input untouched
