"""A plan split into shards that each fit one GPU window, frozen in a plan file so that shards computed in
different sessions, on different machines, weeks apart, still partition the same plan.

A GPU is lent in windows (minutes of device time, a limit per command), so a profile too large for one window is
run as shards whose small outputs merge (:mod:`repro.pipeline.shards`). :func:`plan_shards` sizes the split with
the recorded timings (:mod:`repro.pipeline.timings`; GPU ones by default, CPU ones for CPU shards): the fewest
shards whose expected wall time on one GPU (or on 2 CPU cores) is at most a budget, then balanced (the smallest
maximum with that many). Analyses are taken in an order that keeps the runs they read together -- each
(init, seed) block, setting by setting, task by task around the cycle of partner tasks -- so a shard trains few
runs another shard trains too.

The split depends on the timings, and the timings change with every GPU run; a shard's place in the plan must
not. So the split is frozen in a plan file (:class:`ShardPlan`, e.g. ``reports/standard/shards/plan.json``):
``repro claims --shard I/N --shard-plan FILE`` runs shard I's analyses from the file, its manifest records the
file's digest, and the merge refuses shards of another split. Analyses are named without the data source (which
is a machine's path): ``<setting>/<task>/<init>/seed<seed>``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from repro.config import Profile, get_profile
from repro.errors import ReproError
from repro.models import INITS
from repro.pipeline.jobs import (
    AnalysisJob,
    TrainJob,
    analysis_cost,
    plan_jobs,
    run_key,
    train_cost,
)
from repro.pipeline.timings import RECORDED, Timings, measured_profile, model_layers, work_scale
from repro.storage import (
    config_hash,
    from_json_dict,
    read_json,
    to_json_dict,
    write_json,
)

PLAN_FILE = "plan.json"
# the manifest each shard output holds (written by repro.pipeline.shards); named here, below shards, because
# computed_shards reads it
MANIFEST_FILE = "manifest.json"
DEFAULT_BUDGET_SECONDS = 420.0
# the default budget per device kind: a GPU window (420 s of a 600 s call), or 100 minutes on 2 CPU cores
DEFAULT_BUDGET_BY_DEVICE = {"cuda": DEFAULT_BUDGET_SECONDS, "cpu": 6000.0}
# the data source only names run directories; any fixed string gives the same split (labels carry no source)
_PLAN_SOURCE = "plan"


def job_label(job: AnalysisJob) -> str:
    """An analysis job's name in a plan file: the same on every machine (no data source, no config hash)."""
    return f"{job.setting}/{job.task}/{job.init}/seed{job.seed}"


@dataclass(frozen=True)
class ShardSpec:
    """One shard of a frozen plan: its analyses (labels) and what it is expected to cost on one GPU."""

    index: int
    analyses: tuple[str, ...]
    train_runs: int  # training runs it trains (partner runs another shard also trains included)
    train_steps: int
    expected_seconds: float


@dataclass(frozen=True)
class ShardPlan:
    """A profile's plan split into shards, with the budget and the timings that sized it."""

    profile: str
    profile_hash: str  # config_hash(profile, 8): the claims run directory's key
    budget_seconds: float
    timings: Timings  # plan files written before issue 42 hold GPU timings without kind: they load as cuda
    shards: tuple[ShardSpec, ...]
    # The science revision (repro.pipeline.revision) of the code that froze the plan: what its shards are expected
    # to be computed with (each shard's manifest records its own; the merge refuses a mix). "" in older plan files.
    science_revision: str = ""

    @property
    def count(self) -> int:
        return len(self.shards)

    @property
    def digest(self) -> str:
        """Identity of the split (which analyses each shard runs), recorded in every shard manifest."""
        canon = json.dumps([[self.profile_hash], *[list(s.analyses) for s in self.shards]], separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    @property
    def expected_seconds(self) -> float:
        return sum(s.expected_seconds for s in self.shards)

    def check_profile(self, profile: Profile, where: str = "the shard plan") -> None:
        """Refuse a profile other than the one this plan split (a ReproError naming both)."""
        mine = config_hash(profile, 8)
        if mine != self.profile_hash:
            raise ReproError(f"{where} splits profile {self.profile}-{self.profile_hash}, but this run resolves to "
                             f"{profile.name}-{mine}: use the same profile, --set, --tasks and --seeds as the plan, "
                             f"or plan again with --plan-shards")

    def jobs_of(self, index: int, jobs: Sequence[AnalysisJob]) -> tuple[AnalysisJob, ...]:
        """Shard ``index``'s analysis jobs, found by label among the plan's ``jobs``."""
        if not 0 <= index < self.count:
            raise ReproError(f"--shard {index}/{self.count}: the shard plan has shards 0 to {self.count - 1}")
        by_label = {job_label(j): j for j in jobs}
        unknown = [a for a in self.shards[index].analyses if a not in by_label]
        if unknown:
            raise ReproError(f"the shard plan names analyses this profile does not have ({unknown[0]}, ...): it was "
                             f"written for another profile; plan again with --plan-shards")
        return tuple(by_label[a] for a in self.shards[index].analyses)


def _measured_standard() -> Profile:
    """The standard profile as its analysis was when ``RECORDED.analysis_seconds`` was measured (issue 11)."""
    return measured_profile(get_profile("standard"))


def seconds_model(profile: Profile, timings: Timings) -> tuple[dict[str, float], dict[str, float]]:
    """Expected seconds on one device of the timings' kind per training job (by run key) and per analysis job
    (by label) of ``profile``."""
    train, analyses = plan_jobs(profile, _PLAN_SOURCE)
    # the recorded seconds predate science v3's instruments too (issue 36): those count on top, like issue 19's. On
    # the CPU a Hessian-vector product is priced at the CPU calibration; on a GPU at the assumed 5 forwards, as the
    # plan's job costs are
    hvp = timings.kind if timings.kind == "cpu" else None
    if timings.analysis_current:  # timed on today's analysis: its instruments are in the figure
        ref = get_profile(timings.reference_profile)
        per_analysis = timings.analysis_seconds / analysis_cost(ref, device_type=hvp)
    else:
        ref = measured_profile(get_profile(timings.reference_profile))
        per_analysis = timings.analysis_seconds / analysis_cost(ref, science_v3=False, device_type=hvp)
    per_analysis *= work_scale(timings, profile.model, profile.pretrained.batch_size)
    cost = {s: analysis_cost(profile, s, device_type=hvp) for s in (True, False)} if hvp else None
    rate = timings.train_steps_per_second_by_task
    return ({j.key: train_cost(j.config) / rate.get(j.config.task, timings.train_steps_per_second)
             * work_scale(timings, j.config.model, j.config.hyper.batch_size) for j in train},
            {job_label(j): (cost[j.partner is not None] if cost else j.cost) * per_analysis for j in analyses})


def _locality_order(profile: Profile, jobs: Sequence[AnalysisJob]) -> list[AnalysisJob]:
    settings = [s.name for s in profile.settings]
    tasks = list(profile.tasks)
    return sorted(jobs, key=lambda j: (INITS.index(j.init), j.seed, settings.index(j.setting), tasks.index(j.task)))


def _measurement(job: AnalysisJob) -> tuple[str, str | None]:
    """What an analysis measures: its run and its partner run. Two settings that share a run and its partner (the
    workstation profile's scratch arm) share one measurement (claims.analysis reuses it), so a shard pays once."""
    return run_key(job.run), (run_key(job.partner) if job.partner is not None else None)


def _segments(jobs: Sequence[AnalysisJob], limit: float, train_s: dict[str, float], an_s: dict[str, float],
              process_s: float) -> list[list[AnalysisJob]]:
    """Cut ``jobs`` (in order) into the fewest consecutive segments of expected cost ≤ ``limit`` (next fit is
    optimal for consecutive segments because a segment's cost only grows as it is extended)."""
    out: list[list[AnalysisJob]] = []
    cur: list[AnalysisJob] = []
    cost, runs, measured = process_s, set(), set()
    for j in jobs:
        new = {run_key(c) for c in j.needs()} - runs
        extra = (0.0 if _measurement(j) in measured else an_s[job_label(j)]) + sum(train_s[k] for k in new)
        if cur and cost + extra > limit:
            out.append(cur)
            cur, cost, runs, measured = [], process_s, set(), set()
            new = {run_key(c) for c in j.needs()}
            extra = an_s[job_label(j)] + sum(train_s[k] for k in new)
        cur.append(j)
        cost += extra
        runs |= new
        measured.add(_measurement(j))
    if cur:
        out.append(cur)
    return out


def _spec(index: int, seg: Sequence[AnalysisJob], train: dict[str, TrainJob], train_s: dict[str, float],
          an_s: dict[str, float], process_s: float) -> ShardSpec:
    runs = sorted({run_key(c) for j in seg for c in j.needs()})
    steps = int(sum(train_cost(train[k].config) for k in runs))
    once = {_measurement(j): an_s[job_label(j)] for j in seg}
    seconds = process_s + sum(once.values()) + sum(train_s[k] for k in runs)
    return ShardSpec(index, tuple(job_label(j) for j in seg), len(runs), steps, round(seconds, 1))


def plan_shards(profile: Profile, budget_seconds: float = DEFAULT_BUDGET_SECONDS, timings: Timings = RECORDED,
                count: int | None = None) -> ShardPlan:
    """Split ``profile``'s plan into the fewest shards whose expected seconds on one device of the timings' kind
    (default: one GPU) are ≤ ``budget_seconds`` (or into exactly ``count`` shards), balanced: the largest expected
    shard is as small as that count allows. CPU shards: ``timings=RECORDED_CPU`` and a budget of
    ``DEFAULT_BUDGET_BY_DEVICE["cpu"]``."""
    if budget_seconds <= timings.process_seconds:
        raise ReproError(f"--budget {budget_seconds:g}: must exceed the {timings.process_seconds:g} s a shard process "
                         f"takes to start (repro/pipeline/timings.py)")
    train_jobs, jobs = plan_jobs(profile, _PLAN_SOURCE)
    train = {j.key: j for j in train_jobs}
    train_s, an_s = seconds_model(profile, timings)
    ordered = _locality_order(profile, jobs)
    single = [_spec(0, [j], train, train_s, an_s, timings.process_seconds) for j in ordered]
    largest = max(single, key=lambda s: s.expected_seconds)
    if count is None and largest.expected_seconds > budget_seconds:
        raise ReproError(f"one analysis ({largest.analyses[0]}) with the runs it reads is expected to take "
                         f"{largest.expected_seconds:.0f} s on {timings.device}, over the {budget_seconds:g} s "
                         f"budget: raise --budget")
    if count is not None and not 1 <= count <= len(ordered):
        raise ReproError(f"--shards {count}: must be between 1 and the plan's {len(ordered)} analyses")
    n = count if count is not None else len(_segments(ordered, budget_seconds, train_s, an_s, timings.process_seconds))
    lo, hi = largest.expected_seconds, max(budget_seconds, sum(s.expected_seconds for s in single))
    for _ in range(60):  # the smallest limit that still gives n segments: balance
        mid = (lo + hi) / 2
        if len(_segments(ordered, mid, train_s, an_s, timings.process_seconds)) <= n:
            hi = mid
        else:
            lo = mid
    segs = _segments(ordered, hi, train_s, an_s, timings.process_seconds)
    # fewer segments than asked (count larger than needed): split the longest ones until there are n
    while len(segs) < n:
        k = max(range(len(segs)), key=lambda i: (len(segs[i]) > 1, len(segs[i])))
        seg = segs.pop(k)
        segs[k:k] = [seg[: len(seg) // 2], seg[len(seg) // 2:]]
    specs = tuple(_spec(i, s, train, train_s, an_s, timings.process_seconds) for i, s in enumerate(segs))
    from repro.pipeline.revision import compute_science_revision

    return ShardPlan(profile.name, config_hash(profile, 8), float(budget_seconds), timings, specs,
                     compute_science_revision())


def format_plan(plan: ShardPlan) -> str:
    """The split as a user reads it: one line per shard, then the totals and where the timings come from."""
    where = "one GPU" if plan.timings.kind == "cuda" else plan.timings.kind
    head = (f"shard plan of profile {plan.profile}-{plan.profile_hash}: {plan.count} shards, each expected at most "
            f"{plan.budget_seconds:g} s ({plan.budget_seconds / 60:.1f} min) on {where} ({plan.timings.device}); "
            f"device {plan.timings.kind}, budget {plan.budget_seconds:g} s")
    lines = [head]
    for s in plan.shards:
        lines.append(f"  shard {s.index}/{plan.count}: {len(s.analyses):2d} analyses, {s.train_runs:2d} training "
                     f"runs ({s.train_steps} steps), expected {s.expected_seconds:5.0f} s  "
                     f"[{s.analyses[0]} .. {s.analyses[-1]}]")
    worst = max(s.expected_seconds for s in plan.shards)
    total = (f"{plan.expected_seconds / 60:.1f} GPU-minutes" if plan.timings.kind == "cuda" else
             f"{plan.expected_seconds / 3600:.1f} h of wall time on {plan.timings.device}")
    lines.append(f"total expected {total} (largest shard {worst:.0f} s); "
                 f"timings ({plan.timings.train_steps_per_second:g} training steps/s, "
                 f"{plan.timings.analysis_seconds:g} s per {plan.timings.reference_profile} analysis, "
                 f"{plan.timings.process_seconds:g} s per "
                 f"shard process) from: {plan.timings.source}")
    lines.append(f"plan digest {plan.digest}" + (f"; science revision {plan.science_revision}"
                                                  if plan.science_revision else ""))
    return "\n".join(lines)


def load_plan(path: Path) -> ShardPlan:
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"--shard-plan {path}: no such file; write one with `repro claims --plan-shards "
                         f"--save-plan {path}`")
    try:
        return from_json_dict(ShardPlan, read_json(path))
    except (ValueError, TypeError, KeyError) as e:
        raise ReproError(f"--shard-plan {path} is not a shard plan ({e}); write one with --plan-shards") from e


def save_plan(path: Path, plan: ShardPlan) -> None:
    """Write the plan file, atomically; refuse to replace a different plan that shards were computed with."""
    path = Path(path)
    if path.is_file():
        old = load_plan(path)
        if old.digest != plan.digest and computed_shards(path.parent, old):
            raise ReproError(f"{path} already holds another split ({old.count} shards, digest {old.digest}) and "
                             f"shards {sorted(computed_shards(path.parent, old))} were computed with it: keep it, or "
                             f"delete the shards and the plan first")
    write_json(path, plan)


def computed_shards(folder: Path, plan: ShardPlan) -> dict[int, Path]:
    """The shards of ``plan`` whose outputs are under ``folder`` (``shard-I-of-N/manifest.json``, this plan's
    digest), by index."""
    found: dict[int, Path] = {}
    for m in sorted(Path(folder).glob(f"shard-*-of-{plan.count}/{MANIFEST_FILE}")):
        data = read_json(m)
        if data.get("plan") == plan.digest and data.get("shards") == plan.count:
            found[int(data["shard"])] = m.parent
    return found


def next_shards(plan: ShardPlan, done: Iterable[int], seconds: float) -> list[int]:
    """The missing shards, in index order, that fit in ``seconds`` one after another (first fit: a later, shorter
    shard is taken when an earlier one does not fit the time left)."""
    done_set, left, out = set(done), float(seconds), []
    for s in plan.shards:
        if s.index not in done_set and s.expected_seconds <= left:
            out.append(s.index)
            left -= s.expected_seconds
    return out


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m repro.pipeline.shardplan next PLAN DIR SECONDS``: print the shards to run next (for
    scripts/device_run.sh); ``missing PLAN DIR``: print the shards not yet under DIR."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) == 4 and args[0] == "next":
            plan = load_plan(Path(args[1]))
            print(" ".join(str(i) for i in next_shards(plan, computed_shards(Path(args[2]), plan), float(args[3]))))
            return 0
        if len(args) == 3 and args[0] == "missing":
            plan = load_plan(Path(args[1]))
            have = computed_shards(Path(args[2]), plan)
            print(" ".join(str(s.index) for s in plan.shards if s.index not in have))
            return 0
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("usage: python -m repro.pipeline.shardplan next PLAN DIR SECONDS | missing PLAN DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())


__all__ = ["DEFAULT_BUDGET_BY_DEVICE", "DEFAULT_BUDGET_SECONDS", "MANIFEST_FILE", "PLAN_FILE", "ShardPlan",
           "ShardSpec", "computed_shards", "format_plan", "job_label", "load_plan", "model_layers", "next_shards",
           "plan_shards", "save_plan", "seconds_model", "to_json_dict", "work_scale"]
