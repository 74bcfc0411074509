"""Directions in parameter space: optimisation, cross-task, filter-normalised random, PCA; and the 1-D policy.

Policy for biases and LayerNorm parameters (the paper is silent; we follow Li et al. 2018, ``ignore='biasbn'``):

* **random** (filter-normalised) directions are **zero** on every parameter with ``ndim <= 1`` -- biases,
  LayerNorm weights and biases. Li et al. zero bias and BatchNorm entries because a "filter" is not defined for them
  and scaling them like weights makes the plots depend on arbitrary parametrisation; LayerNorm plays BatchNorm's
  role in BERT.
* **optimization** (δ1 = θ1 − θ0), **cross_task** (δ2 = θ1′ − θ0) and **pca** directions are differences of real
  parameter vectors: they include **everything that changed**, 1-D parameters too. Restricting them would move the
  end point θ0 + δ1 away from θ1.

The policy is the constant :data:`ONE_DIM_POLICY` and travels with every direction's metadata.

Filter normalisation (Li et al. 2018, ``net_plotter.normalize_direction``): for every parameter tensor with
``ndim >= 2`` each "filter" -- row ``d[i]`` (an output unit of a Linear weight, a token of an embedding matrix) --
is rescaled to the norm of the matching row of θ. Rows where either norm is zero stay zero: the loss-landscapes
package divides by zero there (zero-initialised rows give NaN directions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from repro.landscape.params import ParamVector

ONE_DIM_POLICY: dict[str, str] = {
    "random": "zero",  # Li et al. 2018 ignore='biasbn': biases and LayerNorm parameters get no random component
    "optimization": "include",  # δ1 = θ1 − θ0 includes every parameter that changed
    "cross_task": "include",  # on the parameters θ1 and θ1' share
    "pca": "include",
}
POLICY_TEXT = (
    "1-D parameters (biases, LayerNorm): zero in filter-normalised random directions (Li et al. 2018, "
    "ignore='biasbn'); included in optimisation, cross-task and PCA directions (differences of real parameters)."
)


@dataclass(frozen=True)
class DirectionInfo:
    """What a direction is, for the result files: never a bare vector without provenance."""

    kind: str  # optimization | cross_task | random | pca | custom
    norm: float
    seed: int | None = None
    group: str | None = None  # parameter group it is restricted to, if any
    one_dim_policy: str = "include"
    rescaled_to: float | None = None  # cross-task: ‖δ1‖
    excluded_params: tuple[str, ...] = ()  # e.g. mismatched classifier head in cross-task directions
    note: str = ""


@dataclass(frozen=True)
class Direction:
    vector: ParamVector
    info: DirectionInfo


def optimization_direction(theta0: ParamVector, theta1: ParamVector) -> Direction:
    """δ1 = θ1 − θ0: the displacement of fine-tuning."""
    d = theta1 - theta0
    return Direction(d, DirectionInfo("optimization", d.norm(), one_dim_policy=ONE_DIM_POLICY["optimization"]))


def cross_task_direction(
    theta0: ParamVector, theta1_other: ParamVector, scale_to: ParamVector | float
) -> Direction:
    """δ2 = θ1′ − θ0 rescaled to ‖δ1‖ (``scale_to`` is δ1 or its norm).

    θ1′ comes from the same θ0 fine-tuned on another task. Parameters whose shapes differ (the classification head
    when the label counts differ, e.g. MNLI's 3 labels) or that θ1′ lacks get a zero entry and are listed in
    ``info.excluded_params``: δ2 is defined on the shared parameters only.
    """
    other = theta1_other.as_dict()
    tensors, excluded = [], []
    for n, t0 in zip(theta0.names, theta0.tensors):
        t1 = other.get(n)
        if t1 is None or t1.shape != t0.shape:
            excluded.append(n)
            tensors.append(torch.zeros_like(t0))
        else:
            tensors.append(t1.to(device=t0.device, dtype=t0.dtype) - t0)
    d = ParamVector(theta0.names, tuple(tensors))
    target = scale_to if isinstance(scale_to, float | int) else scale_to.norm()
    raw = d.norm()
    if raw > 0:
        d.scale_(float(target) / raw)
    note = f"defined on shared parameters; zero on {len(excluded)} mismatched/missing" if excluded else ""
    return Direction(
        d,
        DirectionInfo("cross_task", d.norm(), one_dim_policy=ONE_DIM_POLICY["cross_task"],
                      rescaled_to=float(target), excluded_params=tuple(excluded), note=note),
    )


def _filter_normalize_(d: Tensor, w: Tensor, eps: float = 1e-10) -> None:
    """Scale each row d[i] to ‖w[i]‖ in place; rows with ‖d[i]‖≈0 or ‖w[i]‖=0 become zero (no NaN)."""
    d2 = d.reshape(d.shape[0], -1)
    w2 = w.reshape(w.shape[0], -1).to(d.dtype)
    dn = torch.linalg.vector_norm(d2, dim=1)
    wn = torch.linalg.vector_norm(w2, dim=1)
    scale = torch.where(dn > eps, wn / dn.clamp_min(eps), torch.zeros_like(dn))
    d2.mul_(scale.unsqueeze(1))


def filter_normalized_direction(
    theta: ParamVector, seed: int, *, names: Iterable[str] | None = None, one_dim: str | None = None
) -> Direction:
    """A Gaussian direction, filter-normalised to θ (Li et al. 2018), drawn from a private generator.

    Drawn on the CPU in float32 from ``seed`` (so the same seed gives the same direction on any device) and moved
    to θ's device. ``names`` restricts it to a group; ``one_dim`` overrides :data:`ONE_DIM_POLICY` (``"zero"`` or
    ``"copy"`` -- Li et al.'s non-ignore mode, d = θ on 1-D parameters).
    """
    one_dim = one_dim or ONE_DIM_POLICY["random"]
    if one_dim not in ("zero", "copy"):
        raise ValueError("one_dim must be 'zero' or 'copy'")
    keep = set(theta.names if names is None else names)
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for n, w in zip(theta.names, theta.tensors):
        # draw for every tensor so a restriction does not change the other tensors' values
        r = torch.randn(w.shape, generator=g, dtype=torch.float32).to(device=w.device, dtype=w.dtype)
        if n not in keep:
            r.zero_()
        elif w.ndim <= 1:
            if one_dim == "zero":
                r.zero_()
            else:
                r.copy_(w)
        else:
            _filter_normalize_(r, w)
        out.append(r)
    d = ParamVector(theta.names, tuple(out))
    return Direction(d, DirectionInfo("random", d.norm(), seed=int(seed), one_dim_policy=one_dim))


def filter_normalize(vector: ParamVector, theta: ParamVector, names: Iterable[str] | None = None) -> ParamVector:
    """A copy of ``vector`` with every row of each ``ndim >= 2`` tensor in ``names`` (default all) rescaled to the
    norm of the matching row of ``theta`` (Li et al. 2018); 1-D tensors and tensors outside ``names`` are zero, as
    in :data:`ONE_DIM_POLICY` ``"random"``. Used to put a non-random direction (δ1 restricted to a layer group) on
    the random directions' scale."""
    keep = set(vector.names if names is None else names)
    out = []
    for n, d, w in zip(vector.names, vector.tensors, theta.select(vector.names).tensors):
        if n in keep and d.ndim >= 2:
            t = d.clone()
            _filter_normalize_(t, w)
        else:
            t = torch.zeros_like(d)
        out.append(t)
    return ParamVector(vector.names, tuple(out))


def restrict_direction(direction: Direction, names: Iterable[str], group: str | None = None) -> Direction:
    """The direction with zeros outside ``names`` (paper §7: δ restricted to low/middle/high layers)."""
    v = direction.vector.restrict(names)
    info = direction.info
    return Direction(v, DirectionInfo(info.kind, v.norm(), info.seed, group, info.one_dim_policy, info.rescaled_to,
                                      info.excluded_params, info.note))


def orthogonalize(d1: Direction, d2: Direction, *, keep_norm: bool = True) -> Direction:
    """Gram-Schmidt: d2 minus its component along d1; by default rescaled back to d2's norm."""
    a, b = d1.vector, d2.vector
    aa = a.dot(a)
    if aa == 0:
        return d2
    v = b.clone().axpy_(-b.dot(a) / aa, a)
    n = v.norm()
    if keep_norm and n > 0:
        v.scale_(b.norm() / n)
    info = d2.info
    return Direction(v, DirectionInfo(info.kind, v.norm(), info.seed, info.group, info.one_dim_policy,
                                      info.rescaled_to, info.excluded_params,
                                      (info.note + "; " if info.note else "") + "orthogonalised against d1"))


def pca_directions(
    snapshots: Sequence[ParamVector], center: ParamVector, k: int = 2, *, subtract_mean: bool = True
) -> list[Direction]:
    """Li et al.'s trajectory PCA: top-k principal directions of [θ_t − θ_end], unit norm, with explained
    variance ratio in the note. ``subtract_mean`` centres the rows as sklearn's PCA (used by Li et al.) does. Uses
    the small T×T Gram matrix, so memory is T vectors, not a d×d matrix."""
    diffs = [s - center for s in snapshots]
    if subtract_mean and diffs:
        mean = center.zeros_like()
        for d in diffs:
            mean.axpy_(1.0 / len(diffs), d)
        diffs = [d - mean for d in diffs]
    t = len(diffs)
    if t < k:
        raise ValueError(f"need at least {k} snapshots for {k} PCA directions")
    gram = torch.tensor([[diffs[i].dot(diffs[j]) for j in range(t)] for i in range(t)], dtype=torch.float64)
    evals, evecs = torch.linalg.eigh(gram)
    order = torch.argsort(evals, descending=True)
    total = float(evals.clamp_min(0).sum()) or 1.0
    out = []
    for j in order[:k].tolist():
        v = center.zeros_like()
        for i in range(t):
            v.axpy_(float(evecs[i, j]), diffs[i])
        n = v.norm()
        if n > 0:
            v.scale_(1.0 / n)
        out.append(Direction(v, DirectionInfo("pca", v.norm(), one_dim_policy=ONE_DIM_POLICY["pca"],
                                              note=f"explained variance ratio {float(evals[j]) / total:.4f}")))
    return out
