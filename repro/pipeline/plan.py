"""The shared experiment plan: every (setting, seed, task, init) run is trained and measured once.

Every claim reads the same evidence, so a run's training, surfaces and Hessian are computed once and cached in the
claims run directory (training runs under ``train/``, measurements under ``analysis/``), and each task's run is
also the partner task's θ1′ for the cross-task direction δ2. Re-running the plan resumes or reuses everything.

The plan runs in two phases of independent jobs (:mod:`repro.pipeline.jobs`): all training runs, then all analyses (an
analysis reads its partner's run). With several workers (:mod:`repro.pipeline.distributed`) each takes its share of each
phase, with a barrier between the phases; with ``shard=(i, n)`` only shard i's analyses run, together with every
training run they read.

Failures are isolated. An error in one run's training or analysis -- a solver that does not converge, a
non-finite Hessian-vector product, any exception that is not a user error -- is recorded for that run
(:attr:`RunEvidence.error`), the comparisons that need it become inconclusive with that reason, and the rest of
the plan completes. Nothing failed is cached as final, so running the plan again retries exactly what failed and
reuses everything that finished. A diverged training run (non-finite loss) *is* final: training is deterministic,
so it would diverge again. User errors (:class:`repro.errors.ReproError`: bad input, data, configuration, out of
memory) and interrupts stop the plan, because every other run would meet them too.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from repro import progress_sink
from repro.config import Profile
from repro.data import describe_source, get_task
from repro.errors import ReproError, TrainingDivergedError
from repro.storage import from_json_dict, read_json
from repro.training import TrainMetrics, TrainRun, run_dir_for, train

from claims.analysis import RunAnalysis, analysis_path, analyze_run
from claims.base import Pair
from claims.evidence import RunEvidence, pairs_of
from repro.pipeline.distributed import SINGLE, Workers
from repro.pipeline.jobs import (
    HVP_FORWARDS,
    AnalysisJob,
    TrainJob,
    deal,
    forward_price,
    needed_training,
    plan_jobs,
    run_key,
)
from repro.pipeline.progress import CostProgress
from repro.pipeline.shardplan import ShardPlan

FAILED = "failed"


@dataclass(frozen=True)
class Outcomes:
    """What failed in a plan execution, keyed by job: training runs by run key, analyses by analysis key."""

    train: dict[str, str] = field(default_factory=dict)
    analysis: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def union(parts: Sequence[Outcomes]) -> Outcomes:
        t: dict[str, str] = {}
        a: dict[str, str] = {}
        for p in parts:
            t.update(p.train)
            a.update(p.analysis)
        return Outcomes(t, a)


@dataclass(frozen=True)
class PlanResult:
    pairs: tuple[Pair, ...]
    evidence: tuple[RunEvidence, ...]
    train_seconds: float
    analysis_seconds: float
    failures: Outcomes = field(default_factory=Outcomes)


def describe_error(err: BaseException) -> str:
    """One line for claims.json: the exception type, its message, and where it was raised."""
    tb = traceback.extract_tb(err.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno} in {tb[-1].name})" if tb else ""
    msg = " ".join(str(err).split())
    if len(msg) > 300:
        msg = msg[:297] + "..."
    return f"{type(err).__name__}: {msg}{where}"


def run_training_job(job: TrainJob, out: Path, *, data_dir: str | Path | None, device: str | None,
                     progress: bool) -> str | None:
    """Train (or resume, or reuse) one run. None when it completed or diverged (both final and on disk), else why
    it failed (nothing final is written then, so the next plan retries it)."""
    try:
        train(job.config, out, data_dir=data_dir, device=device, progress=progress)
    except TrainingDivergedError:
        return None
    except ReproError:
        raise
    except Exception as err:  # noqa: BLE001 -- isolate this run; the error is recorded in claims.json
        return describe_error(err)
    return None


def _load_metrics(run_dir: Path) -> TrainMetrics | None:
    path = run_dir / "metrics.json"
    return from_json_dict(TrainMetrics, read_json(path)) if path.exists() else None


def cached_analysis(out: Path, run_dir: Path, setting: str,
                    versions: Container[int] | None = None) -> RunAnalysis | None:
    """The stored analysis of a run, when one of the current version exists (the same test analyze_run makes), or
    of one of ``versions`` (to judge a saved run of an older version, e.g. a golden fixture: the measures it
    predates are then excluded with that reason, never recomputed)."""
    from claims.analysis import ANALYSIS_VERSION

    path = analysis_path(out, run_dir, setting)
    if not path.exists():
        return None
    data = read_json(path)
    if data.get("version") not in (versions if versions is not None else (ANALYSIS_VERSION,)):
        return None
    return from_json_dict(RunAnalysis, data)


def run_analysis_job(job: AnalysisJob, profile: Profile, out: Path, failed_training: Mapping[str, str], *,
                     data_dir: str | Path | None, device: str | None) -> str | None:
    """Analyse one run unless its stored analysis is current. None when done (or when there is nothing to analyse:
    the run did not complete, which its evidence already says), else why the analysis failed."""
    run_dir = run_dir_for(out, job.run)
    if run_key(job.run) in failed_training:
        return None
    if cached_analysis(out, run_dir, job.setting) is not None:
        return None
    run = TrainRun.load(run_dir)
    if run.metrics.status != "complete":
        return None
    partner = None
    if job.partner is not None:
        pkey = run_key(job.partner)
        if pkey in failed_training:
            # analysing without δ2 would cache a surface-less analysis as final; retry with the partner instead
            return f"needs the partner run {pkey}, whose training failed"
        partner = TrainRun.load(run_dir_for(out, job.partner))
        if partner.metrics.status != "complete":
            partner = None  # diverged (final): no cross-task plane, the rest is measured
    try:
        analyze_run(run, partner, profile, job.setting, out, data_dir=data_dir, device=device)
    except ReproError:
        raise
    except Exception as err:  # noqa: BLE001 -- isolate this analysis; the error is recorded in claims.json
        return describe_error(err)
    return None


def _failed_metrics(task: str, reason: str) -> TrainMetrics:
    return TrainMetrics(status=FAILED, total_steps=0, steps_per_epoch=0, train_loss=[], learning_rate=[],
                        grad_norm=[], evals=[], snapshot_steps=[], wall_seconds=0.0, num_train=0, num_dev=0,
                        num_labels=get_task(task).num_labels, message=reason)


def collect_evidence(jobs: Sequence[AnalysisJob], out: Path, failures: Outcomes,
                     analysis_versions: Container[int] | None = None) -> tuple[RunEvidence, ...]:
    """Assemble the evidence of ``jobs`` from what is on disk under ``out`` and the recorded failures (analyses of
    the current version only, unless ``analysis_versions`` names others; see cached_analysis)."""
    evidence = []
    for job in jobs:
        run_dir = run_dir_for(out, job.run)
        key = run_key(job.run)
        metrics = _load_metrics(run_dir) if key not in failures.train else None
        if metrics is None:
            metrics = _failed_metrics(job.task, failures.train.get(key, "training did not finish"))
        analysis, analysis_error = None, ""
        if metrics.status == "complete":
            analysis_error = failures.analysis.get(job.key, "")
            if not analysis_error:
                analysis = cached_analysis(out, run_dir, job.setting, analysis_versions)
                if analysis is None:
                    analysis_error = "no stored analysis (the analysis did not run)"
        over_dir = run_dir_for(out, job.overfit)
        okey = run_key(job.overfit)
        overfit = _load_metrics(over_dir) if okey not in failures.train else None
        overfit_error = "" if overfit is not None else failures.train.get(okey, "extended training did not finish")
        evidence.append(RunEvidence(
            setting=job.setting, task=job.task, init=job.init, seed=job.seed, run_dir=str(run_dir),
            status=metrics.status, metrics=metrics, analysis=analysis, overfit=overfit,
            overfit_run_dir=str(over_dir) if overfit is not None else None, analysis_error=analysis_error,
            overfit_error=overfit_error, learning_rate=job.run.hyper.learning_rate,
            overfit_learning_rate=job.overfit.hyper.learning_rate,
        ))
    return tuple(evidence)


def job_kinds(analyses: Sequence[AnalysisJob]) -> dict[str, str]:
    """What each training run is for, by run key, in the whole plan (a shard names its runs as the plan does): a
    run some analysis measures is "train" (a normal run), one only extended is "extended", one only read as another
    task's cross-task partner (a partner-only task) is "partner". Labels for the progress display only."""
    kinds: dict[str, str] = {}
    for a in analyses:
        if a.partner is not None:
            kinds.setdefault(run_key(a.partner), "partner")
    for a in analyses:
        kinds[run_key(a.overfit)] = "extended"
    for a in analyses:
        kinds[run_key(a.run)] = "train"
    return kinds


def resolve(profile: Profile, tasks: Sequence[str] | None, seeds: Sequence[int] | None) -> Profile:
    if tasks:
        profile = profile.with_tasks(tasks)
    if seeds is not None:
        profile = replace(profile, seeds=tuple(seeds))
    return profile


def execute(
    profile: Profile,
    out: Path,
    *,
    data_dir: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    workers: Workers = SINGLE,
    shard_plan: ShardPlan | None = None,
) -> tuple[tuple[AnalysisJob, ...], Outcomes, float, float]:
    """Run this process's share of the plan; return (the analysis jobs of the plan or shard, every participant's
    failures, training seconds, analysis seconds). Collective: every rank of ``workers`` must call it.

    Progress (:mod:`repro.pipeline.progress`): each job is announced to the display, and the ticks of its loops
    (:mod:`repro.progress_sink`) move the display while it runs; ``progress=False`` hides the bars only."""
    out = Path(out)
    train_jobs, analysis_jobs = plan_jobs(profile, describe_source(data_dir))
    all_analyses = analysis_jobs
    if shard is not None:
        # a frozen shard plan's split (repro.pipeline.shardplan), else the round-robin deal
        analysis_jobs = (shard_plan.jobs_of(shard[0], analysis_jobs) if shard_plan is not None
                         else tuple(deal(analysis_jobs, *shard)))
        train_jobs = tuple(needed_training(analysis_jobs, train_jobs))
    my_train = deal(train_jobs, workers.rank, workers.world)
    my_analyses = deal(analysis_jobs, workers.rank, workers.world)
    where = f" worker {workers.rank}/{workers.world}" if workers.distributed else ""
    kinds = job_kinds(all_analyses)
    counts = {k: sum(kinds.get(j.key) == k for j in my_train) for k in ("train", "extended", "partner")}
    counts["analysis"] = len(my_analyses)
    # rank 0 speaks for the group; --no-progress (progress=False) hides the bars, never the plain lines
    bar = CostProgress(sum(j.cost for j in my_train) + sum(j.cost for j in my_analyses),
                       f"claims {profile.name}{where}", enabled=workers.rank == 0, bars=progress, counts=counts)
    inner_bars = progress and bar.is_tty and not workers.distributed
    # an analysis's forward passes and Hessian-vector products, priced as jobs.analysis_cost prices them
    per_forward = forward_price(profile)
    prices = {"forward": per_forward, "hvp": HVP_FORWARDS * per_forward}
    mine = Outcomes()
    try:
        t0 = time.perf_counter()
        for job in my_train:
            bar.begin(kinds.get(job.key, "train"), job.key, job.cost)
            with progress_sink.reporting_to(bar.sink()):
                reason = run_training_job(job, out, data_dir=data_dir, device=device, progress=inner_bars)
            if reason is not None:
                mine.train[job.key] = reason
            bar.end(reason)
        failures = Outcomes.union(workers.gather(mine))  # barrier: every run is on disk (or failed)
        t1 = time.perf_counter()
        for job in my_analyses:
            bar.begin("analysis", job.key, job.cost)
            with progress_sink.reporting_to(bar.sink(prices)):
                reason = run_analysis_job(job, profile, out, failures.train, data_dir=data_dir, device=device)
            if reason is not None:
                mine.analysis[job.key] = reason
            bar.end(reason)
        failures = Outcomes.union(workers.gather(mine))
        t2 = time.perf_counter()
    finally:
        bar.close()
    return analysis_jobs, failures, t1 - t0, t2 - t1


def run_plan(
    profile: Profile,
    out: Path,
    *,
    data_dir: str | Path | None = None,
    device: str | None = None,
    tasks: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    progress: bool = True,
) -> PlanResult:
    """Run the whole plan in this process and return its evidence."""
    profile = resolve(profile, tasks, seeds)
    jobs, failures, t_train, t_an = execute(profile, out, data_dir=data_dir, device=device, progress=progress)
    evidence = collect_evidence(jobs, Path(out), failures)
    return PlanResult(pairs_of(profile, evidence), evidence, t_train, t_an, failures)
