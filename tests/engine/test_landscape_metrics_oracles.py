"""Oracles for the landscape directions and the curve/surface metrics that the field-by-field tests leave open.

* Every metric promises float64 arithmetic: a curve or surface stored as float32 (or produced on a GPU) must give
  exactly what its float64 copy gives, not a result rounded at float32's 1e-7 -- the flatness threshold
  ``L_min + ε`` in particular must be compared in float64, or a point just above it joins the basin.
* Filter normalisation (Li et al. 2018) by a hand loop in float64: the random draw is float32 from the seed whatever
  torch's default dtype, and each row's scale uses θ's row norm in the direction's precision.
* The autocast policy (bf16 on CUDA by default, nothing elsewhere) and the errors that name their fix.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from repro.landscape import ParamVector, filter_normalize, filter_normalized_direction
from repro.landscape.directions import _filter_normalize_
from repro.landscape.evaluate import autocast_context, cpu_bf16_evaluation, evaluate, grid_bf16_evaluation
from repro.metrics import (
    basin_area,
    flatness_width,
    monotonicity,
    roughness,
    surface_agreement,
    trajectory_straightness,
)


def _f32(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- metrics: float32 data, float64 arithmetic ---------------------------------------------------------------------


def test_curve_metrics_of_a_float32_curve_equal_those_of_its_float64_copy() -> None:
    """A float32 curve is a set of exact float64 numbers: every path metric must equal the float64 copy's to the
    last bit (float32 arithmetic would round differences and sums at 1e-7)."""
    # increasing, non-uniform, through 0 (differences of opposite-signed floats round in float32)
    xs32 = (np.cumsum(np.abs(_f32(0, 15)) + np.float32(0.1)) - np.float32(4.3)).astype(np.float32)
    ys32 = np.abs(_f32(1, 15)) * np.float32(2.0) + np.float32(0.01)  # min and max far apart: ptp inexact
    xs64, ys64 = xs32.astype(np.float64), ys32.astype(np.float64)
    assert roughness(xs32, ys32) == roughness(xs64, ys64) > 0
    assert roughness(xs32, ys64) == roughness(xs64, ys32) == roughness(xs64, ys64)
    assert monotonicity(ys32) == monotonicity(ys64)
    for relative in (False, True):
        for eps in (0.05, 0.3):
            want = flatness_width(xs64, ys64, eps=eps, relative=relative)
            assert flatness_width(xs32, ys32, eps=eps, relative=relative) == want
            assert flatness_width(xs32, ys64, eps=eps, relative=relative) == want
            assert flatness_width(xs64, ys32, eps=eps, relative=relative) == want
    pts32 = np.cumsum(_f32(2, 12, 2), axis=0).astype(np.float32)
    s = trajectory_straightness(pts32)
    assert s == trajectory_straightness(pts32.astype(np.float64)) and 0 < s.ratio < 1


def test_threshold_is_compared_in_float64_so_a_float32_point_just_above_it_stays_outside() -> None:
    """L_min + ε = 1.1 in float64; float32(1.1) = 1.10000002... lies above it. A curve point or surface cell holding
    that float32 value is outside the sub-level set (comparing in float32 would round the threshold onto it)."""
    above = np.float32(1.1)
    assert float(above) > 1.0 + 0.1
    ys = np.array([2.0, above, 1.0, 1.05, 2.0], dtype=np.float32)
    xs = np.array([-1.1, -0.35, 0.1, 0.7, 1.9], dtype=np.float32)  # no neighbour difference is exact in float32
    x, y = xs.astype(np.float64), ys.astype(np.float64)
    w = flatness_width(xs, ys, eps=0.1)
    assert w == flatness_width(x, y, eps=0.1)
    assert (w.threshold, w.min_value, w.argmin) == (1.0 + 0.1, 1.0, x[2])
    assert not w.hit_left_boundary and not w.hit_right_boundary
    # crossings interpolated in float64: left between x[1] (1.1000000238 > 1.1: outside) and x[2], right x[3]..x[4]
    assert w.left == pytest.approx(x[1] + (1.1 - y[1]) * (x[2] - x[1]) / (y[2] - y[1]), rel=1e-15)
    assert x[1] < w.left < x[1] + 1e-5
    assert w.right == pytest.approx(x[3] + (1.1 - y[3]) * (x[4] - x[3]) / (y[4] - y[3]), rel=1e-15)
    assert w.width == w.right - w.left
    grid = np.full((5, 5), 2.0, dtype=np.float32)
    grid[2, 2], grid[2, 3], grid[3, 2] = 1.0, above, 1.05
    b = basin_area(np.arange(5.0), np.arange(5.0), grid, eps=0.1)
    assert (b.cells, b.area, b.threshold, b.min_value, b.argmin) == (2, 2.0, 1.1, 1.0, (2.0, 2.0))
    assert not b.touches_boundary


def test_surface_metrics_of_float32_surfaces_and_axes_equal_those_of_their_float64_copies() -> None:
    """Cell area from float32 axes (non-uniform, so the mean spacing is not exact in float32) and the dev-error gap
    of float32 surfaces are computed in float64."""
    a32 = np.array([-0.7, -0.2, 0.1, 0.3, 0.9], dtype=np.float32)
    b32 = np.array([-1.3, -0.1, 0.6, 1.1], dtype=np.float32)
    a64, b64 = a32.astype(np.float64), b32.astype(np.float64)
    A, B = np.meshgrid(a64, b64, indexing="ij")
    loss32 = (0.8 * (A - 0.1) ** 2 + 0.3 * (B - 0.6) ** 2 + 0.31).astype(np.float32)
    err32 = (0.03 + 0.2 * np.abs(A - 0.3) + 0.07 * np.abs(B + 0.1)).astype(np.float32)
    want = basin_area(a64, b64, loss32.astype(np.float64), eps=0.25)
    assert basin_area(a32, b32, loss32, eps=0.25) == want
    assert basin_area(a32, b64, loss32, eps=0.25) == basin_area(a64, b32, loss32, eps=0.25) == want
    da, db = float(np.mean(np.diff(a64))), float(np.mean(np.diff(b64)))
    assert want.area == want.cells * (da * db) and want.cells > 1
    agree = surface_agreement(a32, b32, loss32, err32)
    ref = surface_agreement(a64, b64, loss32.astype(np.float64), err32.astype(np.float64))
    assert agree == ref
    assert ref.gap == float(err32[2, 2]) - float(err32[3, 1]) > 0  # train argmin (0.1, 0.6), dev argmin (0.3, -0.1)


# -- filter normalisation (Li et al. 2018) by hand ----------------------------------------------------------------


def _theta() -> ParamVector:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64) * torch.tensor([[0.5], [2.0], [0.0], [1.0]],
                                                                            dtype=torch.float64)
    conv = torch.randn(2, 3, 2, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    return ParamVector(("w", "bias", "conv"), (w, bias, conv))


def _by_hand(theta: ParamVector, seed: int) -> list[torch.Tensor]:
    """Li et al.: draw N(0, 1) per tensor (float32, one generator, in order), rescale row i to ‖θ[i]‖; zero rows of θ
    and 1-D tensors give zeros."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for w in theta.tensors:
        r = torch.randn(w.shape, generator=g, dtype=torch.float32).double()
        if w.ndim <= 1:
            out.append(torch.zeros_like(w))
            continue
        rows = []
        for i in range(w.shape[0]):
            wn = float(np.linalg.norm(w[i].numpy().ravel()))
            rn = float(np.linalg.norm(r[i].numpy().ravel()))
            rows.append(r[i] * (wn / rn if wn > 0 else 0.0))
        out.append(torch.stack(rows))
    return out


def test_filter_normalized_direction_is_li_et_al_by_hand_whatever_the_default_dtype() -> None:
    """The draw is float32 from the seed even when torch's default dtype is float64 (so a seed names the same
    direction in every program), then filter-normalised row by row to θ."""
    theta = _theta()
    want = _by_hand(theta, seed=11)
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        got64 = filter_normalized_direction(theta, seed=11).vector
    finally:
        torch.set_default_dtype(old)
    got = filter_normalized_direction(theta, seed=11).vector
    for a, b, w in zip(got.tensors, got64.tensors, want):
        assert a.dtype == torch.float64
        torch.testing.assert_close(a, w, rtol=1e-13, atol=0)
        assert torch.equal(a, b)
    assert (got.tensors[0][2] == 0).all() and (got.tensors[1] == 0).all()


def test_filter_normalize_takes_row_norms_of_a_low_precision_theta_in_the_directions_precision() -> None:
    """A float64 direction normalised against a bfloat16 model: the scale is ‖θ[i]‖ of θ's (exact) values in float64,
    not a norm accumulated in bfloat16 (3 significant digits)."""
    g = torch.Generator().manual_seed(5)
    w16 = (torch.randn(6, 40, generator=g, dtype=torch.float64) * 3).to(torch.bfloat16)
    d = torch.randn(6, 40, generator=g, dtype=torch.float64)
    out = filter_normalize(ParamVector(("w",), (d,)), ParamVector(("w",), (w16,))).tensors[0]
    assert out.dtype == torch.float64
    wn = np.linalg.norm(w16.double().numpy(), axis=1)
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), wn, rtol=1e-14)
    np.testing.assert_allclose(out.numpy() / np.linalg.norm(out.numpy(), axis=1, keepdims=True),
                               d.numpy() / np.linalg.norm(d.numpy(), axis=1, keepdims=True), rtol=1e-13)


def test_rows_with_norm_at_most_eps_are_zeroed_and_rows_above_it_rescaled() -> None:
    """‖d[i]‖ ≤ eps counts as a zero row (no 1/eps blow-up); just above eps the row is rescaled to ‖w[i]‖."""
    d = torch.tensor([[0.5, 0.0], [0.0, -0.5000001], [3.0, 4.0]], dtype=torch.float64)
    w = torch.tensor([[6.0, 8.0], [0.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    _filter_normalize_(d, w, eps=0.5)
    assert torch.equal(d[0], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(d[1], torch.tensor([0.0, -2.0], dtype=torch.float64), rtol=1e-15, atol=0)
    assert torch.equal(d[2], torch.zeros(2, dtype=torch.float64))  # θ row zero: zero, not NaN


# -- autocast policy and errors -----------------------------------------------------------------------------------


def _autocast(device: str, enabled: bool | None = None) -> contextlib.AbstractContextManager:
    with warnings.catch_warnings():  # without a GPU torch builds the CUDA context disabled, with this warning
        warnings.filterwarnings("ignore", message="CUDA is not available", category=UserWarning)
        return autocast_context(torch.device(device), enabled)


def test_evaluation_autocasts_to_bfloat16_on_cuda_by_default_and_on_the_cpu_only_when_asked() -> None:
    """bf16 (8-bit exponent like float32: no loss scaling needed), not float16, and on by default on CUDA; on the CPU
    only with ``enabled=True`` or inside ``cpu_bf16_evaluation`` (the ``cpu_grid_bf16`` option), which an explicit
    ``enabled=False`` overrides; never on another device."""
    for enabled in (None, True):
        ctx = _autocast("cuda", enabled)
        assert isinstance(ctx, torch.autocast)
        assert (ctx.device, ctx.fast_dtype) == ("cuda", torch.bfloat16)
    assert isinstance(_autocast("cuda", False), contextlib.nullcontext)
    for enabled in (None, False):
        assert isinstance(_autocast("cpu", enabled), contextlib.nullcontext)
    ctx = _autocast("cpu", True)
    assert isinstance(ctx, torch.autocast) and (ctx.device, ctx.fast_dtype) == ("cpu", torch.bfloat16)
    with cpu_bf16_evaluation():
        assert isinstance(_autocast("cpu", None), torch.autocast)
        assert isinstance(_autocast("cpu", False), contextlib.nullcontext)
        with cpu_bf16_evaluation(False):
            assert isinstance(_autocast("cpu", None), contextlib.nullcontext)
    assert isinstance(_autocast("cpu", None), contextlib.nullcontext)  # reset on leaving the block
    assert isinstance(_autocast("meta", True), contextlib.nullcontext)


def test_cpu_bf16_evaluation_changes_the_loss_by_bf16_rounding_only() -> None:
    """The option really computes in bf16 (the loss moves) and by rounding only (relative change < 2e-2)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 3))

    def loss_fn(m: nn.Module, b: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
        logits = m(b["x"])
        logits = logits.float()
        return (nn.functional.cross_entropy(logits, b["labels"], reduction="sum"),
                (logits.argmax(-1) == b["labels"]).sum(), int(b["labels"].shape[0]))

    batches = [{"x": torch.randn(32, 16), "labels": torch.randint(0, 3, (32,))}]
    full = evaluate(model, batches, loss_fn).loss
    with cpu_bf16_evaluation():
        half = evaluate(model, batches, loss_fn).loss
    assert half != full and abs(half - full) < 2e-2 * abs(full)
    assert evaluate(model, batches, loss_fn).loss == full


def test_malformed_vectors_and_options_are_refused_with_a_message_naming_the_fix() -> None:
    t = torch.zeros(2)
    with pytest.raises(ValueError, match="names and tensors differ in length"):
        ParamVector(("a", "b"), (t,))
    a, b = ParamVector(("a",), (t,)), ParamVector(("b",), (t,))
    for op in (lambda: a + b, lambda: a - b, lambda: a.dot(b), lambda: a.clone().axpy_(1.0, b)):
        with pytest.raises(ValueError, match="over different parameter names; restrict or align them first"):
            op()
    with pytest.raises(ValueError, match="one_dim must be 'zero' or 'copy'"):
        filter_normalized_direction(a, seed=0, one_dim="ones")


def test_cuda_grid_bf16_off_gives_float32_grids_on_cuda_and_leaves_the_cpu_setting_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """grid_bf16_evaluation(cuda=False) (the cuda_grid_bf16 option, issue 43): the CUDA default autocast is off
    inside the block and back after it; cpu_bf16_evaluation inside it keeps CUDA off. Checked on the context
    managers chosen, with torch.autocast recorded instead of entered (no GPU needed)."""
    import contextlib

    class Autocast:  # stands in for torch.autocast, which warns when built for CUDA on a CPU-only torch
        def __init__(self, device_type: str, dtype: torch.dtype) -> None:
            self.device_type, self.dtype = device_type, dtype

    monkeypatch.setattr(torch, "autocast", Autocast)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")

    def bf16(device: torch.device, enabled: bool | None = None) -> bool:
        ctx = autocast_context(device, enabled)
        assert isinstance(ctx, (Autocast, contextlib.nullcontext))
        return isinstance(ctx, Autocast) and ctx.dtype == torch.bfloat16 and ctx.device_type == device.type

    assert bf16(cuda) and not bf16(cpu)  # the defaults
    with grid_bf16_evaluation(cpu=False, cuda=False):
        assert not bf16(cuda) and not bf16(cpu)
        with cpu_bf16_evaluation():
            assert bf16(cpu) and not bf16(cuda)
        assert bf16(cuda, enabled=True)  # an explicit request wins
    assert bf16(cuda) and not bf16(cpu)
