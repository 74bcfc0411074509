"""ε-sharpness (Keskar et al. 2017): the largest loss increase in the box |δ_i| ≤ ε(|θ_i| + 1).

Keskar et al. solve the inner maximisation with L-BFGS-B; we use projected (sign-)gradient ascent from a seeded
random start in the box, which needs only gradients and reaches the box's corners where the maximum of a
nearly-linear loss sits. Reported as Keskar's ``100·(max L(θ+δ) − L(θ)) / (1 + L(θ))``. The model's parameters
are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from repro.curvature.operators import loss_and_grad
from repro.landscape.evaluate import Batch, LossFn, classification_loss
from repro.landscape.params import ParamVector, get_params, set_params


@dataclass(frozen=True)
class SharpnessResult:
    sharpness: float  # 100·(max_loss − base_loss)/(1 + base_loss)
    base_loss: float
    max_loss: float
    epsilon: float
    steps: int
    num_gradients: int
    seed: int
    param_group: str | None = None


def epsilon_sharpness(
    model: nn.Module,
    batches: Sequence[Batch],
    *,
    epsilon: float = 1e-3,
    steps: int = 10,
    step_fraction: float = 0.5,
    names: Iterable[str] | None = None,
    seed: int = 0,
    loss_fn: LossFn = classification_loss,
    param_group: str | None = None,
    offset: float = 1.0,
) -> SharpnessResult:
    """Keskar's ε-sharpness of the mean loss over ``batches`` w.r.t. the parameters ``names`` (default all).

    Each step moves δ by ``step_fraction`` of the box half-width along sign(∇L) and clips to the box; the maximum
    over every visited point (the start included) is reported. The box is |δ_i| ≤ ε(|θ_i| + ``offset``): Keskar's
    ``offset = 1``, or ``offset = 0`` for a box relative to each weight (local when the weights are small).
    """
    theta = get_params(model, names)
    half = ParamVector(theta.names, tuple(epsilon * (t.abs() + offset) for t in theta.tensors))
    g = torch.Generator().manual_seed(int(seed))
    delta = ParamVector(theta.names, tuple(
        (torch.rand(t.shape, generator=g, dtype=torch.float64) * 2 - 1).to(device=t.device, dtype=t.dtype) * h
        for t, h in zip(theta.tensors, half.tensors)))
    try:
        base_loss, _ = loss_and_grad(model, batches, theta.names, loss_fn)
        max_loss = base_loss
        n_grad = 1
        for step in range(steps + 1):
            set_params(model, theta, [(1.0, delta)])
            loss, grad = loss_and_grad(model, batches, theta.names, loss_fn)
            n_grad += 1
            max_loss = max(max_loss, loss)
            if step == steps:
                break
            for d, gr, h in zip(delta.tensors, grad.tensors, half.tensors):
                d.add_(step_fraction * h * torch.sign(gr))
                torch.clamp_(d, -h, h)
    finally:
        set_params(model, theta)
    return SharpnessResult(100.0 * (max_loss - base_loss) / (1.0 + base_loss), base_loss, max_loss, float(epsilon),
                           int(steps), n_grad, int(seed), param_group)
