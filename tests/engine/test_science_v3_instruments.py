"""Science v3's new instruments (issue 36) against oracles: the scaled Hessian diag(|θ|)·H·diag(|θ|) against a dense
float64 Hessian and under a function-preserving rescaling, widths by bisection against functions with known
crossings, and the cross-task layer swap against parameters set by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from repro.curvature import HessianOperator, ScaledHessianOperator, lanczos
from repro.landscape import ParamVector, evaluate, get_params, set_params
from repro.metrics import BisectionWidth, bisection_width, layer_swap_loss, swap_group
from repro.models import parameter_groups
from tests.engine.classifier_fixture import batches as clf_batches
from tests.engine.classifier_fixture import ce_loss, CountingClassifier
from tests.engine.conftest import synthetic_batches
from tests.engine.dense_oracles import dense_hessian

# -- scaled Hessian ------------------------------------------------------------------------------------------------


def _abs_flat(model: nn.Module, names: list[str] | None = None) -> Tensor:
    return torch.cat([p.detach().abs().flatten() for n, p in model.named_parameters()
                      if names is None or n in names])


def test_scaled_hessian_products_and_top_eigenvalue_match_dense_d_h_d() -> None:
    """On a float64 tanh classifier: the operator's product equals D H D v with H formed explicitly by
    ``torch.autograd.functional.hessian`` and D = diag(|θ|); its Lanczos λ_max equals numpy's top eigenvalue of the
    dense D H D; the structured product agrees with the flat one; a parameter subset gives the block's D H D."""
    model = CountingClassifier(seed=3)
    data = clf_batches([5, 4], seed=1)
    H = dense_hessian(model, data)
    D = torch.diag(_abs_flat(model))
    DHD = (D @ H @ D).numpy()
    op = ScaledHessianOperator(HessianOperator(model, data, loss_fn=ce_loss))
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        v = torch.randn(op.size, generator=g, dtype=torch.float64)
        np.testing.assert_allclose(op.matvec(v).numpy(), DHD @ v.numpy(), rtol=1e-10, atol=1e-12)
        sv = op.hvp(op.hessian.params.unflatten(v)).flatten()
        np.testing.assert_allclose(sv.numpy(), DHD @ v.numpy(), rtol=1e-10, atol=1e-12)
    top = float(np.linalg.eigvalsh(DHD).max())
    assert top > 0
    eig = lanczos(op, 1, tol=1e-10, max_iter=op.size, seed=4)
    assert eig.converged and eig.eigenvalues[0] == pytest.approx(top, rel=1e-9)
    # the plain Hessian's top eigenvalue is another number: the scaling is not a no-op here
    assert float(np.linalg.eigvalsh(H.numpy()).max()) != pytest.approx(top, rel=1e-3)
    # a group: the block of the group's Hessian, scaled by the group's |θ|
    names = ["l1.weight", "l1.bias"]
    Hg = dense_hessian(model, data, names)
    Dg = torch.diag(_abs_flat(model, names))
    opg = ScaledHessianOperator(HessianOperator(model, data, names, loss_fn=ce_loss))
    v = torch.randn(opg.size, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(opg.matvec(v).numpy(), (Dg @ Hg @ Dg @ v).numpy(), rtol=1e-10, atol=1e-12)


def test_scaled_hessian_takes_its_scale_when_built_and_counts_one_product_per_product() -> None:
    """D is |θ| at construction (moving the weights later does not change it; an explicit scale is used as given
    and must be over the operator's names); each scaled product is one product of the wrapped operator."""
    model = CountingClassifier(seed=5)
    data = clf_batches([6], seed=2)
    hess = HessianOperator(model, data, loss_fn=ce_loss)
    op = ScaledHessianOperator(hess)
    before = op.scale.flatten().clone()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    assert torch.equal(op.scale.flatten(), before)
    ones = ParamVector(hess.params.names, tuple(torch.ones_like(t) for t in hess.params.tensors))
    plain = ScaledHessianOperator(hess, scale=ones)
    v = torch.randn(plain.size, dtype=torch.float64)
    n0 = hess.num_matvecs
    np.testing.assert_allclose(plain.matvec(v).numpy(), hess.matvec(v).numpy(), rtol=1e-12, atol=1e-14)
    assert hess.num_matvecs == n0 + 2 and plain.num_matvecs == 1
    with pytest.raises(ValueError, match="operator's parameters"):
        ScaledHessianOperator(hess, scale=ones.select(list(reversed(ones.names))))


class _ReluNet(nn.Module):
    """x ↦ W2 relu(W1 x), no biases: scaling W1 by c and W2 by 1/c leaves the function unchanged."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.l1 = nn.Linear(4, 5, bias=False, dtype=torch.float64)
        self.l2 = nn.Linear(5, 3, bias=False, dtype=torch.float64)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return self.l2(torch.relu(self.l1(x)))


def _relu_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, int]:
    logits = model(batch["x"])
    return F.cross_entropy(logits, batch["labels"], reduction="sum"), torch.zeros(()), int(batch["labels"].shape[0])


def test_scaled_lambda_max_is_invariant_to_a_function_preserving_rescaling_while_plain_lambda_max_is_not() -> None:
    """Dinh et al.'s reparametrisation: W1 → cW1, W2 → W2/c (c = 5) leaves every logit unchanged; plain λ_max
    changes (H → S⁻¹HS⁻¹), λ_max of diag(|θ|) H diag(|θ|) does not (|θ| → S|θ| cancels S⁻¹)."""
    data = clf_batches([8], seed=3)
    a, b = _ReluNet(seed=1), _ReluNet(seed=1)
    with torch.no_grad():
        b.l1.weight.mul_(5.0)
        b.l2.weight.div_(5.0)
    torch.testing.assert_close(a(data[0]["x"]), b(data[0]["x"]), rtol=1e-12, atol=1e-12)

    def lam(model: nn.Module, scaled: bool) -> float:
        h = HessianOperator(model, data, loss_fn=_relu_loss)
        op = ScaledHessianOperator(h) if scaled else h
        r = lanczos(op, 1, tol=1e-10, max_iter=op.size, seed=0)
        assert r.converged
        return r.eigenvalues[0]

    assert lam(b, scaled=True) == pytest.approx(lam(a, scaled=True), rel=1e-8)
    assert lam(b, scaled=False) > 2 * lam(a, scaled=False)
    # the oracle agrees: D H D of both parametrisations is the same matrix
    Da, Db = torch.diag(_abs_flat(a)), torch.diag(_abs_flat(b))
    torch.testing.assert_close(Da @ dense_hessian(a, data) @ Da, Db @ dense_hessian(b, data) @ Db,
                               rtol=1e-9, atol=1e-10)


# -- widths by bisection -------------------------------------------------------------------------------------------


def _counting(f):  # noqa: ANN001, ANN202
    calls: list[float] = []

    def g(t: float) -> float:
        calls.append(t)
        return f(t)

    return g, calls


def test_bisection_width_finds_the_known_crossings_of_a_quadratic_to_the_bracket_resolution() -> None:
    """L(t) = 2(t − 0.3)²: the level L(0) + 0.1 is crossed at 0.3 ± √(level/2); each side within
    radius/ladder/2^(steps+1) (the midpoint of a bracket of length radius/ladder/2^steps), not censored; each side
    costs the ladder points up to the first crossing plus ``steps`` halvings."""
    f = lambda t: 2.0 * (t - 0.3) ** 2  # noqa: E731
    level = f(0.0) + 0.1
    root = math.sqrt(level / 2.0)
    radius, ladder, steps = 2.0, 8, 8
    g, calls = _counting(f)
    w = bisection_width(g, level=level, radius=radius, ladder=ladder, steps=steps)
    tol = radius / ladder / 2**steps
    assert isinstance(w, BisectionWidth)
    assert w.right == pytest.approx(0.3 + root, abs=tol / 2)
    assert w.left == pytest.approx(root - 0.3, abs=tol / 2)
    assert w.width == w.left + w.right and not w.censored
    assert (w.censored_left, w.censored_right, w.level, w.radius) == (False, False, level, radius)
    # right: ladder 0.25, 0.5, 0.75 (crossed: 0.3 + 0.447 = 0.747 < 0.75); left: 0.25 (crossed: 0.147)
    assert w.evaluations == len(calls) == (3 + steps) + (1 + steps)
    assert calls[:3] == [0.25, 0.5, 0.75] and calls[3 + steps] == -0.25
    assert all(t > 0 for t in calls[: 3 + steps]) and all(t < 0 for t in calls[3 + steps:])
    # more steps, a finer answer; zero steps: the midpoint of the ladder bracket
    fine = bisection_width(f, level=level, radius=radius, ladder=ladder, steps=30)
    assert fine.right == pytest.approx(0.3 + root, abs=1e-8)
    coarse = bisection_width(f, level=level, radius=radius, ladder=ladder, steps=0)
    assert (coarse.right, coarse.left) == (0.625, 0.125)


def test_bisection_width_without_a_crossing_is_censored_at_the_radius() -> None:
    """A loss that stays below the level within the radius: each side is the radius, a lower bound, after the whole
    ladder; a side that crosses is not censored while the other is."""
    flat = bisection_width(lambda t: 0.0, level=0.1, radius=1.5, ladder=6, steps=8)
    assert (flat.left, flat.right, flat.width) == (1.5, 1.5, 3.0)
    assert flat.censored_left and flat.censored_right and flat.censored and flat.evaluations == 12
    one = bisection_width(lambda t: max(t, 0.0), level=0.5, radius=1.0, ladder=4, steps=10)
    assert one.censored_left and not one.censored_right and one.censored
    assert one.left == 1.0 and one.right == pytest.approx(0.5, abs=1 / 4 / 2**11)
    # the crossing at the radius itself is found (the last ladder point), just inside the radius
    edge = bisection_width(lambda t: abs(t), level=1.0, radius=1.0, ladder=4, steps=8)
    assert not edge.censored and edge.right == pytest.approx(1.0, abs=1 / 4 / 2**9) and edge.right < 1.0


def test_bisection_width_returns_the_first_crossing_even_when_the_loss_dips_back_below_the_level() -> None:
    """L = t² inside |t| < 1.2 and 0 beyond: the level 0.81 is crossed at ±0.9 first; the dip outside is not part of
    the basin (a grid width over the whole radius would not see the wall if it fell between grid points). A NaN loss
    counts as crossed (a non-finite point is not inside the basin)."""
    f = lambda t: t * t if abs(t) < 1.2 else 0.0  # noqa: E731
    w = bisection_width(f, level=0.81, radius=3.0, ladder=6, steps=10)
    assert w.right == pytest.approx(0.9, abs=0.5 / 2**11) and w.left == pytest.approx(0.9, abs=0.5 / 2**11)
    assert not w.censored
    nan = bisection_width(lambda t: float("nan") if t > 0.6 else 0.0, level=0.1, radius=1.0, ladder=5, steps=12)
    assert nan.right == pytest.approx(0.6, abs=0.2 / 2**13) and not nan.censored_right and nan.censored_left
    # a loss exactly at the level is crossed (L ≥ level)
    at = bisection_width(lambda t: 0.5 if abs(t) >= 0.5 else 0.0, level=0.5, radius=1.0, ladder=2, steps=0)
    assert (at.left, at.right) == (0.25, 0.25)


def test_bisection_width_refuses_a_radius_ladder_or_steps_it_cannot_use() -> None:
    for kw in ({"radius": 0.0, "ladder": 4}, {"radius": 1.0, "ladder": 0}, {"radius": 1.0, "ladder": 4, "steps": -1}):
        with pytest.raises(ValueError):
            bisection_width(lambda t: t, level=1.0, **kw)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(coef=st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4),
       levels=st.lists(st.floats(0.01, 3.0), min_size=2, max_size=2),
       ladder=st.integers(1, 9), steps=st.integers(0, 9))
def test_bisection_width_is_monotone_in_the_level_and_bounded_by_the_radius(coef, levels, ladder, steps) -> None:  # noqa: ANN001
    """For any loss (here wiggly: a quadratic plus sines, not monotone in |t|) a higher level gives each side a
    distance at least as large (the brackets of the two searches stay ordered); every side is in [0, radius], and a
    censored side is exactly the radius; at most ladder + steps evaluations per side."""
    a, b, c, d = coef
    f = lambda t: t * t + a * math.sin(3 * t) * 0.3 + b * math.sin(7 * t + c) * 0.2 + d * 0.05  # noqa: E731
    lo_level, hi_level = sorted(f(0.0) + x for x in levels)
    radius = 2.0
    w1 = bisection_width(f, level=lo_level, radius=radius, ladder=ladder, steps=steps)
    w2 = bisection_width(f, level=hi_level, radius=radius, ladder=ladder, steps=steps)
    assert w2.left >= w1.left and w2.right >= w1.right and w2.width >= w1.width
    for w in (w1, w2):
        assert 0.0 <= w.left <= radius and 0.0 <= w.right <= radius
        assert (w.left == radius) == w.censored_left and (w.right == radius) == w.censored_right
        assert w.evaluations <= 2 * (ladder + steps)
    assert not (w1.censored_right and not w2.censored_right)


# -- layer swap ------------------------------------------------------------------------------------------------------


def _vec(model: nn.Module) -> ParamVector:
    return get_params(model)


def test_swapping_a_group_with_itself_costs_exactly_nothing(tiny_model: nn.Module) -> None:
    """A partner with the same encoder weights (and another head: 3 labels against 2) swaps each depth group at
    zero cost, bit for bit, and leaves the model's parameters as they were."""
    from repro.models import load_model

    batches = synthetic_batches(2, 4, seed=1)
    theta1 = _vec(tiny_model)
    partner = load_model("tiny-random", "pretrained", 3, seed=0)
    partner_vec = ParamVector.from_dict({n: p.detach().clone() for n, p in partner.named_parameters()})
    groups = parameter_groups(tiny_model)
    for g in ("low", "high"):
        assert groups[g], g
        # the partner's encoder is the same pretrained encoder
        assert all(torch.equal(partner_vec.as_dict()[n], theta1.as_dict()[n]) for n in groups[g])
        r = layer_swap_loss(tiny_model, theta1, partner_vec, groups[g], batches, group=g)
        assert r.group == g and r.loss_swapped == r.loss_theta1 and r.acc_swapped == r.acc_theta1
        assert r.loss_increase == 0.0
    assert all(torch.equal(a, b) for a, b in zip(_vec(tiny_model).tensors, theta1.tensors, strict=True))


def test_swapping_the_only_group_that_differs_changes_the_loss_exactly_as_setting_it_by_hand(
        tiny_model: nn.Module) -> None:
    """``other`` = θ1 with the low group perturbed and another head shape: swapping low gives exactly the loss of
    the model with those tensors copied in by hand; swapping high (identical there) costs exactly zero; the head is
    never read from ``other`` (its shape differs) and a group with a shape mismatch is refused."""
    batches = synthetic_batches(2, 4, seed=2)
    theta1 = _vec(tiny_model)
    groups = parameter_groups(tiny_model)
    g = torch.Generator().manual_seed(9)
    other = {n: t.clone() for n, t in theta1.as_dict().items()}
    for n in groups["low"]:
        other[n] = other[n] + 0.2 * torch.randn(other[n].shape, generator=g)
    for n in groups["head"]:
        other[n] = torch.zeros((3,) + tuple(other[n].shape[1:]))
    other_vec = ParamVector.from_dict(other)
    r = layer_swap_loss(tiny_model, theta1, other_vec, groups["low"], batches, group="low")
    with torch.no_grad():
        for n, p in tiny_model.named_parameters():
            if n in groups["low"]:
                p.copy_(other[n])
    by_hand = evaluate(tiny_model, batches)
    set_params(tiny_model, theta1)
    at1 = evaluate(tiny_model, batches)
    assert (r.loss_swapped, r.acc_swapped) == (by_hand.loss, by_hand.accuracy)
    assert (r.loss_theta1, r.acc_theta1) == (at1.loss, at1.accuracy)
    assert r.loss_swapped != r.loss_theta1
    high = layer_swap_loss(tiny_model, theta1, other_vec, groups["high"], batches, group="high")
    assert high.loss_increase == 0.0
    swapped = swap_group(theta1, other_vec, groups["low"]).as_dict()
    assert all(swapped[n] is theta1.as_dict()[n] for n in theta1.names if n not in groups["low"])
    with pytest.raises(ValueError, match="shape"):
        swap_group(theta1, other_vec, groups["head"])
    with pytest.raises(KeyError):
        swap_group(theta1, ParamVector.from_dict({n: other[n] for n in groups["high"]}), groups["low"])
