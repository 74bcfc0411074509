"""The SciPy view of an operator (issue 19): ARPACK's eigsh on the view gives numpy's eigvalsh of the dense matrix;
shapes, dtypes and the matvec count are those of the operator."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from classifier_fixture import CountingClassifier, batches, ce_loss
from dense_oracles import dense_hessian
from spectra import known_spectrum
from repro.curvature import HessianOperator, LambdaOperator, as_linear_operator


def test_eigsh_on_the_view_is_eigvalsh_of_the_matrix() -> None:
    A, lam = known_spectrum([9.0, 6.0, -7.0, 4.0], 50, seed=1, rest=1.0)
    op = LambdaOperator(A)
    view = as_linear_operator(op)
    assert view.shape == (50, 50) and view.dtype == np.float64
    vals = spla.eigsh(view, k=4, which="LM", tol=1e-12, return_eigenvectors=False,
                      v0=np.ones(50))
    ref = np.linalg.eigvalsh(A.numpy())
    np.testing.assert_allclose(np.sort(vals), np.sort(ref[np.argsort(-np.abs(ref))][:4]), rtol=1e-10)
    assert op.num_matvecs > 0  # every product went through the operator (and is counted there)


def test_view_shapes_dtypes_and_blocks() -> None:
    g = torch.Generator().manual_seed(0)
    M = torch.randn(6, 6, generator=g)
    A32 = (M + M.T).float()
    view = LambdaOperator(A32).as_linear_operator()
    assert view.dtype == np.float32
    x = np.arange(6, dtype=np.float64)
    y = view.matvec(x)
    assert isinstance(y, np.ndarray) and y.shape == (6,) and y.dtype == np.float32
    np.testing.assert_allclose(y, A32.numpy() @ x.astype(np.float32), rtol=1e-5)
    assert view.matvec(x.reshape(6, 1)).shape == (6, 1)
    X = np.random.default_rng(0).standard_normal((6, 3))
    np.testing.assert_allclose(view.matmat(X), A32.numpy().astype(np.float64) @ X, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(view.rmatvec(x), y)  # symmetric
    ro = x.copy()
    ro.setflags(write=False)
    np.testing.assert_allclose(view.matvec(ro), y)  # read-only input is fine (warnings are errors here)


def test_view_of_a_hessian_operator_matches_the_dense_hessian() -> None:
    model, data = CountingClassifier(seed=1).eval(), batches([4, 3], seed=5)
    H = dense_hessian(model, data).numpy()
    view = as_linear_operator(HessianOperator(model, data, loss_fn=ce_loss))
    top = spla.eigsh(view, k=3, which="LA", tol=1e-12, return_eigenvectors=False, v0=np.ones(H.shape[0]))
    np.testing.assert_allclose(np.sort(top), np.linalg.eigvalsh(H)[-3:], rtol=1e-8, atol=1e-12)


def test_view_refuses_what_is_not_an_operator() -> None:
    with pytest.raises(TypeError, match="wrap a matrix or function in LambdaOperator"):
        as_linear_operator(np.eye(3))  # type: ignore[arg-type]
