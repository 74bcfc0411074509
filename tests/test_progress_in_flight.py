"""Issue 40: the plan's progress moves while a job runs, says what it counts, settles its ETA, and a log shows life.

The display is driven by ticks from the loops (:mod:`repro.progress_sink`): training per optimizer step, the
landscape instruments per evaluated batch set and per Hessian-vector product. Time comes from an injected clock,
so nothing here sleeps. Training and analysis are replaced by fakes that tick, except where the loop itself is under
test (the resume line, the evaluator's and the Hessian's ticks), on the tiny model the interrupt tests use.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from repro import progress_sink
from repro.config import TrainHyper, get_profile
from repro.data import describe_source
from repro.pipeline import plan as plan_mod
from repro.pipeline import progress as progress_mod
from repro.pipeline.jobs import HVP_FORWARDS, plan_jobs, run_key
from repro.pipeline.plan import execute, job_kinds
from repro.pipeline.progress import CostProgress
from repro.training import run_dir_for, train

REPO = Path(__file__).resolve().parent.parent


class _Clock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


def _heartbeats(text: str) -> list[str]:
    return [line for line in text.splitlines() if "; now: " in line]


# -- the display ----------------------------------------------------------------------------------------------------
def test_the_fraction_moves_with_the_ticks_of_the_running_job() -> None:
    clock = _Clock()
    bar = CostProgress(100.0, "p", stream=io.StringIO(), counts={"train": 1, "analysis": 1}, clock=clock)
    bar.begin("train", "run", 40.0)
    with progress_sink.reporting_to(bar.sink()):
        progress_sink.fraction(5, 20)  # training: a quarter of its optimizer steps
        assert bar.fraction() == pytest.approx(0.25 * 40 / 100)
        progress_sink.forwards(1000)  # a training run's dev evaluation has no price: ignored
        assert bar.fraction() == pytest.approx(0.10)
        progress_sink.fraction(20, 20)  # every step, but the run is not written yet: held below its full cost
        assert bar.fraction() == pytest.approx(progress_mod.IN_JOB_CAP * 0.4)
    bar.end()
    assert bar.fraction() == pytest.approx(0.4)
    bar.begin("analysis", "an", 60.0)
    with progress_sink.reporting_to(bar.sink({"forward": 0.5, "hvp": 2.5})):
        progress_sink.forwards(12)  # 6 units of 60
        progress_sink.hvps(6)  # 15 more
        assert bar.fraction() == pytest.approx((40 + 21) / 100)
    progress_sink.forwards(1000)  # outside the job's block: nobody listens
    assert bar.fraction() == pytest.approx(0.61)
    bar.end()
    assert bar.fraction() == 1.0


def test_a_failing_display_never_stops_the_work() -> None:
    class Broken:
        def fraction(self, done: float) -> None:
            raise RuntimeError("display broke")

        def work(self, kind: str, examples: int) -> None:
            raise RuntimeError("display broke")

    with progress_sink.reporting_to(Broken()):
        progress_sink.fraction(1, 2)  # swallowed, and the sink is switched off for the rest of the block
        progress_sink.hvps(3)


def test_heartbeat_lines_come_at_most_every_interval_and_at_least_once_a_minute() -> None:
    clock, stream = _Clock(), io.StringIO()
    bar = CostProgress(1000.0, "p", stream=stream, counts={"train": 1}, clock=clock)
    bar.begin("train", "long", 1000.0)
    stamps = []
    sink = bar.sink()
    for step in range(1, 401):  # a 20-minute run of 3-second steps, and no job ends
        clock.t += 3.0
        before = len(_heartbeats(stream.getvalue()))
        sink.fraction(step / 400)
        if len(_heartbeats(stream.getvalue())) > before:
            stamps.append(clock.t)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) >= 19
    assert all(progress_mod.LOG_EVERY_SECONDS <= g <= 60.0 for g in gaps)
    assert stamps[0] - 500.0 <= 60.0
    assert "now: normal training run long" in _heartbeats(stream.getvalue())[0]


def test_the_eta_waits_for_enough_work_and_time_then_extrapolates_the_whole_run() -> None:
    clock = _Clock()
    bar = CostProgress(100.0, "p", stream=io.StringIO(), counts={"analysis": 1}, clock=clock)
    bar.begin("analysis", "a", 100.0)
    sink = bar.sink({"forward": 1.0})
    clock.t += 600.0
    sink.work("forward", 0)
    assert bar.eta_seconds() is None  # ten minutes, but no work measured yet
    sink.work("forward", 1)  # 1 % after 10 minutes
    assert bar.eta_seconds() == pytest.approx(600.0 * 0.99 / 0.01)
    early = CostProgress(100.0, "q", stream=io.StringIO(), counts={"analysis": 1}, clock=clock)
    early.begin("analysis", "a", 100.0)
    early.sink({"forward": 1.0}).work("forward", 50)
    clock.t += progress_mod.ETA_MIN_SECONDS - 1
    assert early.eta_seconds() is None  # half the work, but under a minute: model loading, a cached job
    clock.t += 1
    f = early.fraction()
    assert early.eta_seconds() == pytest.approx(progress_mod.ETA_MIN_SECONDS * (1 - f) / f)
    assert "about 1 min left" in early.summary()
    assert progress_mod._minutes(3900) == "about 1 h 05 min left" and progress_mod._minutes(20) == \
        "under a minute left"


def test_the_eta_of_a_resumed_plan_counts_only_the_work_done_now() -> None:
    """A rerun reuses finished jobs in no time (they tick nothing): the rate is that of the work this process does,
    so with half the plan on disk and a quarter of it done in 10 minutes, 30 minutes are left, not 3 min 20 s."""
    clock = _Clock()
    bar = CostProgress(100.0, "p", stream=io.StringIO(), counts={"train": 3}, clock=clock)
    bar.begin("train", "cached", 50.0)
    bar.end()  # no tick: reused from disk
    bar.begin("train", "half", 50.0)
    with progress_sink.reporting_to(bar.sink()):
        clock.t += 600.0
        progress_sink.fraction(1, 2)
    assert bar.fraction() == pytest.approx(0.75)
    assert bar.eta_seconds() == pytest.approx(600.0 * 0.25 / 0.25)
    slow = CostProgress(100.0, "s", stream=io.StringIO(), counts={"train": 2}, clock=clock)
    slow.begin("train", "untick", 50.0)
    clock.t += progress_mod.REUSED_SECONDS
    slow.end()  # no tick, but it took time: computed work (a loop without ticks), kept in the rate
    assert slow.reused == 0.0
    failed = CostProgress(100.0, "q", stream=io.StringIO(), counts={"train": 2}, clock=clock)
    failed.begin("train", "boom", 50.0)
    failed.end(error="RuntimeError")  # a job that failed at once is not reused work; it is not excluded
    assert failed.reused == 0.0


def test_the_lines_count_runs_and_analyses_and_name_each_kind_of_job() -> None:
    clock, stream = _Clock(), io.StringIO()
    counts = {"train": 1, "extended": 1, "partner": 1, "analysis": 1}
    bar = CostProgress(40.0, "claims x", stream=stream, counts=counts, clock=clock)
    for kind in counts:
        bar.begin(kind, f"{kind}-key", 10.0)
        clock.t += 1
        bar.end()
    lines = stream.getvalue().splitlines()
    assert lines[0] == ("[claims x] 3 training runs (1 normal, 1 extended (overfitting), 1 cross-task partner) and 1 "
                        "analysis to do; percentages of the work are weighted by the expected cost of each job")
    starts = [line for line in lines if "] start " in line]
    assert starts == ["[claims x] start normal training run 1/1: train-key",
                      "[claims x] start extended (overfitting) training run 1/1: extended-key",
                      "[claims x] start cross-task partner run 1/1: partner-key",
                      "[claims x] start analysis 1/1: analysis-key"]
    assert "runs 3/3 trained, analyses 0/1, 75.0% of the work" in lines[-3]
    assert lines[-1].endswith("runs 3/3 trained, analyses 1/1, 100.0% of the work, 0:04 elapsed")


def test_job_kinds_tell_normal_extended_and_partner_runs_apart() -> None:
    prof = dataclasses.replace(get_profile("smoke"), tasks=("sst2",), partner_tasks=("mrpc",))
    train_jobs, analyses = plan_jobs(prof, "src")
    kinds = job_kinds(analyses)
    assert {kinds[j.key] for j in train_jobs} == {"train", "extended", "partner"}
    for a in analyses:
        assert kinds[run_key(a.run)] == "train" and kinds[run_key(a.overfit)] == "extended"
        assert a.partner is not None and kinds[run_key(a.partner)] == "partner"
    two = dataclasses.replace(get_profile("smoke"), tasks=("sst2", "mrpc"))
    _, analyses2 = plan_jobs(two, "src")
    assert "partner" not in job_kinds(analyses2).values()  # each partner is another task's normal run


# -- through execute --------------------------------------------------------------------------------------------------
@pytest.fixture
def ticking_plan(monkeypatch: pytest.MonkeyPatch):
    """execute with fakes that tick like the real jobs (30 s per training step, 20 s per evaluated batch set)."""
    clock = _Clock()
    seen: dict[str, Any] = {"train_progress": []}

    def fake_train(job, out, *, data_dir, device, progress):  # noqa: ANN001, ANN202
        seen["train_progress"].append(progress)
        for step in range(1, 5):
            clock.t += 30.0
            progress_sink.fraction(step, 4)

    def fake_analysis(job, profile, out, failed, *, data_dir, device):  # noqa: ANN001, ANN202
        for _ in range(6):
            clock.t += 20.0
            progress_sink.forwards(profile.landscape.eval_train_size)
            progress_sink.hvps(profile.landscape.hessian_examples)

    monkeypatch.setattr(plan_mod, "run_training_job", fake_train)
    monkeypatch.setattr(plan_mod, "run_analysis_job", fake_analysis)
    monkeypatch.setattr(plan_mod, "CostProgress", functools.partial(CostProgress, clock=clock))
    return seen


@pytest.mark.parametrize("bars", [True, False])
def test_without_a_terminal_or_with_no_progress_the_plan_writes_plain_lines(
        ticking_plan: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], bars: bool) -> None:
    """stderr is not a terminal here; ``--no-progress`` (progress=False) hides bars only, so both write lines."""
    prof = dataclasses.replace(get_profile("smoke"), tasks=("sst2",), partner_tasks=("mrpc",), seeds=(0,))
    train_jobs, analyses = plan_jobs(prof, describe_source(None))
    execute(prof, tmp_path, progress=bars)
    err = capsys.readouterr().err
    assert "weighted by the expected cost of each job" in err.splitlines()[0]
    for label in ("normal training run", "extended (overfitting) training run", "cross-task partner run", "analysis"):
        assert f"start {label}" in err and f"done  {label}" in err
    assert len(_heartbeats(err)) >= len(train_jobs)  # 2 minutes per run: heartbeats inside every job
    assert f"runs {len(train_jobs)}/{len(train_jobs)} trained, analyses {len(analyses)}/{len(analyses)}" in err
    percents = [float(m) for m in re.findall(r"([\d.]+)% of the work", err)]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert ticking_plan["train_progress"] == [False] * len(train_jobs)  # no terminal: no inner bars


def test_analysis_ticks_are_priced_as_the_plan_prices_an_analysis(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    prof = dataclasses.replace(get_profile("smoke"), tasks=("sst2",), partner_tasks=("mrpc",), seeds=(0,))
    seen: list[float] = []

    def fake_analysis(job, profile, out, failed, *, data_dir, device):  # noqa: ANN001, ANN202
        sink = progress_sink._current.get()
        progress_sink.forwards(30)
        progress_sink.hvps(2)
        seen.append(sink.units)

    monkeypatch.setattr(plan_mod, "run_training_job", lambda *a, **k: None)
    monkeypatch.setattr(plan_mod, "run_analysis_job", fake_analysis)
    monkeypatch.setattr(plan_mod, "CostProgress", functools.partial(CostProgress, stream=io.StringIO()))
    execute(prof, tmp_path, progress=False)
    per = 1.0 / (3.0 * prof.pretrained.batch_size)  # jobs.analysis_cost: forwards / (3 × batch size)
    assert seen == [pytest.approx((30 + 2 * HVP_FORWARDS) * per)] * 2


# -- the loops' ticks ---------------------------------------------------------------------------------------------
class _Sink:
    def __init__(self) -> None:
        self.fractions: list[float] = []
        self.calls: list[tuple[str, int]] = []

    def fraction(self, done: float) -> None:
        self.fractions.append(done)

    def work(self, kind: str, examples: int) -> None:
        self.calls.append((kind, examples))


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
    logits = model(batch["x"])
    loss = nn.functional.cross_entropy(logits, batch["labels"], reduction="sum")
    return loss, (logits.argmax(-1) == batch["labels"]).sum(), int(batch["labels"].shape[0])


def test_the_evaluator_and_the_hessian_tick_without_changing_a_number() -> None:
    from repro.curvature.operators import HessianOperator
    from repro.landscape.evaluate import GridEvaluator, evaluate
    from repro.landscape.params import model_params

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    batches = [{"x": torch.randn(5, 3), "labels": torch.tensor([0, 1, 0, 1, 1])},
               {"x": torch.randn(4, 3), "labels": torch.tensor([1, 0, 0, 1])}]
    quiet = evaluate(model, batches, _loss)
    sink = _Sink()
    with progress_sink.reporting_to(sink):
        rng = torch.get_rng_state()
        loud = evaluate(model, batches, _loss)
        base = model_params(model)
        d = base.zeros_like()
        with GridEvaluator(model, base, [d], {"train": batches}, loss_fn=_loss, logits_fn=None) as ev:
            ev.evaluate_points([(0.0,), (1.0,)])
        op = HessianOperator(model, batches, loss_fn=_loss)
        hv = op.hvp(base)
        assert torch.equal(torch.get_rng_state(), rng)  # a tick draws no random number
    assert loud == quiet
    assert sink.calls == [("forward", 9)] * 3 + [("hvp", 9)]
    with progress_sink.reporting_to(None):
        assert all(torch.equal(a, b) for a, b in zip(op.hvp(base).tensors, hv.tensors))


def _cfg():  # noqa: ANN202 -- the tiny run of tests/test_interrupts.py
    cfg = get_profile("smoke").train_config("sst2", "scratch", 0)
    return dataclasses.replace(cfg, model="tiny-random", train_size=48, dev_size=32,
                               hyper=TrainHyper(learning_rate=1e-3, epochs=2, batch_size=16), checkpoint_every=1000,
                               snapshots=4)


def test_training_ticks_each_step_and_says_when_it_resumes_or_reuses(tmp_path: Path, tiny_glue: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg()
    sink = _Sink()
    with pytest.raises(KeyboardInterrupt), progress_sink.reporting_to(sink):
        train(cfg, tmp_path, data_dir=tiny_glue, progress=False, checkpoint_seconds=0.0, _stop_after_step=2)
    assert sink.fractions == [1 / 6, 2 / 6]  # 48 examples, batch 16, 2 epochs: 6 steps
    assert "resuming" not in capsys.readouterr().err
    with progress_sink.reporting_to(sink):
        run = train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    assert sink.fractions[2:] == [k / 6 for k in range(3, 7)]  # a resumed run goes on from where it was
    name = run_dir_for(tmp_path, cfg).name
    err = capsys.readouterr().err
    assert err.splitlines() == [f"resuming sst2/scratch/seed 0 ({name}) from step 2 of 6"]
    train(cfg, tmp_path, data_dir=tiny_glue, progress=False)
    assert capsys.readouterr().err.splitlines() == [f"reusing sst2/scratch/seed 0 ({name}): already trained, 6 steps"]
    assert math.isfinite(run.metrics.train_loss[-1])


# -- on a terminal ------------------------------------------------------------------------------------------------
PTY_SECONDS = 60.0


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_repro_claims_on_a_terminal_shows_the_plan_and_a_moving_bar_at_once(tmp_path: Path, tiny_glue: Path) -> None:
    """What a person sees in the first seconds of ``repro claims`` on a terminal: the plan in runs and analyses, the
    weighting, and a bar that moves during the first training run (killed as soon as it did)."""
    import pty
    import select

    from tests.plan_fixtures import tiny_profile_overrides

    sets = [a for s in tiny_profile_overrides() for a in s.split(" ", 1)]
    args = [sys.executable, "-m", "repro", "claims", "--profile", "smoke", "--tasks", "sst2", "--seeds", "1",
            "--data-dir", str(tiny_glue), "--out", str(tmp_path / "claims"), "--device", "cpu", *sets]
    master, slave = pty.openpty()
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="120")
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + PTY_SECONDS
    try:
        while time.monotonic() < deadline and not re.search(rb"\r\s*[1-9]\d?% \|", seen):
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    text = seen.decode(errors="replace")
    assert "weighted by the expected cost of each job" in text, text[-2000:]
    assert "training runs (" in text and "analyses to do" in text
    assert re.search(r"\r\s*[1-9]\d?% \|", text), text[-2000:]  # the bar moved within its first jobs
    assert "runs 0/" in text and "; now: " in text and "training run" in text
