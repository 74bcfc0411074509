"""Training: determinism, kill-and-resume equals uninterrupted (bitwise on CPU), reuse, divergence, CLI errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from repro.cli import main
from repro.config import TrainHyper, get_profile
from repro.errors import TrainingDivergedError
from repro.training import TrainRun, run_dir_for, train
from repro.training import loop as loop_mod
from repro.training.snapshots import load_params, snapshot_steps
from tests.conftest import nan_loss_from


def _cfg(**kw):  # noqa: ANN003, ANN202
    prof = get_profile("smoke")
    cfg = prof.train_config("sst2", kw.pop("init", "scratch"), kw.pop("seed", 0))
    hyper = TrainHyper(learning_rate=1e-3, epochs=2, batch_size=16)
    return dataclasses.replace(cfg, model="tiny-random", train_size=48, dev_size=32, hyper=hyper,
                               checkpoint_every=2, snapshots=4, **kw)


def _params_equal(a: Path, b: Path) -> bool:
    pa, pb = load_params(a), load_params(b)
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


def test_same_seed_same_numbers(tmp_path: Path, tiny_glue: Path) -> None:
    cfg = _cfg()
    a = train(cfg, tmp_path / "a", data_dir=tiny_glue, progress=False)
    b = train(cfg, tmp_path / "b", data_dir=tiny_glue, progress=False)
    assert a.metrics.train_loss == b.metrics.train_loss
    assert a.metrics.evals == b.metrics.evals
    assert _params_equal(a.path / "theta1.safetensors", b.path / "theta1.safetensors")
    c = train(_cfg(seed=1), tmp_path / "a", data_dir=tiny_glue, progress=False)
    assert c.metrics.train_loss != a.metrics.train_loss


def test_kill_and_resume_equals_uninterrupted(tmp_path: Path, tiny_glue: Path) -> None:
    cfg = _cfg()
    ref = train(cfg, tmp_path / "ref", data_dir=tiny_glue, progress=False)
    # interrupted after step 5, one step past the last checkpoint (step 4): resume must recompute step 5
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", data_dir=tiny_glue, progress=False, _stop_after_step=5)
    rd = run_dir_for(tmp_path / "cut", cfg)
    assert (rd / "checkpoint.pt").exists() and not (rd / "metrics.json").exists()
    resumed = train(cfg, tmp_path / "cut", data_dir=tiny_glue, progress=False)
    assert resumed.metrics.train_loss == ref.metrics.train_loss
    assert resumed.metrics.evals == ref.metrics.evals
    assert _params_equal(ref.path / "theta1.safetensors", resumed.path / "theta1.safetensors")
    for (s1, p1), (s2, p2) in zip(ref.snapshot_paths(), resumed.snapshot_paths(), strict=True):
        assert s1 == s2
        if p1.exists():
            assert _params_equal(p1, p2)
    assert not (rd / "checkpoint.pt").exists()


def test_second_call_reuses_run(tmp_path: Path, tiny_glue: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg()
    first = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    monkeypatch.setattr("repro.models.load_model", lambda *a, **k: pytest.fail("retrained a finished run"))
    again = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    assert again.path == first.path and again.metrics == first.metrics


def test_training_leaves_global_rng_untouched(tmp_path: Path, tiny_glue: Path) -> None:
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    train(_cfg(), tmp_path, data_dir=tiny_glue, progress=False)
    assert torch.equal(torch.rand(4), expected)


def test_run_records_trajectory(tmp_path: Path, tiny_glue: Path) -> None:
    run = train(_cfg(), tmp_path, data_dir=tiny_glue, progress=False)
    m = run.metrics
    assert m.status == "complete" and m.total_steps == 2 * 3 and len(m.train_loss) == m.total_steps
    assert [e.step for e in m.evals] == [0, 3, 6]
    assert m.snapshot_steps == snapshot_steps(6, 4) and m.snapshot_steps[0] == 0 and m.snapshot_steps[-1] == 6
    traj = run.trajectory()
    assert len(traj) == len(m.snapshot_steps)
    assert [step for step, _ in traj] == m.snapshot_steps and traj[0][0] == 0
    theta0, theta1 = run.theta0(), run.theta1()
    assert all(torch.equal(traj[0][1][k], theta0[k]) for k in theta0)
    assert all(torch.equal(traj[-1][1][k], theta1[k]) for k in theta1)
    # intermediate snapshots (θ_t − θ0 in float16) lie between, close to the truth in relative terms
    mid = traj[1][1]
    moved = sum(float((mid[k] - theta0[k]).norm() ** 2) for k in theta0) ** 0.5
    assert moved > 0
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["provenance"]["packages"]["torch"] == torch.__version__
    assert TrainRun.load(run.path).config == run.config


def test_nan_loss_stops_with_saved_state(tmp_path: Path, tiny_glue: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nan_loss_from(monkeypatch, 3)
    cfg = _cfg()
    with pytest.raises(TrainingDivergedError, match="step 3.*Lower the learning rate"):
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    rd = run_dir_for(tmp_path, cfg)
    assert (rd / "diverged.safetensors").exists()
    run = TrainRun.load(rd)
    assert run.metrics.status == "diverged" and len(run.metrics.train_loss) == 3
    first_message = str(run.metrics.message)
    with pytest.raises(TrainingDivergedError, match="step 3.*Lower the learning rate") as again:
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False)  # recorded, not retried silently
    assert str(again.value) == first_message


def test_cli_train_and_reuse(tmp_path: Path, tiny_glue: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--task", "sst2", "--init", "pretrained", "--profile", "smoke", "--seed", "0",
            "--data-dir", str(tiny_glue), "--out", str(tmp_path), "--no-progress",
            "--set", "model=tiny-random", "--set", "train_size=32", "--set", "pretrained.epochs=1"]
    assert main(args) == 0
    assert "trained:" in capsys.readouterr().out
    assert main(args) == 0
    assert "reused:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "cola"], "unknown task 'cola'.*Known tasks: mnli, mrpc, rte, sst2"),
        (["--task", "sst2", "--profile", "fast"], "unknown profile 'fast'"),
        (["--task", "sst2", "--set", "nope=1"], "bad --set override"),
        (["--task", "sst2", "--set", "model=minilm-l9"], "unknown model 'minilm-l9'"),
        (["--task", "sst2", "--data-dir", "/nonexistent/glue"], "REPRO_DATA_DIR"),
    ],
)
def test_cli_bad_input_is_one_clear_error(argv: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--init", "scratch", "--out", str(tmp_path), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err


def test_out_of_memory_names_the_setting_to_lower(tmp_path: Path, tiny_glue: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from repro.errors import OutOfMemoryError

    real = torch.nn.functional

    def cross_entropy(logits, labels, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        if torch.is_grad_enabled():
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real.cross_entropy(logits, labels, *a, **k)

    monkeypatch.setattr(loop_mod, "F", SimpleNamespace(cross_entropy=cross_entropy))
    cfg = _cfg()
    with pytest.raises(OutOfMemoryError) as err:
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    assert str(err.value) == (
        f"out of GPU memory at batch size 16, max length {cfg.max_length}: lower `--set pretrained.batch_size=...`/"
        "`scratch.batch_size=...` or `--set max_length=...`; completed work up to the last checkpoint is kept in "
        f"{run_dir_for(tmp_path, cfg)}")
    assert isinstance(err.value.__cause__, torch.cuda.OutOfMemoryError)


def test_runs_with_the_same_start_store_theta0_once(tmp_path: Path, tiny_glue: Path) -> None:
    import os

    base = _cfg()
    longer = dataclasses.replace(base, hyper=dataclasses.replace(base.hyper, epochs=3))
    a = train(base, tmp_path, data_dir=tiny_glue, progress=False)
    b = train(longer, tmp_path, data_dir=tiny_glue, progress=False)
    c = train(_cfg(seed=1), tmp_path, data_dir=tiny_glue, progress=False)
    ia, ib, ic = (os.stat(r.path / "theta0.safetensors").st_ino for r in (a, b, c))
    assert ia == ib != ic  # same init and seed: one copy on disk; another seed: its own
    assert _params_equal(a.path / "theta0.safetensors", b.path / "theta0.safetensors")
    # the link changes nothing about the run: a fresh directory trains to the same θ1
    fresh = train(longer, tmp_path / "alone", data_dir=tiny_glue, progress=False)
    assert _params_equal(fresh.path / "theta1.safetensors", b.path / "theta1.safetensors")
    assert fresh.metrics.train_loss == b.metrics.train_loss
