"""A SciPy view of every operator: ``as_linear_operator(op)`` is a :class:`scipy.sparse.linalg.LinearOperator`, so
SciPy's solvers (``eigsh``, ``lobpcg``, ``cg``, ``minres``) run on a Hessian, GGN or Fisher operator as they would on
a matrix -- the export curvlinops offers, for comparing our solvers against ARPACK or using ones we do not have.

NumPy in, NumPy out: SciPy hands 1-D (n,) or column (n, 1) arrays to ``matvec`` and (n, k) arrays to ``matmat``;
each column becomes one counted :meth:`Operator.matvec` on the operator's device and dtype, and comes back as a
host array of the operator's dtype, in the input's shape. The view is symmetric (``rmatvec`` is ``matvec``).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

# What the view reads of an operator. Checked by attribute rather than by isinstance(op, Operator): this module
# imports nothing from repro.curvature, so Operator.as_linear_operator (which imports this module lazily) closes no
# import cycle.
_OPERATOR_ATTRIBUTES = ("matvec", "size", "dtype", "device", "num_matvecs")


class _OperatorView(LinearOperator):
    def __init__(self, op) -> None:  # noqa: ANN001 (a repro.curvature Operator)
        self.op = op
        super().__init__(dtype=torch.empty((), dtype=op.dtype).numpy().dtype, shape=(op.size, op.size))

    def _apply(self, x: np.ndarray) -> np.ndarray:
        # torch.tensor copies: SciPy may pass read-only or strided arrays, which from_numpy would share or refuse
        v = torch.tensor(np.ascontiguousarray(x).reshape(-1), dtype=self.op.dtype, device=self.op.device)
        return self.op.matvec(v).detach().cpu().numpy()

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._apply(x).reshape(np.shape(x))

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)  # symmetric

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return np.stack([self._apply(X[:, i]) for i in range(X.shape[1])], axis=1)

    def _adjoint(self) -> LinearOperator:
        return self


def as_linear_operator(op) -> LinearOperator:  # noqa: ANN001 (a repro.curvature Operator)
    """``op`` as a SciPy ``LinearOperator`` of shape (size, size) and the operator's dtype (see the module doc);
    products are counted on ``op.num_matvecs``."""
    if isinstance(op, type) or not all(hasattr(op, a) for a in _OPERATOR_ATTRIBUTES):
        raise TypeError(f"as_linear_operator needs a repro Operator, got {type(op).__name__}; wrap a matrix or "
                        "function in LambdaOperator first")
    return _OperatorView(op)
