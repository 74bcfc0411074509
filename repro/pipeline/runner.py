"""`repro claims`: run the plan, evaluate every registered claim, write claims.json and the report, print verdicts.

A claims run lives in one directory, ``<out>/<profile>-<hash of the resolved profile>/``, holding ``train/``,
``analysis/``, ``claims.json`` and ``report.html``; the same profile reuses and resumes it.

The same call runs on one process, on a torchrun group (:mod:`repro.pipeline.distributed`; rank 0 evaluates and writes),
or as one shard of ``n`` (``shard=(i, n)``), which writes a small mergeable copy of its results -- training
metrics and analysis JSON, no weights or snapshots -- to ``<run dir>/shards/shard-<i>-of-<n>/``;
:func:`merge_shards` turns the ``n`` shard outputs into one claims run directory, claims.json and report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

from repro import provenance
from repro.config import Profile, first_seeds
from repro.data import data_notes, describe_source, source_notes
from repro.errors import ReproError
from repro.results import CLAIMS_FILE, ClaimResult, ClaimsReport, RunSummary, Stat
from repro.storage import config_hash, from_json_dict, read_json, write_json

from claims.base import CLAIMS, LEARNED_FRACTION_OF_CHANCE, REPRODUCED
from claims.evaluate import evaluate_claim
from claims.evidence import pairs_of
from claims.preconditions import convergence_reason
from repro.pipeline.distributed import Workers, join_group, leave_group
from repro.pipeline.jobs import AnalysisJob, plan_jobs
from repro.pipeline.plan import Outcomes, PlanResult, collect_evidence, execute, resolve
from repro.pipeline.revision import science_revision
from repro.pipeline.shardplan import MANIFEST_FILE, ShardPlan
from repro.pipeline.shards import (
    SHARDS_DIR,
    ShardManifest,
    check_shards,
    copy_small,
    find_manifests,
    find_plan,
    shard_dir,
    small_files,
    write_shard,
)

__all__ = ["CLAIMS_FILE", "MANIFEST_FILE", "SHARDS_DIR", "ShardManifest", "claims_dir", "evaluate_all", "finish",
           "format_stat", "format_summary", "format_table", "merge_shards", "run_claims", "shard_dir",
           "write_shard"]


def claims_dir(profile: Profile, out: Path) -> Path:
    return Path(out) / f"{profile.name}-{config_hash(profile, 8)}"


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
            overfit_run_dir=rel(e.overfit_run_dir) if e.overfit_run_dir else None, error=e.error,
            **convergence_fields(e),
        )
        for e in plan.evidence
    )


def convergence_fields(e) -> dict:  # noqa: ANN001
    """RunSummary's convergence fields of an arm's evidence (claims.preconditions.convergence_reason): None for a
    run that did not complete (nothing to judge)."""
    if e.status != "complete":
        return {"converged": None, "convergence": ""}
    why = convergence_reason(e)
    return {"converged": why is None, "convergence": why or ""}


def _unique_runs(plan: PlanResult) -> dict[str, float]:
    """Wall seconds of every distinct training run (runs shared between settings counted once)."""
    runs = {e.run_dir: e.metrics.wall_seconds for e in plan.evidence}
    runs.update({e.overfit_run_dir: e.overfit.wall_seconds for e in plan.evidence
                 if e.overfit is not None and e.overfit_run_dir is not None})
    return runs


def evaluate_all(plan: PlanResult, generalization_tasks: Sequence[str] | None = None) -> tuple[ClaimResult, ...]:
    return tuple(evaluate_claim(CLAIMS.get(name), plan.pairs, generalization_tasks) for name in CLAIMS.names())


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
    shard: tuple[int, int] | None = None,
    workers: Workers | None = None,
    shard_plan: ShardPlan | None = None,
) -> int:
    """Run everything; return the exit status (0 all reproduced, 1 otherwise; 0 for a shard or a rank > 0).

    Under torchrun (``workers`` None and the torchrun environment set) this process joins the group and runs its
    share; rank 0 writes the results."""
    from repro.data import get_task

    for t in tasks or ():
        get_task(t)
    profile = resolve(profile, tasks, first_seeds(profile, seeds) if seeds is not None else None)
    if shard_plan is not None:
        if shard is None or shard[1] != shard_plan.count:
            raise ReproError(f"--shard-plan splits the plan into {shard_plan.count} shards: pass --shard "
                             f"I/{shard_plan.count} with it")
        shard_plan.check_profile(profile)
    # pinned now: the revision of the science files as this run starts (cached for the process), so that editing the
    # tree during an hours-long run cannot relabel the numbers it computes with the edited code's revision
    science_revision()
    group = workers if workers is not None else join_group()
    try:
        root = claims_dir(profile, out)
        root.mkdir(parents=True, exist_ok=True)
        if group.rank == 0:
            write_json(root / "profile.json", profile)
            what = f", shard {shard[0]}/{shard[1]}" if shard else ""
            what += f", {group.world} workers" if group.distributed else ""
            print(f"claims run directory: {root} (profile {profile.name}{what})", flush=True)
            for note in dict.fromkeys(n for t in (*profile.tasks, *profile.partner_tasks)
                                      for n in data_notes(t, data_dir)):
                print(f"data note: {note}", flush=True)
        t0 = time.perf_counter()
        device = group.device(device)
        jobs, failures, t_train, t_an = execute(profile, root, data_dir=data_dir, device=device,
                                                progress=progress, shard=shard, workers=group,
                                                shard_plan=shard_plan)
        if group.rank != 0:
            return 0
        source = describe_source(data_dir)
        prov = provenance.collect(device)
        durations = {"train_seconds": t_train, "analysis_seconds": t_an}
        if shard is not None:
            path = write_shard(root, shard, profile, source, prov, jobs, failures,
                               {**durations, "total_seconds": time.perf_counter() - t0},
                               plan=shard_plan.digest if shard_plan is not None else "")
            print(f"shard {shard[0]}/{shard[1]} done: {len(jobs)} analyses, "
                  f"{len(failures.train) + len(failures.analysis)} failure(s). Mergeable output: {path}")
            print(f"merge all {shard[1]} shard outputs with: repro claims --merge DIR... --out OUT")
            return 0
        return finish(profile, root, jobs, failures, durations, t0, prov, source, write_html)
    finally:
        if workers is None:
            leave_group(group)


def finish(profile: Profile, root: Path, jobs: Sequence[AnalysisJob], failures: Outcomes,
           durations: dict[str, float], t0: float, prov: provenance.Provenance, source: str,
           write_html: bool, notes: Sequence[str] = ()) -> int:
    """Evaluate the claims on the evidence under ``root``, write claims.json and the report, print the summary.

    ``notes``: data notes recorded where the data was read (a shard's manifest), joined with those of ``source``
    (repro.data.data_notes) into ``ClaimsReport.data_notes``, which the summary and the report show."""
    notes = tuple(dict.fromkeys([*notes, *source_notes((*profile.tasks, *profile.partner_tasks), source)]))
    evidence = collect_evidence(jobs, root, failures)
    plan = PlanResult(pairs_of(profile, evidence), evidence, durations.get("train_seconds", 0.0),
                      durations.get("analysis_seconds", 0.0), failures)
    t_eval = time.perf_counter()
    results = evaluate_all(plan, profile.generalization_tasks)
    durations = {**durations, "evaluation_seconds": time.perf_counter() - t_eval}
    verdict = REPRODUCED if all(r.verdict == REPRODUCED for r in results) else "not_all_reproduced"

    def report_of(d: dict[str, float]) -> ClaimsReport:
        return ClaimsReport(
            profile=profile.to_json(), provenance=prov, data_source=source,
            tasks=profile.tasks, seeds=profile.seeds, settings=tuple(s.name for s in profile.settings),
            verdict=verdict, claims=results, runs=_summaries(plan, root),
            durations={
                **d,
                # this invocation (small when everything was reused from an earlier one)
                "total_seconds": time.perf_counter() - t0,
                # the recorded training time of every run the claims rest on, however many invocations it took
                "training_compute_seconds": sum(_unique_runs(plan).values()),
            },
            learned_fraction_of_chance=LEARNED_FRACTION_OF_CHANCE,
            data_notes=notes,
            science_revision=science_revision(),
        )

    report = report_of(durations)
    write_json(root / CLAIMS_FILE, report)
    print(format_summary(report))
    print(f"claims: {root / CLAIMS_FILE}")
    if write_html:
        try:
            from repro.report import write_report
        except ImportError:  # the report module is optional until it exists
            pass
        else:
            t_rep = time.perf_counter()
            print(f"report: {write_report(root, science_revision=science_revision())}")
            report = report_of({**durations, "report_seconds": time.perf_counter() - t_rep})
            write_json(root / CLAIMS_FILE, report)
    return 0 if verdict == REPRODUCED else 1


# -- merging shards ---------------------------------------------------------------------------------------------------
def merge_shards(dirs: Sequence[Path], out: Path, *, write_html: bool = True) -> int:
    """Merge the outputs of ``repro claims --shard i/n`` (all n of them) into one claims run under ``out``:
    claims.json and the report, exactly as an unsharded run would have written them. Returns the exit status."""
    t0 = time.perf_counter()
    shard_dirs = find_manifests(dirs)
    manifests = [from_json_dict(ShardManifest, read_json(d / MANIFEST_FILE)) for d in shard_dirs]
    # in shard order (shard-10 lists before shard-2), so the merged provenance is shard 0's
    order = sorted(range(len(manifests)), key=lambda i: manifests[i].shard)
    shard_dirs, manifests = [shard_dirs[i] for i in order], [manifests[i] for i in order]
    check_shards(shard_dirs, manifests, find_plan(dirs))
    first = manifests[0]

    if first.science_revision and first.science_revision != science_revision():
        print(f"note: the shards were computed at science revision {first.science_revision}; this code is at "
              f"{science_revision()} (the claims are evaluated by this code, on the shards' numbers)", flush=True)
    profile = Profile.from_json(first.profile)
    root = claims_dir(profile, out)
    root.mkdir(parents=True, exist_ok=True)
    print(f"claims run directory: {root} (merging {first.shards} shards of profile {profile.name})", flush=True)
    write_json(root / "profile.json", profile)
    _, jobs = plan_jobs(profile, first.data_source)
    by_key = {j.key: j for j in jobs}
    for d, m in zip(shard_dirs, manifests):
        for rel in small_files([by_key[k] for k in m.analyses if k in by_key]):
            copy_small(d, root, rel)
    covered = {k for m in manifests for k in m.analyses}
    if covered != set(by_key):
        raise ReproError(f"the shards cover {len(covered & set(by_key))} of the plan's {len(by_key)} analyses: "
                         f"they were written by a different version of repro; rerun the shards")
    failures = Outcomes.union([Outcomes(m.train_failures, m.analysis_failures) for m in manifests])
    # summed over shards: compute time, not wall time (shards may have run at the same time)
    durations = {k: sum(m.durations.get(k, 0.0) for m in manifests) for k in ("train_seconds", "analysis_seconds")}
    notes = tuple(dict.fromkeys(n for m in manifests for n in m.data_notes))
    for note in notes:
        print(f"data note: {note}", flush=True)
    return finish(profile, root, jobs, failures, durations, t0, first.provenance, first.data_source, write_html,
                  notes)


# -- terminal summary ------------------------------------------------------------------------------------------------
def _signed(x: float) -> str:
    return f"{x:+.3g}" if math.isfinite(x) else "n/a"


def format_stat(st: Stat, min_effect: float) -> str:
    """One comparison's statistics; an interval that could not be computed says why instead of printing nan."""
    if st.n == 0:
        return f"{st.verdict}: no valid pair"
    if st.n < 2 or not (math.isfinite(st.ci_low) and math.isfinite(st.ci_high)):
        ci = "95% CI n/a (fewer than 2 valid pairs)"
    else:
        ci = f"95% CI [{_signed(st.ci_low)}, {_signed(st.ci_high)}]"
    # the note says what the interval cannot (a blocked direction of censored pairs, a saturated or rounded spread)
    return (f"{st.verdict}: n={st.n}, mean {_signed(st.mean)}, {ci}, needs ≥ {_signed(min_effect)}"
            + (f" ({st.note})" if st.note else ""))


def format_table(report: ClaimsReport) -> str:
    tasks = list(report.tasks)
    head = f"{'claim':28s} {'section':9s} " + " ".join(f"{t:>15s}" for t in tasks) + f" {'overall':>15s}"
    lines = [head, "-" * len(head)]
    for c in report.claims:
        lines.append(f"{c.id:28s} {c.section:9s} " + " ".join(f"{c.per_task.get(t, '-'):>15s}" for t in tasks)
                     + f" {c.verdict:>15s}")
    return "\n".join(lines)


def format_summary(report: ClaimsReport) -> str:
    """The verdict table, each claim's primary comparisons per setting, the pairs left out and why, and the runs
    whose training or analysis failed."""
    lines = [format_table(report), *(f"data note: {n}" for n in report.data_notes), ""]
    shown: dict[tuple[str, ...], str] = {}
    for c in report.claims:
        lines.append(f"{c.id}: {c.verdict}")
        for s in c.settings:
            for comp in s.comparisons:
                if comp.primary:
                    lines.append(f"  [{s.setting}] {comp.name}: {format_stat(comp.overall, comp.min_effect)}")
            excluded = tuple(dict.fromkeys(e for comp in s.comparisons for e in comp.excluded))
            if not excluded:
                continue
            if excluded in shown:
                lines.append(f"  [{s.setting}] {len(excluded)} pair(s) excluded, as for {shown[excluded]}")
                continue
            shown[excluded] = f"{c.id} [{s.setting}]"
            lines.append(f"  [{s.setting}] {len(excluded)} pair(s) excluded:")
            lines += [f"    - {e}" for e in excluded]
    failed = [r for r in report.runs if r.error]
    if failed:
        lines.append("")
        lines.append(f"{len(failed)} run(s) with failures (the same command retries them and reuses the rest):")
        lines += [f"  {r.setting} {r.task} {r.init} seed {r.seed}: {r.error}" for r in failed]
    return "\n".join(lines)
