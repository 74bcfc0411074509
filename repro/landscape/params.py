"""Flat views over a model's parameters, and vector arithmetic on them without copying the model.

A point or a direction in parameter space is a :class:`ParamVector`: parameter names and one tensor per name, in a
fixed order. All arithmetic goes through ``torch._foreach_*`` so that an update of a 100M-parameter model is a
handful of fused kernels instead of hundreds of small ones, and nothing is concatenated into one giant flat tensor
(which would double peak memory on a GPU). Dot products and norms are accumulated in float64: cosines and
projections of nearly parallel high-dimensional vectors lose all their digits in float32.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ParamVector:
    """Tensors keyed by parameter name; the tuple order is the model's ``named_parameters`` order."""

    names: tuple[str, ...]
    tensors: tuple[Tensor, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.tensors):
            raise ValueError("ParamVector: names and tensors differ in length")

    # -- construction -------------------------------------------------------------------------------------------
    @staticmethod
    def from_dict(d: Mapping[str, Tensor]) -> ParamVector:
        return ParamVector(tuple(d), tuple(d.values()))

    def as_dict(self) -> dict[str, Tensor]:
        return dict(zip(self.names, self.tensors, strict=True))

    def clone(self) -> ParamVector:
        return ParamVector(self.names, tuple(t.detach().clone() for t in self.tensors))

    def zeros_like(self) -> ParamVector:
        return ParamVector(self.names, tuple(torch.zeros_like(t) for t in self.tensors))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> ParamVector:
        return ParamVector(self.names, tuple(t.to(device=device, dtype=dtype) for t in self.tensors))

    # -- shape ---------------------------------------------------------------------------------------------------
    def numel(self) -> int:
        return sum(t.numel() for t in self.tensors)

    def __len__(self) -> int:
        return len(self.names)

    def _check(self, other: ParamVector) -> None:
        if self.names != other.names:
            raise ValueError("ParamVectors over different parameter names; restrict or align them first")

    # -- arithmetic (new vectors) ----------------------------------------------------------------------------------
    def __add__(self, other: ParamVector) -> ParamVector:
        self._check(other)
        return ParamVector(self.names, tuple(torch._foreach_add(list(self.tensors), list(other.tensors))))

    def __sub__(self, other: ParamVector) -> ParamVector:
        self._check(other)
        return ParamVector(self.names, tuple(torch._foreach_sub(list(self.tensors), list(other.tensors))))

    def __mul__(self, c: float) -> ParamVector:
        return ParamVector(self.names, tuple(torch._foreach_mul(list(self.tensors), float(c))))

    __rmul__ = __mul__

    def __neg__(self) -> ParamVector:
        return self * -1.0

    # -- in place ------------------------------------------------------------------------------------------------
    def axpy_(self, alpha: float, other: ParamVector) -> ParamVector:
        """self += alpha * other, in place."""
        self._check(other)
        torch._foreach_add_(list(self.tensors), list(other.tensors), alpha=float(alpha))
        return self

    def scale_(self, c: float) -> ParamVector:
        torch._foreach_mul_(list(self.tensors), float(c))
        return self

    # -- reductions (float64) --------------------------------------------------------------------------------------
    def dot(self, other: ParamVector) -> float:
        self._check(other)
        total = torch.zeros((), dtype=torch.float64)
        for a, b in zip(self.tensors, other.tensors, strict=True):
            # ``other`` may live elsewhere (a snapshot read to the host, the model on a GPU): meet on self's device
            total += torch.dot(a.reshape(-1).double(), b.reshape(-1).to(device=a.device).double()).cpu()
        return float(total)

    def norm(self) -> float:
        if not self.tensors:
            return 0.0
        norms = torch._foreach_norm([t.double() for t in self.tensors])
        return float(torch.linalg.vector_norm(torch.stack([n.cpu() for n in norms])))

    def cosine(self, other: ParamVector) -> float:
        na, nb = self.norm(), other.norm()
        return self.dot(other) / (na * nb) if na > 0 and nb > 0 else 0.0

    # -- views ---------------------------------------------------------------------------------------------------
    def restrict(self, names: Iterable[str]) -> ParamVector:
        """Same names, zero outside ``names``: a direction restricted to a parameter group (paper §7)."""
        keep = set(names)
        return ParamVector(
            self.names, tuple(t if n in keep else torch.zeros_like(t) for n, t in zip(self.names, self.tensors))
        )

    def select(self, names: Sequence[str]) -> ParamVector:
        """Only ``names`` (in that order): a smaller vector over a sub-space."""
        d = self.as_dict()
        return ParamVector(tuple(names), tuple(d[n] for n in names))

    def flatten(self) -> Tensor:
        return torch.cat([t.reshape(-1) for t in self.tensors]) if self.tensors else torch.zeros(0)

    def unflatten(self, flat: Tensor) -> ParamVector:
        """A vector shaped like this one from a flat tensor (e.g. a Lanczos eigenvector)."""
        out, i = [], 0
        for t in self.tensors:
            out.append(flat[i : i + t.numel()].view_as(t).to(t.dtype))
            i += t.numel()
        if i != flat.numel():
            raise ValueError(f"flat tensor has {flat.numel()} entries, expected {i}")
        return ParamVector(self.names, tuple(out))


def param_names(model: nn.Module, names: Iterable[str] | None = None) -> tuple[str, ...]:
    """Model parameter names in model order, optionally filtered to ``names`` (unknown names are an error)."""
    all_names = [n for n, _ in model.named_parameters()]
    if names is None:
        return tuple(all_names)
    wanted = set(names)
    unknown = wanted - set(all_names)
    if unknown:
        raise KeyError(f"unknown parameter name(s): {sorted(unknown)[:5]}")
    return tuple(n for n in all_names if n in wanted)


def model_params(model: nn.Module, names: Iterable[str] | None = None) -> ParamVector:
    """The live parameter tensors themselves (no copy): writing into them changes the model."""
    sel = param_names(model, names)
    d = dict(model.named_parameters())
    return ParamVector(sel, tuple(d[n] for n in sel))


def get_params(model: nn.Module, names: Iterable[str] | None = None) -> ParamVector:
    """A detached copy of the model's parameters (all, or the given names)."""
    return model_params(model, names).clone()


@torch.no_grad()
def set_params(model: nn.Module, base: ParamVector, terms: Sequence[tuple[float, ParamVector]] = ()) -> None:
    """Write ``base + Σ coef·dir`` into the model in place (only ``base.names`` are touched).

    Always starts from ``base``, never from the current parameters, so evaluating many grid points cannot drift
    from accumulated rounding of in-place steps.
    """
    params = dict(model.named_parameters())
    missing = [n for n in base.names if n not in params]
    if missing:
        raise KeyError(f"unknown parameter name(s): {missing[:5]}")
    live = [params[n] for n in base.names]  # by name: ``base`` may come from a file in another order
    torch._foreach_copy_(live, [b.to(device=t.device, dtype=t.dtype) for b, t in zip(base.tensors, live)])
    for coef, d in terms:
        if coef == 0.0:
            continue
        base._check(d)
        src = [x.to(device=t.device, dtype=t.dtype) for x, t in zip(d.tensors, live)]
        torch._foreach_add_(live, src, alpha=float(coef))
