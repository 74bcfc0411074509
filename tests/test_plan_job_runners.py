"""``run_training_job`` and ``run_analysis_job``: what each hands to train()/analyze_run(), which partner an analysis
gets (a complete one, none for a diverged one, a retry for a failed one), the stored analysis of the job's own
setting reused, and failures described rather than raised. Written against the survivors of the 2026-12-07 mutation
pass over ``repro/pipeline/plan.py`` (tests/MUTATION.md); train() and analyze_run() are replaced by spies where the
question is only what they are given, and two real one-step tiny runs stand on disk where a run is loaded."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from repro.config import TrainConfig, get_profile
from repro.errors import DataError, TrainingDivergedError
from repro.pipeline import plan as plan_mod
from repro.pipeline.jobs import AnalysisJob, TrainJob, run_key, train_cost
from repro.pipeline.plan import run_analysis_job, run_training_job
from repro.training import run_dir_for, train


def _cfg(task: str) -> TrainConfig:
    smoke = get_profile("smoke")
    return dataclasses.replace(smoke.train_config(task, "scratch", 0), model="tiny-random", train_size=16,
                               dev_size=8, hyper=dataclasses.replace(smoke.hyper("scratch"), epochs=1, batch_size=16))


# -- run_training_job ---------------------------------------------------------------------------------------------
class _TrainSpy:
    def __init__(self, raises: BaseException | None = None) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.raises = raises

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))
        if self.raises is not None:
            raise self.raises


@pytest.mark.parametrize(("device", "progress"), [("cuda:3", True), ("cpu", False)])
def test_a_training_job_passes_the_device_and_the_progress_choice_to_train(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, device: str, progress: bool) -> None:
    spy = _TrainSpy()
    monkeypatch.setattr(plan_mod, "train", spy)
    cfg = _cfg("sst2")
    job = TrainJob(run_key(cfg), cfg, train_cost(cfg))
    assert run_training_job(job, tmp_path, data_dir="/glue", device=device, progress=progress) is None
    assert spy.calls == [((cfg, tmp_path), {"data_dir": "/glue", "device": device, "progress": progress})]


def test_a_training_job_records_a_crash_takes_a_divergence_as_final_and_raises_user_errors(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = _cfg("sst2")
    job = TrainJob(run_key(cfg), cfg, train_cost(cfg))
    kw: dict[str, Any] = {"data_dir": None, "device": "cpu", "progress": False}
    monkeypatch.setattr(plan_mod, "train", _TrainSpy(RuntimeError("the solver  did\nnot converge")))
    reason = run_training_job(job, tmp_path, **kw)
    assert reason is not None and reason.startswith("RuntimeError: the solver did not converge (at ")
    monkeypatch.setattr(plan_mod, "train", _TrainSpy(TrainingDivergedError("loss is nan at step 3")))
    assert run_training_job(job, tmp_path, **kw) is None  # final: a rerun would diverge again
    monkeypatch.setattr(plan_mod, "train", _TrainSpy(DataError("no GLUE data: set REPRO_DATA_DIR")))
    with pytest.raises(DataError, match="REPRO_DATA_DIR"):
        run_training_job(job, tmp_path, **kw)


# -- run_analysis_job ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tiny_glue: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainConfig, TrainConfig]:
    """Two real one-step runs on disk: an sst2 run and its partner on mrpc (δ2's θ1′)."""
    out = tmp_path_factory.mktemp("plan-runs")
    run, partner = _cfg("sst2"), _cfg("mrpc")
    for cfg in (run, partner):
        train(cfg, out, data_dir=tiny_glue, device="cpu", progress=False)
    return out, run, partner


def _copy(runs: tuple[Path, TrainConfig, TrainConfig], tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(runs[0], out)
    return out


class _AnalyzeSpy:
    def __init__(self, raises: BaseException | None = None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.raises = raises

    def __call__(self, run: Any, partner: Any, profile: Any, setting: str, out: Path, *, data_dir: Any,
                 device: Any) -> None:
        self.seen.append({"run": run.path, "partner": partner if partner is None or partner == "" else partner.path,
                          "setting": setting, "out": out, "data_dir": data_dir, "device": device})
        if self.raises is not None:
            raise self.raises


def _job(run: TrainConfig, partner: TrainConfig | None, setting: str = "base") -> AnalysisJob:
    return AnalysisJob(setting, run.task, run.init, run.seed, run, run, partner, 1.0)


def test_an_analysis_gets_its_complete_partner_run(runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _copy(runs, tmp_path)
    _, run, partner = runs
    spy = _AnalyzeSpy()
    monkeypatch.setattr(plan_mod, "analyze_run", spy)
    assert run_analysis_job(_job(run, partner), get_profile("smoke"), out, {}, data_dir="/g", device="cpu") is None
    assert spy.seen == [{"run": run_dir_for(out, run), "partner": run_dir_for(out, partner), "setting": "base",
                         "out": out, "data_dir": "/g", "device": "cpu"}]


def test_a_diverged_partner_gives_an_analysis_without_the_cross_task_plane(
        runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _copy(runs, tmp_path)
    _, run, partner = runs
    path = run_dir_for(out, partner) / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["status"] = "diverged"
    path.write_text(json.dumps(metrics))
    spy = _AnalyzeSpy()
    monkeypatch.setattr(plan_mod, "analyze_run", spy)
    assert run_analysis_job(_job(run, partner), get_profile("smoke"), out, {}, data_dir=None, device="cpu") is None
    assert [s["partner"] for s in spy.seen] == [None]  # None itself: analyze_run tests `partner is None`


def test_a_partner_whose_training_failed_is_waited_for_not_analysed_without(
        runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Analysing without δ2 would store a surface-less analysis as final: the job fails (to be retried) instead."""
    out = _copy(runs, tmp_path)
    _, run, partner = runs
    spy = _AnalyzeSpy()
    monkeypatch.setattr(plan_mod, "analyze_run", spy)
    failed = {run_key(partner): "RuntimeError: oom"}
    reason = run_analysis_job(_job(run, partner), get_profile("smoke"), out, failed, data_dir=None, device="cpu")
    assert reason == f"needs the partner run {run_key(partner)}, whose training failed"
    assert spy.seen == []
    # the run's own failed training: nothing to analyse, and its evidence already says why
    assert run_analysis_job(_job(run, partner), get_profile("smoke"), out, {run_key(run): "x"}, data_dir=None,
                            device="cpu") is None
    assert spy.seen == []


def test_the_stored_analysis_of_the_jobs_own_setting_is_reused(runs, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = _copy(runs, tmp_path)
    _, run, partner = runs
    asked: list[tuple[Path, Path, str]] = []

    def stored_for_extended(o: Path, run_dir: Path, setting: str, versions: Any = None) -> object | None:
        asked.append((o, run_dir, setting))
        return object() if setting == "extended" else None  # only the "extended" setting's analysis is stored

    monkeypatch.setattr(plan_mod, "cached_analysis", stored_for_extended)
    spy = _AnalyzeSpy()
    monkeypatch.setattr(plan_mod, "analyze_run", spy)
    prof = get_profile("smoke")
    assert run_analysis_job(_job(run, partner, "extended"), prof, out, {}, data_dir=None, device="cpu") is None
    assert spy.seen == [] and asked == [(out, run_dir_for(out, run), "extended")]
    assert run_analysis_job(_job(run, partner, "base"), prof, out, {}, data_dir=None, device="cpu") is None
    assert [s["setting"] for s in spy.seen] == ["base"]  # another setting's analysis is not this one's


def test_a_failed_analysis_is_described_and_a_user_error_raised(runs, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = _copy(runs, tmp_path)
    _, run, partner = runs
    prof = get_profile("smoke")
    monkeypatch.setattr(plan_mod, "analyze_run", _AnalyzeSpy(FloatingPointError("non-finite Hessian-vector product")))
    reason = run_analysis_job(_job(run, partner), prof, out, {}, data_dir=None, device="cpu")
    assert reason is not None
    assert reason.startswith("FloatingPointError: non-finite Hessian-vector product (at test_plan_job_runners.py:")
    monkeypatch.setattr(plan_mod, "analyze_run", _AnalyzeSpy(DataError("dev split missing: run the fetch")))
    with pytest.raises(DataError, match="dev split missing"):
        run_analysis_job(_job(run, partner), prof, out, {}, data_dir=None, device="cpu")


# -- collect_evidence ---------------------------------------------------------------------------------------------
def test_evidence_of_a_complete_run_says_why_its_analysis_is_missing_and_nothing_when_it_is_there(
        runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reason is what the report and the inconclusive comparisons quote; with the analysis stored it is the
    empty string (RunEvidence.analysis_error is a str: claims.json's schema and ``if ev.analysis_error`` rely on it)."""
    from repro.pipeline.plan import Outcomes, collect_evidence

    out, run, partner = runs
    job = _job(run, partner)
    (ev,) = collect_evidence([job], out, Outcomes())
    assert ev.status == "complete" and ev.analysis is None
    assert ev.analysis_error == "no stored analysis (the analysis did not run)"
    (ev,) = collect_evidence([job], out, Outcomes({}, {job.key: "FloatingPointError: nan"}))
    assert ev.analysis is None and ev.analysis_error == "FloatingPointError: nan"
    stored = object()
    monkeypatch.setattr(plan_mod, "cached_analysis", lambda *a, **k: stored)
    (ev,) = collect_evidence([job], out, Outcomes())
    assert ev.analysis is stored and ev.analysis_error == "" and ev.overfit_error == ""
