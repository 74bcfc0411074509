"""The shared experiment plan: every (setting, seed, task, init) run is trained and measured once.

Every claim reads the same evidence, so a run's training, surfaces and Hessian are computed once and cached in the
claims run directory (training runs under ``train/``, measurements under ``analysis/``), and each task's run is
also the partner task's θ1′ for the cross-task direction δ2. Re-running the plan resumes or reuses everything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from repro.config import Profile
from repro.data import describe_source
from repro.errors import TrainingDivergedError
from repro.models import INITS
from repro.training import TrainMetrics, TrainRun, run_dir_for, train

from claims.analysis import RunAnalysis, analyze_run
from claims.base import LEARNED_FRACTION_OF_CHANCE, Pair


@dataclass(frozen=True)
class RunEvidence:
    """What the claims know about one arm of one (setting, task, seed)."""

    setting: str
    task: str
    init: str
    seed: int
    run_dir: str
    status: str  # complete / diverged
    metrics: TrainMetrics
    analysis: RunAnalysis | None
    overfit: TrainMetrics | None
    overfit_run_dir: str | None

    @property
    def chance_loss(self) -> float:
        return math.log(self.metrics.num_labels)

    @property
    def learned(self) -> bool:
        return (self.status == "complete" and self.analysis is not None
                and self.analysis.train_loss_theta1 <= LEARNED_FRACTION_OF_CHANCE * self.chance_loss)

    def learned_reason(self) -> str:
        if self.status != "complete":
            return f"{self.init} run {self.status}: {self.metrics.message}"
        if self.analysis is None:
            return f"{self.init} run has no analysis"
        return (f"{self.init} training loss at θ1 {self.analysis.train_loss_theta1:.3f} > "
                f"{LEARNED_FRACTION_OF_CHANCE} × ln({self.metrics.num_labels}) = "
                f"{LEARNED_FRACTION_OF_CHANCE * self.chance_loss:.3f}")


@dataclass(frozen=True)
class PlanResult:
    pairs: tuple[Pair, ...]
    evidence: tuple[RunEvidence, ...]
    train_seconds: float
    analysis_seconds: float


def _train_or_load(cfg, out: Path, data_dir, device, progress: bool) -> TrainRun:  # noqa: ANN001
    try:
        return train(cfg, out, data_dir=data_dir, device=device, progress=progress)
    except TrainingDivergedError:
        return TrainRun.load(run_dir_for(out, cfg))


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
    from tqdm.auto import tqdm

    tasks = tuple(tasks or profile.tasks)
    seeds = tuple(seeds if seeds is not None else profile.seeds)
    source = describe_source(data_dir)
    jobs = len(profile.settings) * len(seeds) * len(tasks) * len(INITS)
    bar = tqdm(total=jobs * 3, desc=f"claims plan ({profile.name})", disable=not progress, dynamic_ncols=True)
    evidence: list[RunEvidence] = []
    t_train = t_an = 0.0
    try:
        for setting in profile.settings:
            for seed in seeds:
                runs: dict[tuple[str, str], TrainRun] = {}
                overfits: dict[tuple[str, str], TrainRun | None] = {}
                t0 = time.perf_counter()
                for task in tasks:
                    for init in INITS:
                        cfg = profile.train_config(task, init, seed, setting, data_source=source)
                        runs[task, init] = _train_or_load(cfg, out, data_dir, device, progress)
                        bar.update(1)
                        ocfg = profile.train_config(task, init, seed, setting, overfit=True, data_source=source)
                        overfits[task, init] = _train_or_load(ocfg, out, data_dir, device, progress)
                        bar.update(1)
                t1 = time.perf_counter()
                t_train += t1 - t0
                for i, task in enumerate(tasks):
                    partner_task = tasks[(i + 1) % len(tasks)] if len(tasks) > 1 else None
                    for init in INITS:
                        run = runs[task, init]
                        partner = runs.get((partner_task, init)) if partner_task else None
                        if partner is not None and partner.metrics.status != "complete":
                            partner = None
                        analysis = None
                        if run.metrics.status == "complete":
                            analysis = analyze_run(run, partner, profile, setting.name, out, data_dir=data_dir,
                                                   device=device)
                        of = overfits[task, init]
                        evidence.append(RunEvidence(
                            setting=setting.name, task=task, init=init, seed=seed, run_dir=str(run.path),
                            status=run.metrics.status, metrics=run.metrics, analysis=analysis,
                            overfit=of.metrics if of is not None else None,
                            overfit_run_dir=str(of.path) if of is not None else None,
                        ))
                        bar.update(1)
                t_an += time.perf_counter() - t1
    finally:
        bar.close()
    by_key = {(e.setting, e.task, e.seed, e.init): e for e in evidence}
    pairs = tuple(
        Pair(s.name, t, seed, by_key[s.name, t, seed, "pretrained"], by_key[s.name, t, seed, "scratch"])
        for s in profile.settings for t in tasks for seed in seeds
    )
    return PlanResult(pairs, tuple(evidence), t_train, t_an)
