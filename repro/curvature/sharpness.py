"""ε-sharpness (Keskar et al. 2017): the largest loss increase in the box |δ_i| ≤ ε(|θ_i| + 1); and adaptive
sharpness (Andriushchenko et al. 2023): the largest increase over ‖δ ⊙ |θ|⁻¹‖_p ≤ ρ, p ∈ {2, ∞}.

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


@dataclass(frozen=True)
class AdaptiveSharpnessResult:
    """Worst-case adaptive sharpness max_{‖δ ⊙ c⁻¹‖_p ≤ ρ} L(θ+δ) − L(θ), c = |θ| + offset (Andriushchenko et al.
    2023), as the best of the points visited by projected gradient ascent: a lower bound of the maximum."""

    sharpness: float  # max_loss − base_loss (the paper's raw difference, not Keskar's normalised percentage)
    base_loss: float
    max_loss: float
    rho: float
    p: float  # 2.0 or inf
    steps: int
    restarts: int
    step_size: float  # each step moves γ = δ/c by step_size·ρ
    num_gradients: int
    perturbation_norm: float  # ‖δ ⊙ c⁻¹‖_p at the maximising point (≤ ρ)
    offset: float
    seed: int
    param_group: str | None = None


def _pnorm(v: ParamVector, p: float) -> float:
    if p == 2.0:
        return v.norm()
    return max((float(t.abs().max()) for t in v.tensors if t.numel()), default=0.0)


def adaptive_sharpness(
    model: nn.Module,
    batches: Sequence[Batch],
    *,
    rho: float = 0.05,
    p: float = 2.0,
    steps: int = 20,
    restarts: int = 1,
    step_size: float = 0.5,
    names: Iterable[str] | None = None,
    seed: int = 0,
    loss_fn: LossFn = classification_loss,
    offset: float = 0.0,
    param_group: str | None = None,
) -> AdaptiveSharpnessResult:
    """Adaptive sharpness of the mean loss over ``batches`` w.r.t. ``names`` (default all), p ∈ {2, ∞}.

    Andriushchenko et al. (2023, "A modern look at the relationship between sharpness and generalization") scale
    the perturbation elementwise by c = |θ|: δ = c ⊙ γ with ‖γ‖_p ≤ ρ, which makes the measure invariant to the
    rescalings of weights that leave a ReLU/LayerNorm network's function unchanged (a plain ‖δ‖ ≤ ρ ball is not).
    Parameters equal to zero are not perturbed (``offset > 0`` adds a floor to c, as ASAM's η). The worst case is
    searched by projected gradient ascent on γ, whose gradient is c ⊙ ∇L: each step moves γ by ``step_size·ρ``
    along the normalised gradient (p = 2, then projection onto the ρ-ball) or its sign (p = ∞, then clipping to
    the box), from a seeded random start at radius ρ/2 (p = 2) or uniform in the box (p = ∞); ``restarts`` random
    starts. The maximum over every visited point is reported (a lower bound of the true maximum).
    Cost: 1 + restarts·(steps + 1) gradients. The model's parameters are restored afterwards.
    """
    p = float(p)
    if p not in (2.0, float("inf")):
        raise ValueError(f"p must be 2 or float('inf'), got {p}")
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho}")
    if steps < 0 or restarts < 1:
        raise ValueError(f"need steps >= 0 and restarts >= 1, got steps={steps}, restarts={restarts}")
    theta = get_params(model, names)
    c = ParamVector(theta.names, tuple(t.abs() + offset for t in theta.tensors))
    movable = ParamVector(theta.names, tuple((t > 0).to(t.dtype) for t in c.tensors))
    g = torch.Generator().manual_seed(int(seed))
    try:
        base_loss, _ = loss_and_grad(model, batches, theta.names, loss_fn)
        max_loss, best_norm, n_grad = base_loss, 0.0, 1
        for _ in range(restarts):
            draw = (lambda t: torch.randn(t.shape, generator=g, dtype=torch.float64)) if p == 2.0 else \
                (lambda t: torch.rand(t.shape, generator=g, dtype=torch.float64) * 2 - 1)
            gamma = ParamVector(theta.names, tuple(draw(t).to(device=t.device, dtype=t.dtype) * m
                                                   for t, m in zip(theta.tensors, movable.tensors)))
            if p == 2.0:
                nrm = gamma.norm()
                gamma.scale_(0.5 * rho / nrm if nrm > 0 else 0.0)
            else:
                gamma.scale_(rho)
            for step in range(steps + 1):
                delta = ParamVector(theta.names, tuple(torch._foreach_mul(list(gamma.tensors), list(c.tensors))))
                set_params(model, theta, [(1.0, delta)])
                loss, grad = loss_and_grad(model, batches, theta.names, loss_fn)
                n_grad += 1
                if loss > max_loss:
                    max_loss, best_norm = loss, _pnorm(gamma, p)
                if step == steps:
                    break
                gg = ParamVector(theta.names, tuple(torch._foreach_mul(list(grad.tensors), list(c.tensors))))
                if p == 2.0:
                    gn = gg.norm()
                    if gn == 0.0:
                        break
                    gamma.axpy_(step_size * rho / gn, gg)
                    nrm = gamma.norm()
                    if nrm > rho:
                        gamma.scale_(rho / nrm)
                else:
                    for gm, gr in zip(gamma.tensors, gg.tensors):
                        gm.add_(step_size * rho * torch.sign(gr))
                        torch.clamp_(gm, -rho, rho)
    finally:
        set_params(model, theta)
    return AdaptiveSharpnessResult(max_loss - base_loss, base_loss, max_loss, float(rho), p, int(steps),
                                   int(restarts), float(step_size), n_grad, best_norm, float(offset), int(seed),
                                   param_group)
