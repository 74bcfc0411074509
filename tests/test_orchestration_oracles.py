"""Oracles for the plan's orchestration: joining the torch.distributed group torchrun describes, the elastic launch
of ``repro claims --workers N``, the device of each worker, the jobs an analysis reads, the shard syntax, the
placeholder evidence of a run that never trained, the one-line error record and the progress lines.

None of this is science, but every piece decides *which* evidence the claims read: a worker that joins the wrong
group, a shard that drops shard 0, or a placeholder that claims a finished run would silently change the report.
Everything here runs in one process on the CPU in well under a second; nothing is trained.
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import math
import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch.distributed.elastic.rendezvous.utils import parse_rendezvous_endpoint

import repro.pipeline.launcher as launcher
import repro.pipeline.progress as progress
import repro.pipeline.threads as pipeline_threads
from repro.pipeline.distributed import SINGLE, Workers, join_group, launched_by_torchrun
from repro.pipeline.launcher import launch
from repro.pipeline.jobs import needed_training, parse_shard, plan_jobs, run_key
from repro.pipeline.plan import Outcomes, collect_evidence, describe_error
from repro.pipeline.progress import CostProgress, _hms
from repro.errors import ReproError
from repro.training import TrainMetrics
from tests.claims_fixtures import _evidence
from tests.plan_fixtures import tiny_profile

TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "OMP_NUM_THREADS")


def _torchrun_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Exactly the torchrun variables in ``env`` (the test process's own are removed first)."""
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


# --- launched_by_torchrun / join_group -----------------------------------------------------------------------


@pytest.mark.parametrize(("env", "expected"), [
    ({}, False),                                      # a plain `repro claims`
    ({"WORLD_SIZE": "1", "RANK": "0"}, False),        # torchrun --nproc-per-node 1: nothing to share
    ({"WORLD_SIZE": "2"}, False),                     # a size without a rank is not torchrun's environment
    ({"RANK": "0"}, False),
    ({"WORLD_SIZE": "2", "RANK": "1"}, True),
    ({"WORLD_SIZE": "8", "RANK": "0"}, True),
])
def test_launched_by_torchrun_needs_a_world_of_several_and_a_rank(env: dict[str, str], expected: bool,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """torchrun sets both WORLD_SIZE and RANK; a world of one is the single-process plan."""
    _torchrun_env(monkeypatch, **env)
    assert launched_by_torchrun() is expected


def test_join_group_outside_torchrun_is_the_single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    _torchrun_env(monkeypatch)
    assert join_group() is SINGLE and not dist.is_initialized()


def test_join_group_initialises_a_gloo_group_with_the_day_long_barrier_and_reports_its_rank(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under torchrun the process joins a *gloo* group (CPU collectives whatever device trains: NCCL would need
    CUDA tensors for the object exchanges) whose timeout is a day, not the 30-minute default a long training
    phase outlasts at the barrier. Rank and size come from the group, the local rank from LOCAL_RANK.

    The group is a one-process stand-in (a file store of size 1) for the one torchrun would rendezvous, so its
    size (1) differs from WORLD_SIZE (2); join_group must report the group's, which it then computes with."""
    _torchrun_env(monkeypatch, WORLD_SIZE="2", RANK="0", LOCAL_RANK="7", OMP_NUM_THREADS="1")
    store = dist.FileStore(str(tmp_path / "store"), 1)
    real_init = dist.init_process_group
    calls: list[timedelta | None] = []

    def init_on_the_file_store(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs.get("timeout"))
        real_init(*args, store=store, rank=0, world_size=1, **kwargs)

    monkeypatch.setattr(dist, "init_process_group", init_on_the_file_store)
    assert not dist.is_initialized()
    try:
        workers = join_group()
        assert calls == [timedelta(hours=24)]
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        assert workers == Workers(rank=0, world=1, local_rank=7)
        assert join_group() == workers and len(calls) == 1  # already in the group: not initialised twice
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture
def one_process_group(tmp_path: Path) -> Iterator[None]:
    """A gloo group of one, already initialised, so join_group only reads the environment."""
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(("cpus", "env", "threads", "local_rank"), [
    (13, {"WORLD_SIZE": "6", "LOCAL_WORLD_SIZE": "3", "LOCAL_RANK": "2"}, 4, 2),  # 13 // 3 (two nodes of 3)
    (12, {"WORLD_SIZE": "4"}, 3, 0),            # no LOCAL_WORLD_SIZE: the whole world is on this machine
    (2, {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "4"}, 1, 0),   # more workers than cores: still one thread
    (1, {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1"}, 1, 0),  # one core (available_cores is at least 1)
    (12, {"WORLD_SIZE": "4", "OMP_NUM_THREADS": "5"}, None, 0),  # the user's OMP_NUM_THREADS wins: untouched
])
def test_join_group_shares_the_machines_cores_among_its_local_workers(
        cpus: int, env: dict[str, str], threads: int | None, local_rank: int, one_process_group: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of the LOCAL_WORLD_SIZE processes on a machine gets available_cores // LOCAL_WORLD_SIZE intra-op
    threads (at least one; the cores this process may run on, its affinity mask), instead of each oversubscribing
    every core."""
    _torchrun_env(monkeypatch, RANK="0", **env)
    monkeypatch.setattr(pipeline_threads, "available_cores", lambda: cpus)
    set_to: list[object] = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    workers = join_group()
    assert set_to == ([] if threads is None else [threads])
    assert all(type(t) is int for t in set_to)
    assert workers == Workers(rank=0, world=1, local_rank=local_rank)


# --- Workers.device ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "cuda_devices", "requested", "expected"), [
    (Workers(3, 4, 3), 2, None, "cuda:1"),        # round robin: local rank 3 on 2 GPUs -> the second
    (Workers(3, 4, 3), 2, "cuda", "cuda:1"),      # a bare "cuda" is placed the same way
    (Workers(2, 4, 2), 2, "cuda", "cuda:0"),
    (Workers(1, 4, 1), 3, None, "cuda:1"),
    (Workers(3, 4, 3), 2, "cuda:0", "cuda:0"),    # an explicit device is the user's choice
    (Workers(3, 4, 3), 2, "cpu", "cpu"),
    (Workers(3, 4, 3), 0, None, None),            # no CUDA: whatever was asked (None: the trainer's default)
    (Workers(3, 4, 3), 0, "cpu", "cpu"),
    (Workers(), 2, None, None),                   # not distributed: the single process picks as usual
    (Workers(), 2, "cuda", "cuda"),
])
def test_worker_device_is_its_local_rank_round_robin_over_the_gpus(
        workers: Workers, cuda_devices: int, requested: str | None, expected: str | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With several workers on a machine each takes one GPU (local_rank mod the GPU count) so they do not all
    train on cuda:0; an explicit device or a CPU-only machine is left alone."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_devices > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_devices)
    assert workers.device(requested) == expected


# --- launch ---------------------------------------------------------------------------------------------------


class _RecordingLaunch:
    """Stands in for torch's ``elastic_launch``: records the agent's configuration and entry point, and returns
    per-rank exit values without starting any process."""

    calls: list[tuple[Any, Any, Any]] = []

    def __init__(self, config: Any, entrypoint: Any) -> None:
        self.config, self.entrypoint = config, entrypoint

    def __call__(self, *args: Any) -> dict[int, int]:
        type(self).calls.append((self.config, self.entrypoint, args))
        return {0: 3, 1: 0, 2: 0}


def test_launch_starts_a_one_node_standalone_group_and_returns_rank_zeros_status(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``repro claims --workers N`` is ``torchrun --standalone --nproc-per-node N``: one node, N spawned
    processes, a c10d rendezvous served on this machine's loopback on a free port (no etcd), a fresh run id per
    launch (a reused id could join a stale rendezvous), no restarts (the plan is deterministic: a failed worker
    would fail again), and rank 0's exit status (the rank that writes claims.json) as the command's."""
    import torch.distributed.launcher.api as launcher_api

    _RecordingLaunch.calls = []
    monkeypatch.setattr(launcher_api, "elastic_launch", _RecordingLaunch)
    kwargs = {"profile": "smoke", "out": "/tmp/x"}
    assert launch(3, kwargs) == 3  # rank 0's value, not another rank's
    assert launch(2, kwargs) == 3
    (cfg, entry, args), (cfg2, _, _) = _RecordingLaunch.calls
    assert isinstance(cfg, launcher_api.LaunchConfig)
    assert (cfg.min_nodes, cfg.max_nodes, cfg.nproc_per_node, cfg2.nproc_per_node) == (1, 1, 3, 2)
    assert cfg.rdzv_backend == "c10d"
    host, port = parse_rendezvous_endpoint(cfg.rdzv_endpoint, default_port=29400)
    assert port == 0 and ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    assert cfg.max_restarts == 0
    assert cfg.start_method == "spawn"  # fork would copy a process that may already hold threads and CUDA
    assert isinstance(cfg.run_id, str) and cfg.run_id and isinstance(cfg2.run_id, str)
    assert cfg.run_id != cfg2.run_id
    # each process sets its threads (the cores shared out, at least one) before the run_claims call
    assert entry is launcher.worker_entry
    assert args == (pipeline_threads.resolve_threads(3, None, strict=False)[0], kwargs)


def test_each_launched_worker_runs_the_same_claims_call(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def run_claims(**kw: Any) -> int:
        seen.append(kw)
        return 5

    monkeypatch.setattr("repro.pipeline.runner.run_claims", run_claims)
    monkeypatch.setattr("torch.set_num_threads", lambda n: None)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the entry point sets it; restored after the test
    assert launcher.worker_entry(1, {"profile": "smoke", "workers": None}) == 5
    assert seen == [{"profile": "smoke", "workers": None}]


# --- jobs: needs / needed_training / parse_shard ---------------------------------------------------------------


def test_an_analysis_reads_its_run_its_extended_run_and_its_partner_and_a_shard_trains_exactly_those() -> None:
    """The analysis of (mnli, pretrained) reads mnli's run, mnli's extended run and sst2's run (δ2); a shard
    holding only that analysis must train exactly those three, in the plan's canonical order. With one task there
    is no partner, so nothing more is read."""
    profile = dataclasses.replace(tiny_profile(), tasks=("mnli", "sst2"))
    train, analyses = plan_jobs(profile, "test")
    job = next(a for a in analyses if (a.task, a.init) == ("mnli", "pretrained"))
    setting = profile.settings[0]
    run = profile.train_config("mnli", "pretrained", 0, setting, data_source="test")
    over = profile.train_config("mnli", "pretrained", 0, setting, overfit=True, data_source="test")
    partner = profile.train_config("sst2", "pretrained", 0, setting, data_source="test")
    assert job.needs() == (run, over, partner)
    wanted = {run_key(run), run_key(over), run_key(partner)}
    assert len(wanted) == 3
    needed = needed_training([job], train)
    assert {j.key for j in needed} == wanted and len(needed) == 3
    order = [j.key for j in train]
    assert [order.index(j.key) for j in needed] == sorted(order.index(k) for k in wanted)
    assert needed_training(analyses, train) == list(train)  # the whole plan reads every run
    assert needed_training([], train) == []

    solo = dataclasses.replace(tiny_profile(), tasks=("rte",))
    solo_train, (solo_job, *_) = plan_jobs(solo, "test")
    assert solo_job.partner is None and solo_job.needs() == (solo_job.run, solo_job.overfit)
    assert {j.key for j in needed_training([solo_job], solo_train)} == {run_key(solo_job.run),
                                                                         run_key(solo_job.overfit)}


@pytest.mark.parametrize(("text", "expected"), [("0/1", (0, 1)), ("0/4", (0, 4)), ("3/4", (3, 4))])
def test_every_shard_from_zero_to_n_minus_one_parses(text: str, expected: tuple[int, int]) -> None:
    """Shards are numbered 0..N-1: shard 0 (the first of any split, and the only one of 0/1) must be accepted,
    or a split plan could never be completed."""
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1/0"])
def test_a_shard_outside_zero_to_n_minus_one_is_one_clear_error(text: str) -> None:
    with pytest.raises(ReproError, match="0 ≤ I < N"):
        parse_shard(text)


# --- plan: placeholder evidence, learned_reason, describe_error -------------------------------------------------


def test_a_run_that_never_trained_is_evidence_of_failure_with_an_empty_record_and_its_reason(
        tmp_path: Path) -> None:
    """A run whose training raised (or never ran) has nothing on disk; its evidence is a 'failed' placeholder
    with no steps, no losses, no examples and the task's label count, carrying the recorded reason -- so it can
    never count as learned and the comparisons that need it say why they exclude it."""
    profile = dataclasses.replace(tiny_profile(), tasks=("mnli", "sst2"))
    _, analyses = plan_jobs(profile, "test")
    mnli = next(a for a in analyses if (a.task, a.init) == ("mnli", "scratch"))
    sst2 = next(a for a in analyses if (a.task, a.init) == ("sst2", "pretrained"))
    reason = "RuntimeError: CUDA error (at trainer.py:12 in step)"
    failed, missing = collect_evidence([mnli, sst2], tmp_path, Outcomes(train={run_key(mnli.run): reason}))

    def placeholder(num_labels: int, message: str) -> TrainMetrics:
        return TrainMetrics(status="failed", total_steps=0, steps_per_epoch=0, train_loss=[], learning_rate=[],
                            grad_norm=[], evals=[], snapshot_steps=[], wall_seconds=0.0, num_train=0, num_dev=0,
                            num_labels=num_labels, message=message)

    assert failed.metrics == placeholder(3, reason)  # MNLI: three labels
    assert missing.metrics == placeholder(2, "training did not finish")
    for ev in (failed, missing):
        assert ev.status == "failed" and ev.analysis is None and ev.overfit is None and not ev.learned
        assert ev.overfit_error == "extended training did not finish"
    assert math.isclose(failed.chance_loss, math.log(3))
    assert failed.error == (f"training failed: {reason}; extended training failed: extended training did not "
                            "finish")
    assert failed.learned_reason() == f"scratch run failed: {reason}"


@pytest.mark.parametrize(("num_labels", "loss", "learned", "threshold"), [
    (2, 0.69, False, "0.520"),  # 0.75 × ln 2 = 0.5199
    (3, 0.9, False, "0.824"),   # 0.75 × ln 3 = 0.8240
    (3, 0.8, True, "0.824"),
])
def test_not_learned_reason_states_the_threshold_three_quarters_of_chance(
        num_labels: int, loss: float, learned: bool, threshold: str) -> None:
    """A run has learned when its training loss at θ1 is at most 0.75 × ln(#labels) (chance is ln(#labels));
    the reason shows the threshold's value, computed by hand here."""
    ev = _evidence("scratch", "mnli", 0, True, 1.0)
    ev = dataclasses.replace(ev, metrics=dataclasses.replace(ev.metrics, num_labels=num_labels),
                             analysis=dataclasses.replace(ev.analysis, train_loss_theta1=loss))
    assert ev.learned is learned
    assert ev.learned_reason() == f"scratch training loss at θ1 {loss:.3f} > 0.75 × ln({num_labels}) = {threshold}"


PLANTED = "\n\ndef read_split(path):\n    raise RuntimeError(f'CUDA out of memory.\\n  Tried to read {path}')\n"


def _call_planted(fn: Any) -> None:
    fn("dev.tsv")  # the frame between the test and the planted module


def test_describe_error_is_one_line_naming_the_type_message_and_innermost_frame() -> None:
    """claims.json records each failure as one line: the exception type, its message with whitespace collapsed,
    and the innermost frame (file name, line, function) where it was raised -- here a function planted at line
    4 of a module called loader.py, two frames below the caller."""
    namespace: dict[str, Any] = {}
    exec(compile(PLANTED, "/somewhere/repro/data/loader.py", "exec"), namespace)  # noqa: S102
    try:
        _call_planted(namespace["read_split"])
    except RuntimeError as err:
        caught = err
    assert describe_error(caught) == ("RuntimeError: CUDA out of memory. Tried to read dev.tsv "
                                      "(at loader.py:4 in read_split)")
    assert describe_error(ValueError("never raised")) == "ValueError: never raised"  # no traceback: no place


def test_describe_error_cuts_a_long_message_to_300_characters() -> None:
    """A message up to 300 characters is kept whole; a longer one (a tensor dump) is cut to 297 characters and
    an ellipsis, so claims.json stays readable."""
    exact = "x" * 300
    assert describe_error(ValueError(exact)) == f"ValueError: {exact}"
    long = "".join(chr(ord("a") + i % 26) for i in range(301))
    out = describe_error(ValueError(long))
    assert out == f"ValueError: {long[:297]}..."
    assert len(out) == len("ValueError: ") + 300


# --- progress -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0:00"), (-5.0, "0:00"), (0.4, "0:00"), (0.6, "0:01"), (59.4, "0:59"), (59.6, "1:00"), (60.0, "1:00"),
    (61.0, "1:01"), (3599.0, "59:59"), (3600.0, "1:00:00"), (3661.0, "1:01:01"), (90061.0, "25:01:01"),
])
def test_hms_is_hours_minutes_seconds_rounded_to_the_second(seconds: float, text: str) -> None:
    assert _hms(seconds) == text


class _FlushRecorder(io.StringIO):
    """A log file that records what had been written each time it was flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue())
        super().flush()


def test_progress_lines_are_flushed_as_written_with_elapsed_time_and_eta() -> None:
    """Off a terminal (a redirected or nohup log) each progress line is flushed when written, so ``tail -f``
    shows it at once rather than when a buffer fills hours later; the ETA extrapolates the elapsed time over the
    work left, to the minute: half the work in 1:02:05 leaves about 1 h 02 min."""
    now = [100.0]
    stream = _FlushRecorder()
    bar = CostProgress(10.0, "plan", stream=stream, counts={"train": 2}, clock=lambda: now[0])
    lines = [f"[plan] 2 training runs (2 normal) and 0 analyses to do; {progress.WEIGHTED}\n",
             "[plan] start normal training run 1/2: sst2-scratch\n",
             "[plan] done  normal training run sst2-scratch in 1:02:05; runs 1/2 trained, analyses 0/0, 50.0% of the "
             "work, 1:02:05 elapsed, about 1 h 02 min left\n"]
    assert stream.flushed == lines[:1]
    bar.begin("train", "sst2-scratch", 5.0)
    assert stream.flushed == [lines[0], "".join(lines[:2])]
    now[0] += 3725.0
    bar.end()
    assert stream.flushed == [lines[0], "".join(lines[:2]), "".join(lines)]
    bar.close()
