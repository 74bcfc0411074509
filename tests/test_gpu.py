"""The CUDA path (issue 8): every computation the claims plan runs gives on a GPU what it gives on the CPU.

Every test is marked ``gpu`` and skipped where CUDA is absent (tests/conftest.py). Run them on a GPU machine with
``pytest -m gpu -q`` (scripts/device_run.sh does, on the device machine). Each compares the CUDA result with the
same computation on the CPU -- or with a closed form -- at a tolerance that says which precision is in play: float32
kernels differ from the CPU's in rounding only (1e-4 relative), bf16 autocast by its 8-bit mantissa (a few 1e-2).

``REPRO_GPU_TEST_DEVICE`` names the device under test (default ``cuda``; e.g. ``cuda:1``). Set to ``cpu`` it lets a
machine without a GPU run the test logic itself (see scripts/check_gpu_tests_on_cpu.py), which checks the tests, not
the GPU.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from repro.bench.common import collate, synthetic_examples, to_device
from repro.curvature import (
    HessianOperator,
    LambdaOperator,
    epsilon_sharpness,
    hutchinson_trace,
    hutchpp_trace,
    lanczos,
    power_iteration,
)
from repro.landscape import (
    compute_curve,
    compute_surface,
    evaluate,
    filter_normalized_direction,
    get_params,
    project_onto_plane,
)
from repro.landscape.params import ParamVector
from repro.models import load_model

pytestmark = pytest.mark.gpu

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dev() -> torch.device:
    return torch.device(os.environ.get("REPRO_GPU_TEST_DEVICE", "cuda"))


def _batches(device: torch.device, n: int = 48, max_len: int = 24, batch_size: int = 16, seed: int = 0
             ) -> list[dict[str, Tensor]]:
    return to_device(collate(synthetic_examples(n, max_len, seed), batch_size, sort_by_length=True), device)


def _pair(name: str = "tiny-minilm", attn: str = "eager") -> tuple[nn.Module, nn.Module]:
    """The same model twice (identical weights): one stays on the CPU, one goes to the device under test."""
    a = load_model(name, "pretrained", 2, seed=0, attn_implementation=attn).eval()
    b = load_model(name, "pretrained", 2, seed=0, attn_implementation=attn).eval()
    return a, b


# -- training ---------------------------------------------------------------------------------------------------------


def test_training_with_autocast_is_finite_and_saves_float32(dev: torch.device, tiny_glue: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import repro.training.loop as loop
    from repro.config import TrainHyper, get_profile
    from repro.training import train

    used: list[str] = []
    real = loop.autocast_context

    def spy(device: torch.device, enabled: bool | None = None):  # noqa: ANN202
        ctx = real(device, enabled)
        used.append(type(ctx).__name__)
        return ctx

    monkeypatch.setattr(loop, "autocast_context", spy)
    cfg = get_profile("smoke").train_config("sst2", "pretrained", 0)
    cfg = dataclasses.replace(cfg, train_size=64, dev_size=32, snapshots=3, checkpoint_every=3,
                              hyper=TrainHyper(learning_rate=5e-5, epochs=2, batch_size=16))
    run = train(cfg, tmp_path, data_dir=tiny_glue, device=dev, progress=False)
    assert run.metrics.status == "complete" and run.metrics.total_steps == 8
    assert all(math.isfinite(x) for x in run.metrics.train_loss + run.metrics.grad_norm)
    assert all(math.isfinite(e.dev_loss) for e in run.metrics.evals)
    if dev.type == "cuda":
        assert used and set(used) == {"autocast"}, used  # bf16 autocast in every training step
    theta0, theta1 = run.theta0(), run.theta1()
    assert {t.dtype for t in theta1.values()} == {torch.float32}  # master weights, not bf16
    assert any(not torch.equal(theta0[k], theta1[k]) for k in theta1)


def test_a_resumed_run_restores_the_device_dropout_stream_and_leaves_the_global_one_alone(
        dev: torch.device, tiny_glue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropout on CUDA draws from the CUDA generator: a checkpoint saves that generator's state and a resume restores
    it on the run's device (or the resumed steps drop other units than the uninterrupted run); training forks it, so
    the caller's CUDA random stream is the same after training as before. Checked on the saved and restored states
    themselves, exactly, rather than on losses (CUDA's atomic adds leave rounding-level run-to-run differences). The
    CUDA branches of the loop are otherwise reached by no test (tests/mutation-equivalents.tsv, issue 21)."""
    import dataclasses

    from repro.config import TrainHyper, get_profile
    from repro.training import run_dir_for, train

    cfg = get_profile("smoke").train_config("sst2", "scratch", 0)
    cfg = dataclasses.replace(cfg, model="tiny-random", train_size=64, dev_size=32, snapshots=3, checkpoint_every=2,
                              hyper=TrainHyper(learning_rate=1e-3, epochs=1, batch_size=16))
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.manual_seed(11)
        before = torch.cuda.get_rng_state(dev)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, data_dir=tiny_glue, device=dev, progress=False, _stop_after_step=3)
    if cuda:
        assert torch.equal(torch.cuda.get_rng_state(dev), before)  # the caller's CUDA stream untouched
    ck = torch.load(run_dir_for(tmp_path, cfg) / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert int(ck["step"]) == 2
    restored: list[tuple[Tensor, object]] = []
    real = torch.cuda.set_rng_state

    def spy(state: Tensor, device: object = "cuda") -> None:
        restored.append((state.clone(), device))
        real(state, device)

    monkeypatch.setattr(torch.cuda, "set_rng_state", spy)
    run = train(cfg, tmp_path, data_dir=tiny_glue, device=dev, progress=False)
    assert run.metrics.status == "complete" and run.metrics.total_steps == 4
    if cuda:
        assert "cuda_rng" in ck and ck["cuda_rng"].dtype == torch.uint8
        assert len(restored) == 1 and torch.equal(restored[0][0], ck["cuda_rng"]) and restored[0][1] == dev
        assert torch.equal(torch.cuda.get_rng_state(dev), before)
    else:  # the CPU check of this test (scripts/check_gpu_tests_on_cpu.py): no CUDA state is saved or restored
        assert "cuda_rng" not in ck and restored == []


# -- evaluation and grids --------------------------------------------------------------------------------------------


def test_evaluation_matches_cpu(dev: torch.device) -> None:
    cpu_model, dev_model = _pair()
    dev_model.to(dev)
    ref = evaluate(cpu_model, _batches(CPU))
    fp32 = evaluate(dev_model, _batches(dev), autocast=False)
    bf16 = evaluate(dev_model, _batches(dev))  # the default: bf16 autocast on CUDA
    assert fp32.count == bf16.count == ref.count == 48
    assert fp32.loss == pytest.approx(ref.loss, rel=1e-4)
    assert bf16.loss == pytest.approx(ref.loss, rel=3e-2)
    assert abs(fp32.accuracy - ref.accuracy) <= 1 / 48 + 1e-12  # at most one near-tie flips
    assert abs(bf16.accuracy - ref.accuracy) <= 4 / 48 + 1e-12


def test_grids_match_cpu(dev: torch.device) -> None:
    cpu_model, dev_model = _pair()
    dev_model.to(dev)
    results = {}
    for device, model in ((CPU, cpu_model), (dev, dev_model)):
        base = get_params(model)
        d1 = filter_normalized_direction(base, seed=1)
        d2 = filter_normalized_direction(base, seed=2)
        sets = {"train": _batches(device)}
        axis = np.linspace(-0.5, 0.5, 3)
        results[device.type] = {
            "curve": compute_curve(model, base, d1, np.linspace(-1, 1, 5), sets, autocast=False),
            "surface": compute_surface(model, base, d1, d2, axis, axis, sets, autocast=False),
            "surface_bf16": compute_surface(model, base, d1, d2, axis, axis, sets),
            "surface_vmap": compute_surface(model, base, d1, d2, axis, axis, sets, autocast=False, vmap_points=4),
        }
        # the evaluator restores the model's parameters
        assert all(torch.equal(a, b) for a, b in zip(base.tensors, get_params(model).tensors))
    cpu, gpu = results["cpu"], results[dev.type]
    np.testing.assert_allclose(gpu["curve"].array("train_loss"), cpu["curve"].array("train_loss"), rtol=1e-4)
    np.testing.assert_allclose(gpu["surface"].train_loss, cpu["surface"].train_loss, rtol=1e-4)
    np.testing.assert_allclose(gpu["surface_vmap"].train_loss, cpu["surface"].train_loss, rtol=1e-4)
    np.testing.assert_allclose(gpu["surface_bf16"].train_loss, cpu["surface"].train_loss, rtol=3e-2)
    assert np.abs(gpu["surface"].train_acc - cpu["surface"].train_acc).max() <= 1 / 48 + 1e-12


def test_grid_accepts_host_side_directions_and_batches(dev: torch.device) -> None:
    """Directions read from a file and batches built on the host: moved to the model's device once."""
    cpu_model, dev_model = _pair()
    dev_model.to(dev)
    base = get_params(cpu_model)
    d1 = filter_normalized_direction(base, seed=1)
    sets = {"train": _batches(CPU)}
    want = compute_curve(cpu_model, base, d1, [-1.0, 0.0, 1.0], sets, autocast=False)
    got = compute_curve(dev_model, base, d1, [-1.0, 0.0, 1.0], sets, autocast=False)
    np.testing.assert_allclose(got.array("train_loss"), want.array("train_loss"), rtol=1e-4)
    assert next(dev_model.parameters()).device.type == dev.type


# -- curvature ---------------------------------------------------------------------------------------------------------


def _spd(n: int, seed: int, device: torch.device, dtype: torch.dtype = torch.float64) -> Tensor:
    """A symmetric matrix with a clear top of the spectrum (eigenvalues 1..n, plus a gap at the top)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    vals = torch.arange(1.0, n + 1.0, dtype=torch.float64)
    vals[-3:] += torch.tensor([10.0, 20.0, 40.0], dtype=torch.float64)
    return (q @ torch.diag(vals) @ q.T).to(device=device, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lanczos_and_power_iteration_match_eigvalsh(dev: torch.device, dtype: torch.dtype) -> None:
    A = _spd(120, 0, dev, dtype)
    ref = np.linalg.eigvalsh(A.double().cpu().numpy())[::-1]
    rtol = 1e-8 if dtype == torch.float64 else 1e-4
    r = lanczos(LambdaOperator(A), k=4, tol=1e-5 if dtype == torch.float32 else 1e-10, max_iter=120, seed=0,
                return_vectors=True)
    np.testing.assert_allclose(r.eigenvalues, ref[:4], rtol=rtol)
    assert r.converged
    assert r.eigenvectors is not None and r.eigenvectors.device.type == dev.type and r.eigenvectors.dtype == dtype
    # explicit residuals, recomputed here on the device
    for lam, v in zip(r.eigenvalues, r.eigenvectors):
        assert float((A @ v - lam * v).norm()) <= 1e-3 * abs(lam)
    p = power_iteration(LambdaOperator(A), k=2, tol=1e-9, max_iter=500, seed=0)
    np.testing.assert_allclose(p.eigenvalues, ref[:2], rtol=1e-3)


def test_trace_estimators_match_the_exact_trace(dev: torch.device) -> None:
    A = _spd(200, 1, dev)
    exact = float(torch.trace(A))
    h = hutchinson_trace(LambdaOperator(A), 300, seed=0)
    assert abs(h.estimate - exact) <= 4 * h.stderr
    pp = hutchpp_trace(LambdaOperator(A), 150, seed=0)
    assert abs(pp.estimate - exact) <= max(4 * pp.stderr, 1e-9 * exact)
    # the probes are drawn on the host from the seed: the device gives the CPU's estimate
    h_cpu = hutchinson_trace(LambdaOperator(A.cpu()), 300, seed=0)
    assert h.estimate == pytest.approx(h_cpu.estimate, rel=1e-10)


def test_hessian_operator_on_bert_matches_cpu(dev: torch.device) -> None:
    """The path that crashed on the H200 (issue 8): Lanczos with a Hessian operator on a CUDA model."""
    from repro.models.groups import parameter_groups

    cpu_model, dev_model = _pair("tiny-minilm")
    dev_model.to(dev)
    out = {}
    for device, model in ((CPU, cpu_model), (dev, dev_model)):
        names = parameter_groups(model)["high"]
        op = HessianOperator(model, _batches(device, n=16, batch_size=8), names)
        assert op.device.type == device.type
        eig = lanczos(op, k=2, tol=1e-3, max_iter=30, seed=0)
        tr = hutchinson_trace(op, 4, seed=0)
        out[device.type] = (eig, tr)
    (e_cpu, t_cpu), (e_dev, t_dev) = out["cpu"], out[dev.type]
    assert e_dev.converged and e_dev.num_matvecs <= 30 + 2
    assert e_dev.eigenvalues[0] == pytest.approx(e_cpu.eigenvalues[0], rel=2e-3)  # converged: rounding apart
    assert e_dev.eigenvalues[1] == pytest.approx(e_cpu.eigenvalues[1], rel=2e-2)
    assert t_dev.estimate == pytest.approx(t_cpu.estimate, rel=2e-3)


def test_epsilon_sharpness_matches_cpu_and_restores_parameters(dev: torch.device) -> None:
    cpu_model, dev_model = _pair("tiny-random")
    dev_model.to(dev)
    res = {}
    for device, model in ((CPU, cpu_model), (dev, dev_model)):
        before = get_params(model)
        res[device.type] = epsilon_sharpness(model, _batches(device, n=16, batch_size=8), epsilon=1e-3, steps=3,
                                             seed=0)
        assert all(torch.equal(a, b) for a, b in zip(before.tensors, get_params(model).tensors))
    s_cpu, s_dev = res["cpu"], res[dev.type]
    assert s_dev.base_loss == pytest.approx(s_cpu.base_loss, rel=1e-5)
    # sign-gradient ascent: entries with a near-zero gradient may step differently on another device
    assert s_dev.sharpness == pytest.approx(s_cpu.sharpness, rel=0.1, abs=1e-3)
    assert math.isfinite(s_dev.sharpness) and s_dev.sharpness >= 0


def test_trajectory_projection_matches_cpu_with_snapshots_on_the_host(dev: torch.device) -> None:
    g = torch.Generator().manual_seed(0)
    names = ("a", "b")

    def vec() -> ParamVector:
        return ParamVector(names, (torch.randn(50, 8, generator=g), torch.randn(30, generator=g)))

    origin, d1, d2 = vec(), vec(), vec()
    snaps = [origin + d1 * (0.1 * t) + d2 * (0.05 * t * t) + vec() * 0.01 for t in range(6)]
    want = project_onto_plane(snaps, origin, d1, d2, steps=range(6))
    got = project_onto_plane(snaps, origin.to(dev), d1.to(dev), d2.to(dev), steps=range(6))  # snapshots stay
    np.testing.assert_allclose(got.alphas, want.alphas, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.betas, want.betas, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.residual, want.residual, rtol=1e-4)
    np.testing.assert_allclose(got.alphas, [0.1 * t for t in range(6)], atol=5e-3)


# -- the CLI on the device -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["grid", "curvature"])
def test_bench_cli_on_device(dev: torch.device, tmp_path: Path, which: str) -> None:
    from repro.cli import main

    assert main(["bench", which, "--device", str(dev), "--results", str(tmp_path)]) == 0
    result = json.loads((tmp_path / f"{which}-{dev.type}.json").read_text(encoding="utf-8"))
    assert result["device"] == str(dev)
    if dev.type == "cuda":
        assert result["gpu"]
    if which == "grid":
        assert result["ours"]["points_per_s"] > 0 and result["ratios"]["ours_over_ceiling"] > 0
    else:
        ours = result["lambda_max"]["ours_lanczos"]
        assert ours["converged"] and all(math.isfinite(x) for x in ours["eigenvalues"] + ours["rel_residuals"])
        assert max(result["top5"]["ours_lanczos"]["rel_residuals"]) < 0.1


@pytest.mark.slow
def test_claims_smoke_end_to_end_on_device(dev: torch.device, tmp_path: Path, tiny_glue: Path) -> None:
    from claims.analysis import load_analysis
    from repro.cli import main
    from repro.config import get_profile
    from repro.pipeline.runner import claims_dir
    from repro.results import load_claims

    code = main(["claims", "--profile", "smoke", "--data-dir", str(tiny_glue), "--out", str(tmp_path),
                 "--device", str(dev), "--no-progress"])
    assert code in (0, 1)  # 1: not every claim reproduced -- a result on a toy task, not an error
    root = claims_dir(get_profile("smoke"), tmp_path)
    report = load_claims(root)
    assert report.runs
    for r in report.runs:
        assert r.analysis is not None, r
        a = load_analysis(root / r.analysis)
        assert all(math.isfinite(x) for x in a.hessian.eigenvalues + a.hessian.residuals)
        assert math.isfinite(a.trace.estimate) and math.isfinite(a.sharpness.sharpness)
        assert a.surface is not None and a.projection is not None
    assert (root / "report.html").exists()
