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
    """Loss at θ1 and at θ1 with the group's parameters put back to θ0 (the model is restored afterwards)."""
    keep = set(group_names)
    mixed = ParamVector(theta1.names, tuple(t0 if n in keep else t1 for n, t0, t1 in
                                            zip(theta1.names, theta0.select(theta1.names).tensors, theta1.tensors)))
    with temporarily_set(model, theta1, []):
        at1 = evaluate(model, batches, loss_fn)
    with temporarily_set(model, mixed, []):
        rb = evaluate(model, batches, loss_fn)
    return RollbackResult(group, at1.loss, rb.loss, at1.accuracy, rb.accuracy)
