"""Per-layer views of fine-tuning (paper §7): how far each group moved, and what rolling it back costs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from repro.landscape.evaluate import Batch, LossFn, classification_loss, evaluate, temporarily_set
from repro.landscape.params import ParamVector


def relative_change(theta0: ParamVector, theta1: ParamVector, groups: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """‖θ1 − θ0‖ / ‖θ0‖ restricted to each group (groups with ‖θ0‖ = 0 give inf if they moved, else 0)."""
    out = {}
    for g, names in groups.items():
        sel = [n for n in theta0.names if n in set(names)]
        if not sel:
            continue
        a, b = theta0.select(sel), theta1.select(sel)
        d, n0 = (b - a).norm(), a.norm()
        out[g] = d / n0 if n0 > 0 else (float("inf") if d > 0 else 0.0)
    return out


@dataclass(frozen=True)
class RollbackResult:
    group: str
    loss_theta1: float
    loss_rolled_back: float
    accuracy_theta1: float
    accuracy_rolled_back: float

    @property
    def loss_increase(self) -> float:
        return self.loss_rolled_back - self.loss_theta1


def rollback_loss(model: nn.Module, theta0: ParamVector, theta1: ParamVector, group_names: Sequence[str],
                  batches: Sequence[Batch], *, group: str = "", loss_fn: LossFn = classification_loss) -> RollbackResult:
    """Loss at θ1 and at θ1 with the group's parameters put back to θ0 (the model is restored afterwards): the swap
    of :func:`swap_group` with θ0 as the other point."""
    at1, rb = _at_theta1_and(model, theta1, swap_group(theta1, theta0, group_names), batches, loss_fn)
    return RollbackResult(group, at1.loss, rb.loss, at1.accuracy, rb.accuracy)


def _at_theta1_and(model: nn.Module, theta1: ParamVector, changed: ParamVector, batches: Sequence[Batch],
                   loss_fn: LossFn):  # noqa: ANN202
    """(evaluation at θ1, evaluation at ``changed``), the model restored afterwards."""
    with temporarily_set(model, theta1, []):
        at1 = evaluate(model, batches, loss_fn)
    with temporarily_set(model, changed, []):
        return at1, evaluate(model, batches, loss_fn)


@dataclass(frozen=True)
class LayerSwapResult:
    """Loss and accuracy at θ1 and at θ1 with one group's parameters replaced by another run's (claims §7
    ``layer_swap_cost``: the partner task's fine-tuned θ1′)."""

    group: str
    loss_theta1: float
    loss_swapped: float
    acc_theta1: float
    acc_swapped: float

    @property
    def loss_increase(self) -> float:
        return self.loss_swapped - self.loss_theta1


def swap_group(theta1: ParamVector, other: ParamVector, group_names: Sequence[str]) -> ParamVector:
    """θ1 with the parameters ``group_names`` taken from ``other`` (the same tensors of θ1 elsewhere, no copy).

    ``other`` may have a different head (another task's label count): only the group's names are read from it, and
    each must exist there with θ1's shape -- a swap of tensors of another shape is refused rather than broadcast."""
    keep = set(group_names)
    unknown = keep - set(theta1.names)
    if unknown:
        raise KeyError(f"unknown parameter name(s) in the group: {sorted(unknown)[:5]}")
    src = other.as_dict()
    out = []
    for n, t in zip(theta1.names, theta1.tensors):
        if n not in keep:
            out.append(t)
            continue
        if n not in src:
            raise KeyError(f"{n} is not a parameter of the other run")
        if src[n].shape != t.shape:
            raise ValueError(f"{n}: shape {tuple(src[n].shape)} in the other run, {tuple(t.shape)} here")
        out.append(src[n].to(device=t.device, dtype=t.dtype))
    return ParamVector(theta1.names, tuple(out))


def layer_swap_loss(model: nn.Module, theta1: ParamVector, other: ParamVector, group_names: Sequence[str],
                    batches: Sequence[Batch], *, group: str = "",
                    loss_fn: LossFn = classification_loss) -> LayerSwapResult:
    """Loss at θ1 and at θ1 with the group replaced by ``other``'s (:func:`swap_group`) on ``batches``; the model is
    restored afterwards. Why: rollback to θ0 (:func:`rollback_loss`) asks whether a group's *change* mattered; the
    swap asks whether a group fine-tuned on another task serves this one (paper §7's transferability, registered as
    REGISTRATION_V3 §6)."""
    at1, sw = _at_theta1_and(model, theta1, swap_group(theta1, other, group_names), batches, loss_fn)
    return LayerSwapResult(group, at1.loss, sw.loss, at1.accuracy, sw.accuracy)
