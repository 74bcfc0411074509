"""The plan's orchestration against its contract, with the training and the analysis replaced by recorders.

``plan_jobs`` decides which runs exist and which partner gives each analysis its δ2; ``execute`` decides which
process runs which job, in which phase, with which failures known, and what the progress bar and the timings say;
``run_plan`` ties them together. The end-to-end tests see only their result on a tiny plan, where most mistakes
(a partner from the wrong task, training and analysis interleaved, a failure lost between phases, a wrong share of
a shard or a worker) leave the numbers unchanged. These tests state each rule and fail when it is broken; they are
the tests the mutation notes (tests/MUTATION.md) asked for.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from repro.config import get_profile
from repro.data import describe_source
from repro.models import INITS
from repro.pipeline import plan as plan_mod
from repro.pipeline import progress as progress_mod
from repro.pipeline.jobs import (
    analysis_cost,
    deal,
    needed_training,
    plan_jobs,
    run_key,
    train_cost,
)
from repro.pipeline.plan import Outcomes, execute, run_plan
from repro.pipeline.progress import CostProgress
from tests.test_runner_summary import _Tty


def _profile(tasks: tuple[str, ...] = ("sst2", "mrpc", "rte"), seeds: tuple[int, ...] = (1, 2)):
    return dataclasses.replace(get_profile("standard"), tasks=tasks, seeds=seeds)


# -- plan_jobs ----------------------------------------------------------------------------------------------------
def test_plan_jobs_builds_every_analysis_from_its_definition() -> None:
    prof = _profile()
    train, analyses = plan_jobs(prof, "src-x")
    expected_order = [(s.name, seed, task, init) for s in prof.settings for seed in prof.seeds for task in prof.tasks
                      for init in INITS]
    assert [(a.setting, a.seed, a.task, a.init) for a in analyses] == expected_order
    settings = {s.name: s for s in prof.settings}
    nxt = {"sst2": "mrpc", "mrpc": "rte", "rte": "sst2"}  # each task's partner is the next one, cyclically
    for a in analyses:
        s = settings[a.setting]
        assert a.run == prof.train_config(a.task, a.init, a.seed, s, data_source="src-x")
        assert a.overfit == prof.train_config(a.task, a.init, a.seed, s, overfit=True, data_source="src-x")
        assert a.partner == prof.train_config(nxt[a.task], a.init, a.seed, s, data_source="src-x")
        assert a.run.data_source == "src-x" and a.cost == analysis_cost(prof, True)
        assert a.key == f"{a.setting}-{run_key(a.run)}"
    # training jobs: every run and extended run once (settings share their extended runs), each at its own cost
    needed = {run_key(c): c for a in analyses for c in (a.run, a.overfit)}
    assert [j.key for j in train] == list(dict.fromkeys(run_key(c) for a in analyses for c in (a.run, a.overfit)))
    assert {j.key: j.config for j in train} == needed
    assert all(j.cost == train_cost(j.config) for j in train)
    assert len(train) < 2 * len(analyses)  # the extended runs are shared between settings


def test_a_single_task_plan_has_no_partner_and_no_surface_cost() -> None:
    prof = _profile(tasks=("sst2",), seeds=(1,))
    _train, analyses = plan_jobs(prof, "auto")
    assert len(analyses) == len(prof.settings) * len(INITS)
    assert all(a.partner is None and a.cost == analysis_cost(prof, False) for a in analyses)
    assert analysis_cost(prof, False) < analysis_cost(prof, True)
    assert all(a.needs() == (a.run, a.overfit) for a in analyses)


def test_without_a_shared_extended_setting_each_setting_has_its_own_extended_runs() -> None:
    """``extended_setting=None``: the extended (§5.3) run of an analysis is trained in that analysis's own setting."""
    prof = dataclasses.replace(_profile(tasks=("sst2", "mrpc"), seeds=(1,)), extended_setting=None)
    assert len({(s.lr_factor, s.epoch_factor) for s in prof.settings}) == len(prof.settings) > 1
    _, analyses = plan_jobs(prof, "auto")
    settings = {s.name: s for s in prof.settings}
    for a in analyses:
        assert a.overfit == prof.train_config(a.task, a.init, a.seed, settings[a.setting], overfit=True)
    by_setting = {a.setting: a.overfit.hyper for a in analyses if (a.task, a.init) == ("sst2", "pretrained")}
    assert len(set(by_setting.values())) == len(prof.settings)


def test_analysis_cost_counts_one_step_instruments_and_group_traces_of_at_least_one_probe() -> None:
    """The issue-19 instruments at their smallest: one Lanczos step per depth group (2 products + 1 trace probe
    even when no trace samples are asked: the estimator's minimum) and one adaptive-sharpness step (2 gradients)."""

    HVP_FORWARDS = 5.0  # the plan's costs use the assumed value whatever the machine (analysis_cost)

    prof = _profile()
    base = dataclasses.replace(prof, landscape=dataclasses.replace(
        prof.landscape, group_curvature_iters=0, adaptive_sharpness_steps=0))
    small = dataclasses.replace(prof, landscape=dataclasses.replace(
        prof.landscape, group_curvature_iters=1, group_trace_samples=0, adaptive_sharpness_steps=1))
    n, bs = prof.landscape.hessian_examples, prof.pretrained.batch_size
    extra = 3 * (1 + 1 + 1) * n * HVP_FORWARDS + 2 * n * 3
    assert analysis_cost(small) - analysis_cost(base) == pytest.approx(extra / (3.0 * bs), rel=1e-12)


# -- execute ------------------------------------------------------------------------------------------------------
class _Bar:
    """Records what execute tells its progress display."""

    made: ClassVar[list[_Bar]] = []

    def __init__(self, total: float, desc: str, *, enabled: bool = True, bars: bool = True, stream: Any = None,
                 counts: dict[str, int] | None = None, clock: Any = None) -> None:
        self.total, self.desc, self.enabled, self.bars = total, desc, enabled, bars
        self.counts = dict(counts or {})
        self.jobs = sum(self.counts.values())
        self.advances: list[tuple[float, str]] = []  # (cost, "<kind> <key>") of each job that ended
        self.errors: list[str | None] = []
        self._job: tuple[str, str, float] | None = None
        self.closed = False
        self.is_tty = True
        _Bar.made.append(self)

    def begin(self, kind: str, name: str, cost: float) -> None:
        self._job = (kind, name, cost)

    def sink(self, prices: Any = None) -> None:
        return None

    def end(self, error: str | None = None) -> None:
        assert self._job is not None
        kind, name, cost = self._job
        self.advances.append((cost, f"{'analysed' if kind == 'analysis' else 'trained'} {name}"))
        self.errors.append(error)
        self._job = None

    def close(self) -> None:
        self.closed = True


class _Recorder:
    def __init__(self, fail_train: set[str] = frozenset(), fail_analysis: set[str] = frozenset(),
                 sleep: float = 0.0) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_train, self.fail_analysis, self.sleep = fail_train, fail_analysis, sleep

    def train(self, job, out, *, data_dir, device, progress):
        self.calls.append(("train", job.key, {"out": out, "data_dir": data_dir, "device": device, "progress": progress}))
        time.sleep(self.sleep)
        return "boom" if job.key in self.fail_train else None

    def analyse(self, job, profile, out, failed_training, *, data_dir, device):
        self.calls.append(("analyse", job.key, {"out": out, "failed": dict(failed_training), "data_dir": data_dir,
                                                    "device": device, "profile": profile}))
        time.sleep(self.sleep / 2)
        return "bad" if job.key in self.fail_analysis else None


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch):
    def make(**kw: Any) -> _Recorder:
        rec = _Recorder(**kw)
        monkeypatch.setattr(plan_mod, "run_training_job", rec.train)
        monkeypatch.setattr(plan_mod, "run_analysis_job", rec.analyse)
        monkeypatch.setattr(plan_mod, "CostProgress", _Bar)
        _Bar.made = []
        return rec

    return make


def test_execute_trains_everything_then_analyses_with_the_training_failures_known(recorder, tmp_path: Path) -> None:
    prof = _profile(tasks=("sst2", "mrpc"), seeds=(1,))
    train, analyses = plan_jobs(prof, describe_source("/data"))
    bad = train[1].key
    rec = recorder(fail_train={bad}, fail_analysis={analyses[2].key}, sleep=0.02)
    jobs, failures, t_train, t_an = execute(prof, tmp_path, data_dir="/data", device="cpu", progress=True)
    assert jobs == analyses
    kinds = [k for k, _, _ in rec.calls]
    assert kinds == ["train"] * len(train) + ["analyse"] * len(analyses)  # two phases, never interleaved
    assert sorted(key for k, key, _ in rec.calls if k == "train") == sorted(j.key for j in train)
    assert [key for k, key, _ in rec.calls if k == "analyse"] == [j.key for j in deal(analyses, 0, 1)]
    for kind, _, kw in rec.calls:
        assert kw["out"] == tmp_path and kw["data_dir"] == "/data" and kw["device"] == "cpu"
        if kind == "train":
            assert kw["progress"] is True  # a terminal and one process: the run's own bar may draw
        else:
            assert kw["failed"] == {bad: "boom"} and kw["profile"] == prof
    assert failures == Outcomes({bad: "boom"}, {analyses[2].key: "bad"})
    assert t_train >= 0.02 * len(train) and t_an >= 0.01 * len(analyses)
    assert t_an < t_train  # each measured over its own phase
    (bar,) = _Bar.made
    assert bar.desc == f"claims {prof.name}" and bar.enabled is True and bar.closed
    assert bar.jobs == len(train) + len(analyses)
    assert bar.total == pytest.approx(sum(j.cost for j in train) + sum(j.cost for j in analyses))
    by_label = {label: cost for cost, label in bar.advances}
    assert [label for _, label in bar.advances] == (
        [f"trained {key}" for k, key, _ in rec.calls if k == "train"]
        + [f"analysed {key}" for k, key, _ in rec.calls if k == "analyse"])
    assert by_label[f"analysed {analyses[0].key}"] == analyses[0].cost
    assert by_label[f"trained {train[0].key}"] == train[0].cost


def test_execute_without_progress_keeps_every_bar_off(recorder, tmp_path: Path) -> None:
    """--no-progress hides the bars (the plan's and each run's), not the plain progress lines."""
    rec = recorder()
    execute(_profile(tasks=("sst2",), seeds=(1,)), tmp_path, progress=False)
    assert _Bar.made[0].bars is False and _Bar.made[0].enabled is True
    assert all(kw["progress"] is False for k, _, kw in rec.calls if k == "train")


def test_a_shard_runs_its_analyses_and_every_run_they_read(recorder, tmp_path: Path) -> None:
    prof = _profile(tasks=("sst2", "mrpc", "rte"), seeds=(1,))
    train, analyses = plan_jobs(prof, describe_source(None))
    rec = recorder()
    jobs, _, _, _ = execute(prof, tmp_path, shard=(1, 3))
    mine = tuple(deal(analyses, 1, 3))
    assert jobs == mine
    assert [key for k, key, _ in rec.calls if k == "analyse"] == [j.key for j in mine]
    want = needed_training(mine, train)
    assert sorted(key for k, key, _ in rec.calls if k == "train") == sorted(j.key for j in want)
    assert len(want) < len(train)
    assert _Bar.made[0].total == pytest.approx(sum(j.cost for j in want) + sum(j.cost for j in mine))



class _FrozenSplit:
    """A shard plan whose shard ``i`` is every third analysis from ``i``, recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, tuple[Any, ...]]] = []

    def jobs_of(self, index: int, jobs: Any) -> tuple[Any, ...]:
        self.asked.append((index, tuple(jobs)))
        return tuple(jobs)[index::3]


def test_a_shard_of_a_frozen_shard_plan_runs_that_plans_analyses(recorder, tmp_path: Path) -> None:
    """With a shard plan, shard i is the plan's split (not the round-robin deal), looked up by the shard's index."""
    prof = _profile(tasks=("sst2", "mrpc", "rte"), seeds=(1,))
    train, analyses = plan_jobs(prof, describe_source(None))
    split = _FrozenSplit()
    rec = recorder()
    jobs, _, _, _ = execute(prof, tmp_path, shard=(2, 5), shard_plan=split)
    assert split.asked == [(2, analyses)]
    assert jobs == analyses[2::3] and jobs != tuple(deal(analyses, 2, 5))
    assert [key for k, key, _ in rec.calls if k == "analyse"] == [j.key for j in jobs]
    assert sorted(key for k, key, _ in rec.calls if k == "train") == sorted(
        j.key for j in needed_training(jobs, train))


def test_execute_draws_its_bar_by_default_and_times_each_phase(recorder, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([100.0, 103.0, 110.0])  # before training, after the training barrier, after the analyses
    monkeypatch.setattr(plan_mod.time, "perf_counter", lambda: next(ticks))
    recorder()
    _, _, t_train, t_an = execute(_profile(tasks=("sst2",), seeds=(1,)), tmp_path)
    assert (t_train, t_an) == (3.0, 7.0)
    assert _Bar.made[0].enabled is True


class _TwoWorkers:
    """Rank 1 of 2, with rank 0's failures arriving through gather."""

    rank, world, distributed = 1, 2, True

    def __init__(self) -> None:
        self.gathered: list[Outcomes] = []

    def gather(self, obj: Outcomes) -> list[Outcomes]:
        self.gathered.append(Outcomes(dict(obj.train), dict(obj.analysis)))
        other = Outcomes({"other-run": "oom on rank 0"}, {"other-analysis": "nan"} if len(self.gathered) > 1 else {})
        return [other, obj]


def test_a_worker_runs_its_share_and_learns_the_others_failures(recorder, tmp_path: Path) -> None:
    prof = _profile(tasks=("sst2", "mrpc"), seeds=(1,))
    train, analyses = plan_jobs(prof, describe_source(None))
    workers = _TwoWorkers()
    rec = recorder(fail_train={deal(train, 1, 2)[0].key})
    jobs, failures, _, _ = execute(prof, tmp_path, workers=workers, progress=True)
    assert jobs == analyses  # the whole plan's jobs: every rank assembles all the evidence
    assert [key for k, key, _ in rec.calls if k == "train"] == [j.key for j in deal(train, 1, 2)]
    assert [key for k, key, _ in rec.calls if k == "analyse"] == [j.key for j in deal(analyses, 1, 2)]
    mine_failed = deal(train, 1, 2)[0].key
    for kind, _, kw in rec.calls:
        if kind == "train":
            assert kw["progress"] is False  # several processes: no inner bars
        else:
            assert kw["failed"] == {"other-run": "oom on rank 0", mine_failed: "boom"}
    assert len(workers.gathered) == 2  # one barrier after each phase
    assert failures == Outcomes({"other-run": "oom on rank 0", mine_failed: "boom"}, {"other-analysis": "nan"})
    (bar,) = _Bar.made
    assert bar.enabled is False and bar.desc == f"claims {prof.name} worker 1/2"  # only rank 0 draws
    assert bar.jobs == len(deal(train, 1, 2)) + len(deal(analyses, 1, 2))


def test_the_bar_is_closed_when_a_job_raises(recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder()

    def stop(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(plan_mod, "run_training_job", stop)
    with pytest.raises(KeyboardInterrupt):
        execute(_profile(tasks=("sst2",), seeds=(1,)), tmp_path)
    assert _Bar.made[0].closed


# -- run_plan -----------------------------------------------------------------------------------------------------
def test_run_plan_resolves_tasks_and_seeds_and_returns_the_timings(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_execute(profile, out, **kw):
        seen.update(profile=profile, out=out, **kw)
        _, jobs = plan_jobs(profile, "auto")
        return jobs, Outcomes({"r": "x"}, {}), 1.5, 2.5

    def fake_collect(jobs, out, failures):
        seen["collected"] = (jobs, out, failures)
        return ()

    monkeypatch.setattr(plan_mod, "execute", fake_execute)
    monkeypatch.setattr(plan_mod, "collect_evidence", fake_collect)
    res = run_plan(get_profile("standard"), str(tmp_path), data_dir="/d", device="cpu", tasks=["mrpc"], seeds=[2],
                   progress=False)
    assert seen["profile"].tasks == ("mrpc",) and seen["profile"].seeds == (2,)
    assert (seen["data_dir"], seen["device"], seen["progress"]) == ("/d", "cpu", False)
    assert seen["collected"][1] == tmp_path and seen["collected"][2] == Outcomes({"r": "x"}, {})
    assert (res.train_seconds, res.analysis_seconds, res.failures) == (1.5, 2.5, Outcomes({"r": "x"}, {}))
    assert res.evidence == () and res.pairs == ()
    run_plan(get_profile("standard"), str(tmp_path), tasks=["mrpc"], seeds=[2])  # the defaults
    assert (seen["data_dir"], seen["device"], seen["progress"]) == (None, None, True)


def test_a_training_job_trains_its_config_under_out_from_the_given_data(tiny_glue: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """run_training_job hands train() the job's config, the plan's output folder and its data directory: a missing
    data directory is the user's error (raised), not a failed run, and the run lands under ``out``."""
    from repro.errors import DataError
    from repro.pipeline.jobs import TrainJob
    from repro.pipeline.plan import run_training_job
    from repro.training import run_dir_for

    cfg = dataclasses.replace(get_profile("smoke").train_config("sst2", "scratch", 0), model="tiny-random",
                              train_size=16, dev_size=8, hyper=dataclasses.replace(
                                  get_profile("smoke").hyper("scratch"), epochs=1, batch_size=16))
    job = TrainJob(run_key(cfg), cfg, train_cost(cfg))
    assert run_training_job(job, tmp_path / "out", data_dir=tiny_glue, device="cpu", progress=False) is None
    assert (run_dir_for(tmp_path / "out", cfg) / "metrics.json").exists()
    with pytest.raises(DataError):
        run_training_job(job, tmp_path / "other", data_dir=tmp_path / "no-such-glue", device="cpu", progress=False)

    # the analysis of that run, in a single-task plan: no partner, so analyze_run gets None (no cross-task plane)
    from repro.pipeline.jobs import AnalysisJob
    from repro.pipeline.plan import run_analysis_job

    seen: dict[str, Any] = {}

    def fake_analyze(run, partner, profile, setting, out, *, data_dir, device):  # noqa: ANN001, ANN202
        seen.update(run=run.path, partner=partner, setting=setting, out=out, data_dir=data_dir, device=device)

    monkeypatch.setattr(plan_mod, "analyze_run", fake_analyze)
    ajob = AnalysisJob("base", "sst2", "scratch", 0, cfg, cfg, None, 1.0)
    prof = get_profile("smoke")
    assert run_analysis_job(ajob, prof, tmp_path / "out", {}, data_dir=tiny_glue, device="cpu") is None
    assert seen == {"run": run_dir_for(tmp_path / "out", cfg), "partner": None, "setting": "base",
                    "out": tmp_path / "out", "data_dir": tiny_glue, "device": "cpu"}


# -- CostProgress -------------------------------------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _job(bar: CostProgress, clock: _Clock, cost: float, seconds: float, kind: str = "train", name: str = "j",
         error: str | None = None) -> None:
    bar.begin(kind, name, cost)
    clock.t += seconds
    bar.end(error)


def test_progress_lines_say_each_job_and_the_eta_and_never_pass_100() -> None:
    clock = _Clock()
    stream = io.StringIO()
    bar = CostProgress(100.0, "p", stream=stream, counts={"train": 3, "analysis": 1}, clock=clock)
    _job(bar, clock, 25.0, 100.0, name="a")
    _job(bar, clock, 25.0, 5.0, kind="extended", name="b", error="boom")
    _job(bar, clock, 80.0, 1.0, kind="analysis", name="d")  # more than the total: capped
    assert stream.getvalue().splitlines() == [
        "[p] 3 training runs (3 normal) and 1 analysis to do; " + progress_mod.WEIGHTED,
        "[p] start normal training run 1/3: a",
        "[p] done  normal training run a in 1:40; runs 1/3 trained, analyses 0/1, 25.0% of the work, 1:40 elapsed, "
        "about 5 min left",
        "[p] start extended (overfitting) training run: b",
        "[p] FAILED extended (overfitting) training run b after 0:05: boom; runs 2/3 trained, analyses 0/1, "
        "50.0% of the work, 1:45 elapsed, about 2 min left",
        "[p] start analysis 1/1: d",
        "[p] done  analysis d in 0:01; runs 2/3 trained, analyses 1/1, 100.0% of the work, 1:46 elapsed",
    ]
    assert bar.done == 100.0 and bar.is_tty is False


def test_progress_of_zero_work_is_counted_in_jobs() -> None:
    clock = _Clock()
    bar = CostProgress(0.0, "z", stream=io.StringIO(), counts={"train": 2}, clock=clock)
    _job(bar, clock, 0.0, 10.0)  # nothing to do (every job's cost is zero): no division by zero
    assert bar.fraction() == 0.5
    bar.begin("train", "k", 0.0)
    bar.in_job(0.5)
    assert bar.fraction() == 0.75
    bar.end()
    _job(bar, clock, 0.0, 1.0)  # more jobs reported than planned (a retried job): still 100 %
    assert bar.fraction() == 1.0
    assert progress_mod._hms(3 * 3600 + 62) == "3:01:02" and progress_mod._hms(-5) == "0:00"


@pytest.mark.parametrize(("total", "jobs", "by_jobs"), [(0.0, 1, True), (0.0, 2, True), (0.0, 0, False),
                                                        (0.5, 2, False), (-1.0, 3, True)])
def test_progress_counts_jobs_only_when_there_is_no_cost_and_there_are_jobs(total: float, jobs: int,
                                                                            by_jobs: bool) -> None:
    bar = CostProgress(total, "p", stream=io.StringIO(), counts={"analysis": jobs})
    assert bar.by_jobs is by_jobs
    assert CostProgress(0.0, "p", stream=io.StringIO()).by_jobs is False  # no jobs: nothing to count
    assert CostProgress(0.0, "p", stream=io.StringIO()).jobs == 0


def test_progress_of_a_fraction_of_a_step() -> None:
    """Work below one step-equivalent is still measured against itself (the floor only avoids dividing by 0)."""
    bar = CostProgress(0.5, "f", stream=io.StringIO(), counts={"train": 2}, clock=_Clock())
    _job(bar, _Clock(), 0.25, 4.0)
    assert bar.total == 0.5 and bar.fraction() == 0.5


def test_progress_writes_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    bar = CostProgress(10.0, "d", counts={"analysis": 1})
    bar.begin("analysis", "x", 10.0)
    bar.end()
    bar.close()
    out = capsys.readouterr()
    assert out.out == "" and "[d] 1 analysis to do" in out.err and "100.0% of the work" in out.err


def test_the_terminal_bar_is_fixed_width_throttled_and_labelled(monkeypatch: pytest.MonkeyPatch) -> None:
    widths = iter([os.terminal_size((77, 24)), os.terminal_size((0, 0))])
    monkeypatch.setattr(progress_mod.shutil, "get_terminal_size", lambda fallback=None: next(widths))
    stream = _Tty()
    bar = CostProgress(40.0, "t", stream=stream, counts={"train": 2})
    b = bar._bar
    assert (b.ncols, b.dynamic_ncols, b.mininterval, b.total) == (77, False, progress_mod.DRAW_EVERY_SECONDS, 100)
    bar.begin("train", "x", 10.0)
    bar.end()
    assert b.n == 25.0 and "runs 1/2 trained" in b.desc
    bar.close()
    bar.close()  # closing twice is harmless (plan.execute closes in a finally)
    assert bar._bar is None
    assert progress_mod.WEIGHTED in stream.getvalue().splitlines()[0]  # said once, above the bar
    narrow = CostProgress(4.0, "z", stream=_Tty())
    assert narrow._bar.ncols == progress_mod.FALLBACK_COLUMNS  # a terminal that reports 0 columns
    narrow.close()
    assert not CostProgress(1.0, "off", stream=_Tty(), bars=False).is_tty
