"""Threads per worker (issue 42): ``repro claims --workers N`` never runs more torch threads than cores -- two
processes of two threads on two cores ran 5-10x slower than one of two. The arithmetic, the environment's say, the
worker entry point that applies it, and the CLI that refuses before any process starts."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

import repro.pipeline.launcher as launcher
import repro.pipeline.threads as pt
from repro.errors import ReproError


@pytest.mark.parametrize(("workers", "cores", "requested", "expected"), [
    (1, 2, None, 2),
    (2, 2, None, 1),
    (3, 8, None, 2),   # floor: 3 x 2 = 6 <= 8
    (4, 16, None, 4),
    (1, 16, 3, 3),     # asked for and fits
    (2, 8, 4, 4),      # exactly the cores
    (5, 5, 1, 1),
])
def test_threads_per_worker_shares_the_cores_out(workers: int, cores: int, requested: int | None,
                                                 expected: int) -> None:
    got = pt.threads_per_worker(workers, cores, requested)
    assert got == expected and workers * got <= cores


@pytest.mark.parametrize(("workers", "cores", "requested", "fix"), [
    (2, 2, 2, "use --threads 1"),                       # the 5-10x slowdown of the issue
    (3, 8, 4, "use --threads 2, or --workers 2 with --threads 4"),
    (1, 2, 3, "use --threads 2"),
    (4, 2, 1, "--workers 4 x --threads 1 = 4 threads on 2 cores"),
    (3, 2, None, "use --workers 2 or fewer"),             # more workers than cores: not even one thread each
])
def test_oversubscription_is_refused_with_the_fix(workers: int, cores: int, requested: int | None, fix: str) -> None:
    with pytest.raises(ReproError, match="oversubscribe") as e:
        pt.threads_per_worker(workers, cores, requested)
    assert fix in str(e.value)


def test_bad_counts_are_errors() -> None:
    for args in ((0, 2, None), (2, 2, 0), (1, 0, None)):
        with pytest.raises(ReproError):
            pt.threads_per_worker(*args)


def test_the_environments_omp_num_threads_counts_only_where_it_fits() -> None:
    assert pt.resolve_threads(2, None, cores=8, environ={}) == (4, "8 cores // 2 workers")
    assert pt.resolve_threads(2, None, cores=8, environ={"OMP_NUM_THREADS": "3"}) == (3, "OMP_NUM_THREADS=3")
    threads, why = pt.resolve_threads(2, None, cores=8, environ={"OMP_NUM_THREADS": "8"})
    assert threads == 4 and "ignored" in why
    assert pt.resolve_threads(2, 1, cores=8, environ={"OMP_NUM_THREADS": "3"}) == (1, "--threads 1")
    with pytest.raises(ReproError, match="oversubscribe"):
        pt.resolve_threads(2, 5, cores=8, environ={})
    with pytest.raises(ReproError, match="oversubscribe"):
        pt.resolve_threads(3, None, cores=2, environ={})
    assert pt.resolve_threads(3, None, cores=2, environ={}, strict=False)[0] == 1  # launch() from a library


def test_available_cores_follows_the_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert pt.available_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert pt.available_cores() == 64


def test_the_worker_entry_point_sets_its_threads_before_the_claims_call(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, str, dict[str, Any]]] = []
    set_to: list[int] = []

    def run_claims(**kw: Any) -> int:
        seen.append((set_to[-1], os.environ["OMP_NUM_THREADS"], kw))
        return 7

    monkeypatch.setattr("repro.pipeline.runner.run_claims", run_claims)
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    monkeypatch.setenv("OMP_NUM_THREADS", "9")
    assert launcher.worker_entry(3, {"profile": "smoke", "out": "/x"}) == 7
    assert seen == [(3, "3", {"profile": "smoke", "out": "/x"})]


def test_launch_passes_each_worker_its_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed.launcher.api as launcher_api

    from repro.pipeline.launcher import launch

    calls: list[tuple[Any, tuple[Any, ...]]] = []

    class Recording:
        def __init__(self, config: Any, entry: Any) -> None:
            self.entry = entry

        def __call__(self, *args: Any) -> dict[int, int]:
            calls.append((self.entry, args))
            return {0: 0, 1: 0}

    monkeypatch.setattr(launcher_api, "elastic_launch", Recording)
    monkeypatch.setattr(pt, "available_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert launch(2, {"a": 1}) == 0 and launch(2, {"a": 1}, threads=3) == 0
    assert calls == [(launcher.worker_entry, (4, {"a": 1})), (launcher.worker_entry, (3, {"a": 1}))]
    with pytest.raises(ReproError, match="oversubscribe"):
        launch(2, {"a": 1}, threads=5)
    assert len(calls) == 2  # refused before anything started


def test_the_claims_command_refuses_to_oversubscribe_before_starting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import repro.pipeline.launcher as launcher
    from repro.cli import main

    started: list[tuple[int, int | None]] = []
    monkeypatch.setattr(launcher, "launch", lambda n, kw, threads=None: started.append((n, threads)) or 0)
    monkeypatch.setattr(pt, "available_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert main(["claims", "--profile", "smoke", "--workers", "2", "--threads", "2"]) == 2
    err = capsys.readouterr().err
    assert "4 threads on 2 cores" in err and "--threads 1" in err and not started
    assert main(["claims", "--profile", "smoke", "--workers", "3"]) == 2 and not started
    assert main(["claims", "--profile", "smoke", "--workers", "2"]) == 0
    assert started == [(2, 1)]
    assert "2 workers x 1 torch threads" in capsys.readouterr().out
    assert main(["claims", "--profile", "smoke", "--threads", "3"]) == 2  # one worker: still at most the cores
