"""Interrupted training keeps its work and says so truthfully: SIGTERM and SIGINT to a real ``repro train`` process
checkpoint the current step (not only the last periodic one), the message names that step, and resuming ends
bitwise equal to an uninterrupted run on the CPU. Checkpoints by elapsed time resume exactly too, and no finished
or diverged run keeps its resumable checkpoint."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from repro.cli import main
from repro.config import TrainHyper, get_profile
from repro.errors import TrainingDivergedError
from repro.training import run_dir_for, train
from repro.training.snapshots import load_params
from tests.conftest import nan_loss_from

REPO = Path(__file__).resolve().parent.parent
STEPS = 24  # 48 examples, batch 4, 2 epochs; checkpoint_every is 50, so no periodic checkpoint happens

# A `repro train` process whose steps are slowed down (so a signal lands mid-run) and which reports each step.
CHILD = """
import sys, time
from pathlib import Path
from types import SimpleNamespace
import torch
from repro.training import loop
from repro.cli import main

progress = Path(sys.argv[1])
real = torch.nn.functional.cross_entropy
def slow(*a, **k):
    if torch.is_grad_enabled():
        with progress.open("a") as f:
            f.write("step\\n")
        time.sleep(0.15)
    return real(*a, **k)
loop.F = SimpleNamespace(cross_entropy=slow)
sys.exit(main(sys.argv[2:]))
"""


def _args(out: Path, data: Path) -> list[str]:
    return ["train", "--task", "sst2", "--init", "scratch", "--profile", "smoke", "--seed", "3", "--no-progress",
            "--data-dir", str(data), "--out", str(out), "--set", "model=tiny-random", "--set", "train_size=48",
            "--set", "scratch.batch_size=4", "--set", "scratch.epochs=2"]


def _run_dir(out: Path) -> Path:
    (rd,) = (out / "train").iterdir()
    return rd


def _theta1_equal(a: Path, b: Path) -> bool:
    pa, pb = load_params(a / "theta1.safetensors"), load_params(b / "theta1.safetensors")
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_glue: Path) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    assert main(_args(out, tiny_glue)) == 0
    return _run_dir(out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_the_current_step_and_resume_is_exact(sig: signal.Signals, tmp_path: Path, tiny_glue: Path,
                                                           reference: Path) -> None:
    out, progress = tmp_path / "out", tmp_path / "progress"
    # the child computes with as many threads as this process (which trains the reference and resumes): the
    # bitwise comparison is between runs on the same thread count, as resuming on one machine is
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(progress), *_args(out, tiny_glue)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (progress.exists() and len(progress.read_text().splitlines()) >= 6):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the child never reached step 6"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    m = re.search(rf"interrupted by {sig.name}: saved a checkpoint at step (\d+) of {STEPS} of sst2/scratch/seed 3 "
                  r"in (\S+); rerun the same command to resume from it", err)
    assert m, err
    step = int(m.group(1))
    rd = _run_dir(out)
    assert Path(m.group(2)) == rd
    ck = torch.load(rd / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert int(ck["step"]) == step and 6 <= step < STEPS  # the signal's step, not a periodic one (there is none)
    assert not (rd / "metrics.json").exists()
    assert main(_args(out, tiny_glue)) == 0  # resume
    assert _theta1_equal(rd, reference)
    assert not (rd / "checkpoint.pt").exists()
    from repro.training import TrainRun

    assert TrainRun.load(rd).metrics.train_loss == TrainRun.load(reference).metrics.train_loss


def _cfg():  # noqa: ANN202
    cfg = get_profile("smoke").train_config("sst2", "scratch", 0)
    return dataclasses.replace(cfg, model="tiny-random", train_size=48, dev_size=32,
                               hyper=TrainHyper(learning_rate=1e-3, epochs=2, batch_size=16), checkpoint_every=1000,
                               snapshots=4)


def test_checkpoint_by_elapsed_time_resumes_exactly(tmp_path: Path, tiny_glue: Path) -> None:
    cfg = _cfg()
    ref = train(cfg, tmp_path / "ref", data_dir=tiny_glue, progress=False)
    with pytest.raises(KeyboardInterrupt):  # a kill after step 5: only the time-based checkpoints exist
        train(cfg, tmp_path / "cut", data_dir=tiny_glue, progress=False, checkpoint_seconds=0.0, _stop_after_step=5)
    rd = run_dir_for(tmp_path / "cut", cfg)
    assert int(torch.load(rd / "checkpoint.pt", map_location="cpu", weights_only=True)["step"]) == 5
    resumed = train(cfg, tmp_path / "cut", data_dir=tiny_glue, progress=False)
    assert resumed.metrics.train_loss == ref.metrics.train_loss
    assert _theta1_equal(resumed.path, ref.path)
    assert not (rd / "checkpoint.pt").exists()


def test_time_based_checkpoints_do_not_change_the_run_directory() -> None:
    import inspect

    from repro.config import TrainConfig

    assert "checkpoint_seconds" not in {f.name for f in dataclasses.fields(TrainConfig)}
    assert "checkpoint_seconds" in inspect.signature(train).parameters


def test_diverged_run_drops_its_checkpoint(tmp_path: Path, tiny_glue: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nan_loss_from(monkeypatch, 4)
    cfg = dataclasses.replace(_cfg(), checkpoint_every=2)  # a checkpoint at step 2, divergence at step 4
    with pytest.raises(TrainingDivergedError):
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    rd = run_dir_for(tmp_path, cfg)
    assert (rd / "diverged.safetensors").exists() and (rd / "metrics.json").exists()
    assert not (rd / "checkpoint.pt").exists()


def test_stale_checkpoint_of_a_finished_run_is_removed(tmp_path: Path, tiny_glue: Path) -> None:
    cfg = _cfg()
    run = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    (run.path / "checkpoint.pt").write_bytes(b"left by a kill between metrics.json and its deletion")
    train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    assert not (run.path / "checkpoint.pt").exists()
    assert (run.path / "theta0.safetensors").exists() and (run.path / "theta1.safetensors").exists()
    assert all(p.exists() for s, p in run.snapshot_paths() if 0 < s < run.metrics.total_steps)
