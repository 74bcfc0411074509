"""Failures are isolated: one run's failed training or analysis is recorded for that run (claims.json, report,
the reasons comparisons exclude it), the rest of the plan completes, and a rerun retries exactly what failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import repro.pipeline.plan as plan_mod
from repro.pipeline.jobs import TrainJob, run_key
from claims.evidence import RunEvidence
from repro.pipeline.plan import run_training_job
from repro.pipeline.runner import claims_dir, run_claims
from repro.results import load_claims
from tests.plan_fixtures import tiny_profile
from repro.errors import DataError, TrainingDivergedError
from repro.training import TrainMetrics


def _job() -> TrainJob:
    cfg = tiny_profile().train_config("sst2", "scratch", 0)
    return TrainJob(run_key(cfg), cfg, 1.0)


@pytest.mark.parametrize("err", [RuntimeError("CUDA error: an illegal memory access"),
                                 torch._C._LinAlgError("linalg.eigh: The algorithm failed to converge"),
                                 ValueError("bad shape")])
def test_training_error_is_returned_as_the_runs_reason(err: Exception, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise err

    monkeypatch.setattr(plan_mod, "train", boom)
    reason = run_training_job(_job(), tmp_path, data_dir=None, device=None, progress=False)
    assert reason is not None and reason.startswith(type(err).__name__) and str(err) in reason
    assert "test_plan_failures.py" in reason  # where it was raised


@pytest.mark.parametrize("err", [DataError("no such file: put the data in X"), KeyboardInterrupt()])
def test_user_errors_and_interrupts_stop_the_plan(err: BaseException, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise err

    monkeypatch.setattr(plan_mod, "train", boom)
    with pytest.raises(type(err)):
        run_training_job(_job(), tmp_path, data_dir=None, device=None, progress=False)


def test_divergence_is_final_not_a_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def diverge(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise TrainingDivergedError("loss is nan at step 3")

    monkeypatch.setattr(plan_mod, "train", diverge)
    assert run_training_job(_job(), tmp_path, data_dir=None, device=None, progress=False) is None


def _metrics(status: str = "complete", message: str = "") -> TrainMetrics:
    return TrainMetrics(status, 4, 2, [0.7] * 4, [1e-3] * 4, [1.0] * 4, [], [0, 4], 1.0, 32, 16, 2, message)


def test_learned_reason_names_the_failure() -> None:
    failed = RunEvidence("base", "sst2", "scratch", 0, "r", "failed", _metrics("failed", "RuntimeError: boom"),
                         None, None, None)
    assert not failed.learned and "scratch run failed: RuntimeError: boom" in failed.learned_reason()
    assert failed.error == "training failed: RuntimeError: boom"
    no_analysis = RunEvidence("base", "sst2", "pretrained", 0, "r", "complete", _metrics(), None, None, None,
                              analysis_error="_LinAlgError: eigh did not converge")
    assert not no_analysis.learned
    assert no_analysis.learned_reason() == "pretrained run analysis failed: _LinAlgError: eigh did not converge"
    assert no_analysis.error == "analysis failed: _LinAlgError: eigh did not converge"


def _excluded(report, task: str) -> list[str]:  # noqa: ANN001
    return [e for c in report.claims for s in c.settings for comp in s.comparisons for e in comp.excluded
            if e.startswith(f"{task}/")]


@pytest.mark.slow
def test_failed_analysis_isolated_and_retried(tmp_path: Path, tiny_glue: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    profile = tiny_profile()
    real = plan_mod.analyze_run
    calls: list[tuple[str, str]] = []

    def flaky(run, partner, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append((run.config.task, run.config.init))
        if (run.config.task, run.config.init) == ("sst2", "scratch"):
            raise torch._C._LinAlgError("linalg.eigh: The algorithm failed to converge")
        return real(run, partner, *a, **k)

    monkeypatch.setattr(plan_mod, "analyze_run", flaky)
    code = run_claims(profile, tmp_path, data_dir=str(tiny_glue), progress=False, write_html=False)
    assert code in (0, 1)
    out = capsys.readouterr().out
    root = claims_dir(profile, tmp_path)
    assert out.splitlines()[0] == f"claims run directory: {root} (profile smoke)"  # printed first
    assert "nan" not in out.lower()
    report = load_claims(root)
    runs = {(r.task, r.init): r for r in report.runs}
    bad = runs["sst2", "scratch"]
    assert bad.analysis is None and bad.error.startswith("analysis failed: _LinAlgError: linalg.eigh")
    assert all(r.analysis is not None and r.error == "" for k, r in runs.items() if k != ("sst2", "scratch"))
    assert "_LinAlgError" in out  # the terminal lists the failed run
    # every comparison that needs the sst2 pair leaves it out with the reason; mrpc is never excluded for it
    sst2 = _excluded(report, "sst2")
    assert any("scratch run analysis failed: _LinAlgError" in e for e in sst2)
    assert not any("scratch training loss" in e for e in sst2)  # the scratch arm's reason is its failure
    assert not any("analysis failed" in e for e in _excluded(report, "mrpc"))
    assert len(calls) == 4

    # the rerun retries only the failed analysis; finished runs and analyses are reused as they are
    stamps = {p: p.stat().st_mtime_ns for p in root.glob("train/*/metrics.json")}
    stamps.update({p: p.stat().st_mtime_ns for p in root.glob("analysis/*.json")})
    calls.clear()
    def counting(run, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(("again", run.config.task))
        return real(run, *a, **k)

    monkeypatch.setattr(plan_mod, "analyze_run", counting)
    assert run_claims(profile, tmp_path, data_dir=str(tiny_glue), progress=False, write_html=False) in (0, 1)
    assert calls == [("again", "sst2")]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    again = load_claims(root)
    assert all(r.error == "" and r.analysis is not None for r in again.runs)
    assert set(json.loads((root / "claims.json").read_text())["durations"]) >= {
        "train_seconds", "analysis_seconds", "evaluation_seconds", "total_seconds"}


@pytest.mark.slow
def test_failed_training_isolated_and_retried(tmp_path: Path, tiny_glue: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    profile = tiny_profile()
    real = plan_mod.train
    trained: list[str] = []

    def flaky(cfg, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        if (cfg.task, cfg.init) == ("mrpc", "pretrained") and cfg.hyper.epochs == 1:
            raise RuntimeError("CUDA error: unspecified launch failure")
        trained.append(run_key(cfg))
        return real(cfg, *a, **k)

    monkeypatch.setattr(plan_mod, "train", flaky)
    run_claims(profile, tmp_path, data_dir=str(tiny_glue), progress=False, write_html=False)
    root = claims_dir(profile, tmp_path)
    runs = {(r.task, r.init): r for r in load_claims(root).runs}
    failed = runs["mrpc", "pretrained"]
    assert failed.status == "failed" and "RuntimeError: CUDA error: unspecified launch failure" in failed.error
    # sst2's pretrained analysis needs mrpc's pretrained run for δ2: not analysed (a surface-less analysis would be
    # cached as final), with the reason
    assert runs["sst2", "pretrained"].analysis is None
    assert "whose training failed" in runs["sst2", "pretrained"].error
    assert runs["sst2", "scratch"].analysis is not None and runs["mrpc", "scratch"].analysis is not None
    assert any("pretrained run failed: RuntimeError" in e for e in _excluded(load_claims(root), "mrpc"))

    monkeypatch.setattr(plan_mod, "train", real)
    run_claims(profile, tmp_path, data_dir=str(tiny_glue), progress=False, write_html=False)
    assert all(r.status == "complete" and r.error == "" for r in load_claims(root).runs)
