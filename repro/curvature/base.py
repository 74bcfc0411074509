"""What every curvature operator shares: the :class:`Operator` interface and the helpers the Hessian, GGN and Fisher
operators use to pick their parameters (:func:`select_params`), hold the others fixed (:class:`FrozenOthers`) and
weight batches by example count (:func:`count_examples`).

This module imports nothing else from :mod:`repro.curvature` (the SciPy view is imported lazily by
:meth:`Operator.as_linear_operator`, and :mod:`repro.curvature.interop` imports nothing from the package), so the
package's modules form no import cycle (``tests/test_layout.py`` checks it).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from repro.errors import NonFiniteError
from repro.landscape.evaluate import Batch
from repro.landscape.params import ParamVector, model_params


class Operator(ABC):
    """A symmetric linear map on flat vectors of length ``size``; counts its matvecs.

    Also a context manager: ``with op: ...`` calls :meth:`close` at the end, which releases whatever the operator
    keeps between products (kept autograd graphs; nothing for most operators)."""

    size: int
    dtype: torch.dtype
    device: torch.device

    def __init__(self) -> None:
        self.num_matvecs = 0

    @abstractmethod
    def _matvec(self, v: Tensor) -> Tensor: ...

    def close(self) -> None:
        """Release what the operator keeps between products (nothing here); it stays usable (a later product
        rebuilds what it needs)."""

    def __enter__(self) -> Operator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def as_linear_operator(self):  # noqa: ANN201 (scipy.sparse.linalg.LinearOperator, imported lazily)
        """This operator as a SciPy ``LinearOperator`` (:func:`repro.curvature.interop.as_linear_operator`)."""
        from repro.curvature.interop import as_linear_operator

        return as_linear_operator(self)

    def matvec(self, v: Tensor) -> Tensor:
        """H v on the operator's device and dtype (``v`` is moved there if needed); NaN/Inf raise
        :class:`NonFiniteError`."""
        if v.shape != (self.size,):
            raise ValueError(f"expected a vector of shape ({self.size},), got {tuple(v.shape)}")
        self.num_matvecs += 1
        out = self._matvec(v.to(device=self.device, dtype=self.dtype))
        # one reduction (NaN/Inf propagate through a sum); the elementwise check only if the sum is not finite, so a
        # finite product whose sum overflows is not refused
        if not math.isfinite(float(out.sum())) and not bool(torch.isfinite(out).all()):
            raise NonFiniteError(
                f"{type(self).__name__}: a matrix-vector product has NaN/Inf entries (product #{self.num_matvecs}); "
                "the loss or its curvature is not finite at this point (a diverged run?) -- record the point as "
                "failed rather than its curvature"
            )
        return out

    def _matmat(self, V: Tensor) -> Tensor:
        """H Vᵀ row by row (operators with a batched product override this)."""
        return torch.stack([self._matvec(V[i]) for i in range(V.shape[0])])

    def matmat(self, V: Tensor) -> Tensor:
        """The products of the k rows of ``V`` (shape ``(k, size)``) at once: row i of the result is H V[i], counted
        as k matvecs (a batched product does the work of k products, whatever it costs). The base operator loops
        over :meth:`matvec`'s product; :class:`~repro.curvature.operators.HessianOperator` serves the k rows from
        one pass over each batch. NaN/Inf raise :class:`NonFiniteError` as in :meth:`matvec`."""
        if V.ndim != 2 or V.shape[1] != self.size:
            raise ValueError(f"expected vectors of shape (k, {self.size}), got {tuple(V.shape)}")
        k = int(V.shape[0])
        first = self.num_matvecs + 1
        self.num_matvecs += k
        out = self._matmat(V.to(device=self.device, dtype=self.dtype))
        if not math.isfinite(float(out.sum())) and not bool(torch.isfinite(out).all()):
            raise NonFiniteError(
                f"{type(self).__name__}: a matrix-vector product has NaN/Inf entries (products #{first}-"
                f"#{self.num_matvecs}, batched); the loss or its curvature is not finite at this point (a diverged "
                "run?) -- record the point as failed rather than its curvature"
            )
        return out


def select_params(model: nn.Module, names: Iterable[str] | None) -> ParamVector:
    """The live parameters ``names`` of ``model`` (all when None), in model order."""
    return model_params(model, names)


class FrozenOthers:
    """Context: only the selected parameters require grad (others are constants, and cheaper)."""

    def __init__(self, model: nn.Module, keep: set[str]) -> None:
        self.model, self.keep = model, keep
        self.saved: list[tuple[Tensor, bool]] = []

    def __enter__(self) -> None:
        for n, p in self.model.named_parameters():
            self.saved.append((p, p.requires_grad))
            p.requires_grad_(n in self.keep)

    def __exit__(self, *exc: object) -> None:
        for p, r in self.saved:
            p.requires_grad_(r)


def count_examples(batches: Sequence[Batch]) -> int:
    """The number of examples in ``batches`` (the weight of the example-weighted mean); none is an error."""
    n = sum(int(b["labels"].shape[0]) for b in batches)
    if n == 0:
        raise ValueError("no examples")
    return n
