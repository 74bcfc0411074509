"""`repro claims`: run the plan, evaluate every registered claim, write claims.json and the report, print verdicts.

A claims run lives in one directory, ``<out>/<profile>-<hash of the resolved profile>/``, holding ``train/``,
``analysis/``, ``claims.json`` and ``report.html``; the same profile reuses and resumes it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from repro import provenance
from repro.config import Profile
from repro.data import describe_source
from repro.storage import config_hash, from_json_dict, read_json, write_json

from claims.base import CLAIMS, LEARNED_FRACTION_OF_CHANCE, REPRODUCED, ClaimResult
from claims.evaluate import evaluate_claim
from claims.plan import PlanResult, run_plan

CLAIMS_FILE = "claims.json"


@dataclass(frozen=True)
class RunSummary:
    setting: str
    task: str
    init: str
    seed: int
    run_dir: str  # relative to the claims directory
    analysis: str | None
    status: str
    learned: bool
    train_loss_theta1: float | None
    dev_accuracy: float
    total_steps: int
    wall_seconds: float
    overfit_run_dir: str | None


@dataclass(frozen=True)
class ClaimsReport:
    profile: dict[str, Any]
    provenance: provenance.Provenance
    data_source: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    settings: tuple[str, ...]
    verdict: str
    claims: tuple[ClaimResult, ...]
    runs: tuple[RunSummary, ...]
    durations: dict[str, float]
    learned_fraction_of_chance: float


def claims_dir(profile: Profile, out: Path) -> Path:
    return Path(out) / f"{profile.name}-{config_hash(profile, 8)}"


def load_claims(path: Path) -> ClaimsReport:
    path = Path(path)
    if path.is_dir():
        path = path / CLAIMS_FILE
    return from_json_dict(ClaimsReport, read_json(path))


def _summaries(plan: PlanResult, root: Path) -> tuple[RunSummary, ...]:
    from claims.analysis import analysis_path

    def rel(p: str | Path) -> str:
        return str(Path(p).relative_to(root))

    return tuple(
        RunSummary(
            setting=e.setting, task=e.task, init=e.init, seed=e.seed, run_dir=rel(e.run_dir),
            analysis=rel(analysis_path(root, Path(e.run_dir), e.setting)) if e.analysis is not None else None,
            status=e.status, learned=e.learned,
            train_loss_theta1=e.analysis.train_loss_theta1 if e.analysis else None,
            dev_accuracy=e.metrics.evals[-1].dev_accuracy if e.metrics.evals else float("nan"),
            total_steps=e.metrics.total_steps, wall_seconds=e.metrics.wall_seconds,
            overfit_run_dir=rel(e.overfit_run_dir) if e.overfit_run_dir else None,
        )
        for e in plan.evidence
    )


def _unique_runs(plan: PlanResult) -> dict[str, float]:
    """Wall seconds of every distinct training run (runs shared between settings counted once)."""
    runs = {e.run_dir: e.metrics.wall_seconds for e in plan.evidence}
    runs.update({e.overfit_run_dir: e.overfit.wall_seconds for e in plan.evidence
                 if e.overfit is not None and e.overfit_run_dir is not None})
    return runs


def evaluate_all(plan: PlanResult) -> tuple[ClaimResult, ...]:
    return tuple(evaluate_claim(CLAIMS.get(name), plan.pairs) for name in CLAIMS.names())


def run_claims(
    profile: Profile,
    out: Path,
    *,
    data_dir: str | None = None,
    device: str | None = None,
    tasks: Sequence[str] | None = None,
    seeds: int | None = None,
    progress: bool = True,
    write_html: bool = True,
) -> int:
    """Run everything; return the exit status (0 all reproduced, 1 otherwise)."""
    from repro.data import get_task

    if tasks:
        for t in tasks:
            get_task(t)
        profile = replace(profile, tasks=tuple(tasks))
    if seeds is not None:
        profile = replace(profile, seeds=tuple(range(seeds)))
    root = claims_dir(profile, out)
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "profile.json", profile)
    t0 = time.perf_counter()
    plan = run_plan(profile, root, data_dir=data_dir, device=device, progress=progress)
    results = evaluate_all(plan)
    verdict = REPRODUCED if all(r.verdict == REPRODUCED for r in results) else "not_all_reproduced"
    report = ClaimsReport(
        profile=profile.to_json(), provenance=provenance.collect(device), data_source=describe_source(data_dir),
        tasks=profile.tasks, seeds=profile.seeds, settings=tuple(s.name for s in profile.settings),
        verdict=verdict, claims=results, runs=_summaries(plan, root),
        durations={
            # this invocation (small when everything was reused from an earlier one)
            "train_seconds": plan.train_seconds, "analysis_seconds": plan.analysis_seconds,
            "total_seconds": time.perf_counter() - t0,
            # the recorded training time of every run the claims rest on, however many invocations it took
            "training_compute_seconds": sum(_unique_runs(plan).values()),
        },
        learned_fraction_of_chance=LEARNED_FRACTION_OF_CHANCE,
    )
    write_json(root / CLAIMS_FILE, report)
    print(format_table(report))
    print(f"claims: {root / CLAIMS_FILE}")
    if write_html:
        try:
            from repro.report import write_report
        except ImportError:  # the report module is optional until it exists
            pass
        else:
            print(f"report: {write_report(root)}")
    return 0 if verdict == REPRODUCED else 1


def format_table(report: ClaimsReport) -> str:
    tasks = list(report.tasks)
    head = f"{'claim':28s} {'section':9s} " + " ".join(f"{t:>15s}" for t in tasks) + f" {'overall':>15s}"
    lines = [head, "-" * len(head)]
    for c in report.claims:
        lines.append(f"{c.id:28s} {c.section:9s} " + " ".join(f"{c.per_task.get(t, '-'):>15s}" for t in tasks)
                     + f" {c.verdict:>15s}")
    for c in report.claims:
        lines.append(f"  {c.id}: {c.reason}")
    return "\n".join(lines)
