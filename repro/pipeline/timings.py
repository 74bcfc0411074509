"""The recorded timings that size the shards of a reproduction, per device kind -- the one place they live.

:data:`RECORDED_BY_DEVICE` holds one :class:`Timings` per device kind: ``cuda`` (one H100/H200) and ``cpu`` (2 CPU
cores). Every run that measures them updates these figures: ``python -m repro.pipeline.timings RUN_DIR...`` reads a
finished run's manifests (shard outputs, or a whole claims run directory) and prints the measured figures and the
line to paste here, with the date, the device and the runs they came from; ``scripts/device_run.sh shard`` calls it
after every GPU shard run. They size the split only (how many shards, which jobs go together); a shard's numbers
never depend on them, and a plan already frozen in a plan file (:mod:`repro.pipeline.shardplan`) keeps its split
when they change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Timings:
    """Expected seconds of the plan's jobs on one device of kind ``kind``.

    ``analysis_seconds`` is one analysis of ``reference_profile`` with its cross-task surface, as the analysis was
    before issue 19's instruments and science v3 (analysis version 3: what both records measured); other profiles
    and landscape settings scale it by their forward-pass count (:func:`repro.pipeline.jobs.analysis_cost`), and
    the instruments added since count on top. ``train_steps_per_second`` is for the reference profile's pretrained
    arm (its model and batch size, at most 128 tokens a sequence). How another model or batch size scales
    (:func:`repro.pipeline.shardplan.seconds_model`): on ``cuda`` it does not -- a step, and a batch of forward
    passes, take the same time at these sizes (latency-bound); on ``cpu`` seconds scale with examples x transformer
    layers (compute-bound), and a Hessian-vector product is priced at the CPU calibration of ``repro bench
    curvature``. The last two fields have defaults so that plan files written before them (GPU timings) load."""

    device: str
    train_steps_per_second: float  # optimizer steps of the reference profile's pretrained arm, evaluations included
    analysis_seconds: float  # one reference analysis: curves, surfaces, widths, layer surfaces, Hessian, sharpness
    process_seconds: float  # one `repro claims --shard` process: imports, tokenising, loading models, writing
    source: str  # where each figure comes from, and which are estimates
    kind: str = "cuda"  # the torch device type these figures are for ("cuda" or "cpu")
    reference_profile: str = "standard"  # the profile whose training steps and analysis were timed
    # True: ``analysis_seconds`` was timed on the current analysis (science v3 and the profile's instruments
    # included), so nothing counts on top; False: an analysis of version 3, as the older records were.
    analysis_current: bool = False
    # Steps per second by task, where measured (a task's sequence lengths set its step cost: MRPC's pairs train at
    # 0.45x SST-2's rate on 2 cores); a task not listed trains at ``train_steps_per_second``.
    train_steps_per_second_by_task: dict[str, float] = field(default_factory=dict)


GpuTimings = Timings  # the name before CPU timings joined (issue 42)


# Issue 11 (2026-11, H200, the standard recipe at 3 seeds, grid radius 1 -- the same point counts as radius 2):
# ~12 s per 315-step training run (26 steps/s) and ~45 s per analysis; the whole standard profile at 3 seeds
# (4 tasks x 3 seeds x 2 settings) took about 70 min, which these figures reproduce (29 min of training, 36 of
# analyses, plus start-up). H100: assumed equal (an estimate; its memory is slower). process_seconds: an estimate.
RECORDED_CUDA = Timings(
    device="NVIDIA H200 (H100 assumed equal)",
    train_steps_per_second=26.25,
    analysis_seconds=45.0,
    process_seconds=30.0,
    source="issue 11 (H200, 2026-11): 12 s per 315-step run, 45 s per analysis, whole standard profile at 3 seeds "
           "~70 min; per-shard process start-up 30 s and the H100 figures are estimates derived from these, to be "
           "replaced by the figures each GPU shard run prints (scripts/device_run.sh shard)",
)

# The 2026-11-27 cpu run (tests/fixtures/golden/cpu, reports/cpu-2026-11-27; 2 cores, x86_64, AVX2, torch 2.13.0+cpu; profile
# cpu: minilm-l3-mean, batch 8, <= 128 tokens, sst2 + mrpc, analyses of version 2/3 with the cross-task surface):
# * train_steps_per_second 3.23: its last 31 training runs (revision 766783e, 16:08-16:46 UTC, one process at 2
#   threads, one run after another): 7232 steps in 2242 s from the first run's start to the last run's end (run
#   start-up between runs included; 3.44 over the runs' own wall_seconds; sst2 4.26, mrpc 2.64 steps/s). Its first 5
#   runs (earlier revisions, contended by other processes) ran at 0.37-2.2 steps/s: all 36 runs give 1.71 steps/s
#   (`python -m repro.pipeline.timings tests/fixtures/golden/cpu`). Cross-check: bench/results/train-cpu.json
#   (minilm-l6, batch 32, sst2) 1.27 steps/s in random order, i.e. 244 example-layers/s against 3.23 x 8 x 3 = 78
#   here with evaluations included: a CPU plan of a batch-32 profile is priced on the safe side.
# * analysis_seconds 133.3: its claims.json durations, 3198 s for its 24 analyses (--workers 2 --threads 1 sharing
#   the 2 cores, 17:40-18:33 UTC): the wall time per analysis on 2 cores. One process at 2 threads (a shard) was not
#   timed: an estimate that it is as fast.
# * process_seconds 10.0: 0.9 s in-process (its total_seconds less analysis, training, evaluation and report) plus
#   8.6-9.9 s of imports (repro.cli, the runner, claims.analysis, torch, transformers, datasets) timed 2026-12-07 on
#   a 2-core machine shared with other work.
RECORDED_CPU = Timings(
    device="2 CPU cores (x86_64)",
    train_steps_per_second=3.23,
    analysis_seconds=133.3,
    process_seconds=10.0,
    source="the 2026-11-27 cpu run (tests/fixtures/golden/cpu; 2 cores, profile cpu: minilm-l3-mean, batch 8): "
           "3.23 steps/s over its 31 uncontended training runs (1.71 over all 36), 3198 s for its 24 analyses "
           "(2 workers x 1 thread); process start-up 0.9 s measured there plus 9-10 s of imports timed 2026-12-07; "
           "estimates: a 2-thread shard process analyses as fast as 2 one-thread workers, and other models and "
           "batch sizes scale with examples x layers",
    kind="cpu",
    reference_profile="cpu-2026-11",
)

RECORDED_BY_DEVICE: dict[str, Timings] = {"cuda": RECORDED_CUDA, "cpu": RECORDED_CPU}
# Timings measured on a profile's own recipe, by (device kind, profile name): used for that profile instead of the
# device kind's scaled figures (examples x layers is a poor guide across batch sizes and bucketing: it priced the
# workstation recipe's training 4.4x too slow).
RECORDED_BY_PROFILE: dict[tuple[str, str], Timings] = {}

# The workstation recipe on 2 cores (bench/results/workstation-timings-cpu.json, scripts/profile_timings.py,
# 2026-12-07, one process at 2 threads, nothing else running): training from the rate pilot's runs of this recipe
# (MiniLM-L6, batch 32, bucketed, <= 128 tokens; 2 dev evaluations an epoch where the profile makes 1, so on the safe
# side): SST-2 1.767 steps/s over 18 runs, MRPC 0.795 over its 2 uncontended runs; one SST-2 analysis of this
# profile's instruments with its MRPC partner: 785 s (its 11x11 surface 312 s of it).
RECORDED_CPU_WORKSTATION = Timings(
    device="2 CPU cores (x86_64)",
    train_steps_per_second=1.767,
    analysis_seconds=785.2,
    process_seconds=10.0,
    source="bench/results/workstation-timings-cpu.json (2026-12-07, 2 cores): SST-2 1.767 and MRPC 0.795 training "
           "steps/s from the rate pilot's runs of this recipe (2 dev evaluations an epoch against the profile's 1: "
           "on the safe side), 785 s for one SST-2 analysis with its MRPC partner; process start-up as RECORDED_CPU",
    kind="cpu",
    reference_profile="workstation",
    analysis_current=True,
    train_steps_per_second_by_task={"sst2": 1.767, "mrpc": 0.795},
)
RECORDED_BY_PROFILE[("cpu", "workstation")] = RECORDED_CPU_WORKSTATION
RECORDED = RECORDED_CUDA  # the GPU timings, the planner's default (the name before issue 42)


def recorded_for(device: str | None, profile: str | None = None) -> Timings:
    """The recorded timings of a torch device (``cuda``, ``cuda:1``, ``cpu``; None: ``cuda``, the default of
    ``--plan-shards``) -- those timed on ``profile`` itself when there are (:data:`RECORDED_BY_PROFILE`), else the
    device kind's, scaled; a ReproError for a device kind without recorded timings."""
    from repro.errors import ReproError

    kind = (device or "cuda").split(":", 1)[0].strip().lower()
    if kind not in RECORDED_BY_DEVICE:
        raise ReproError(f"--device {device}: no recorded timings for {kind!r} (repro/pipeline/timings.py has "
                         f"{', '.join(sorted(RECORDED_BY_DEVICE))})")
    return RECORDED_BY_PROFILE.get((kind, profile or ""), RECORDED_BY_DEVICE[kind])


def measured_profile(profile):  # noqa: ANN001, ANN201 - a repro.config.Profile (imported lazily)
    """``profile`` as its analysis was when the recorded ``analysis_seconds`` were measured (analysis version 3):
    without issue 19's instruments, which analyses have since gained; their products then count on top."""
    import dataclasses

    off = dataclasses.replace(profile.landscape, density_probes=0, density_steps=0, group_curvature_iters=0,
                              adaptive_sharpness_steps=0)
    return dataclasses.replace(profile, landscape=off)


def model_layers(model: str) -> int:
    """Transformer layers of a named model (a CPU step's work grows with them); 12 for a hub model (BERT-base)."""
    from repro.models.zoo import resolve_spec

    spec = resolve_spec(model)
    n = spec.num_hidden_layers or dict(spec.config_overrides).get("num_hidden_layers")
    return int(n) if n else (6 if spec.source == "minilm-package" else 12)


def work_scale(timings: Timings, model: str, batch_size: int) -> float:
    """Seconds of a step (or a step-equivalent) of ``model`` at ``batch_size`` relative to one of the profile the
    timings were measured on: 1 on a GPU (latency-bound at these sizes: the figures were always used so), examples
    x layers on the CPU (compute-bound)."""
    if timings.kind != "cpu":
        return 1.0
    from repro.config import get_profile

    ref = get_profile(timings.reference_profile)
    return (batch_size * model_layers(model)) / (ref.pretrained.batch_size * model_layers(ref.model))


# -- measuring: the figures a finished run measured, in the units above ---------------------------------------------
@dataclass(frozen=True)
class Measured:
    """What the runs under a directory measured, and those figures as a :class:`Timings` to paste above."""

    runs: int  # distinct training runs with a complete record (train/*/metrics.json)
    steps: int
    run_seconds: float  # their wall_seconds, summed
    processes: int  # shard manifests, or claims.json files when there are none
    analyses: int
    analysis_seconds: float  # summed over the processes
    process_seconds: float  # summed: total less training, analyses, evaluation and report
    timings: Timings  # per reference unit (see Timings): the line to paste


def _records(dirs: list[Path]) -> list[tuple[Path, dict, dict]]:
    """(folder, durations record, profile as JSON) of each shard manifest under ``dirs``, or of each claims.json
    when there is no shard manifest (a claims run directory)."""
    import json

    def load(path: Path) -> dict:
        return json.loads(path.read_text(encoding="utf-8"))

    shards = sorted({m for d in dirs for m in ([d / "manifest.json"] if (d / "manifest.json").is_file()
                                               else d.rglob("shard-*/manifest.json"))})
    if shards:
        return [(m.parent, load(m), load(m)["profile"]) for m in shards]
    found = sorted({c for d in dirs for c in ([d / "claims.json"] if (d / "claims.json").is_file()
                                              else d.rglob("claims.json"))})
    return [(c.parent, load(c), load(c.parent / "profile.json")) for c in found]


def measure(dirs: list[Path] | Path) -> Measured:
    """The timings measured by the finished runs under ``dirs`` (shard outputs: ``shard-I-of-N/manifest.json``, or
    claims run directories: ``claims.json``), whichever device ran them. Steps per second from each distinct
    training run's own record (steps / wall_seconds, evaluations included: right even where a run was reused);
    seconds per analysis and per process from the durations of the processes (right where they computed their
    analyses; a process that reused them measured nothing). Both are converted to the units of :class:`Timings`:
    an analysis of the profile's registered namesake as of analysis version 3 (the run's science v3 and issue 19's
    instruments priced by :func:`repro.pipeline.jobs.analysis_cost`), and on the CPU the reference model and batch."""
    import json

    from repro.config import Profile, get_profile
    from repro.errors import ReproError
    from repro.pipeline.jobs import analysis_cost

    dirs = [Path(d) for d in ([dirs] if isinstance(dirs, (str, Path)) else dirs)]
    records = _records(dirs)
    if not records:
        raise ReproError(f"no shard manifest or claims.json under {', '.join(map(str, dirs))}: pass the folder of "
                         f"finished shard outputs or of a claims run")
    profile = Profile.from_json(records[0][2])
    devices = sorted({r[1]["provenance"]["device"] for r in records})
    kind = devices[0].split(":", 1)[0]
    try:
        reference = get_profile(profile.name)
    except Exception:  # noqa: BLE001 - a profile this checkout does not register: its own figures
        reference = profile
    draft = Timings(devices[0], 1.0, 1.0, 0.0, "", kind=kind, reference_profile=reference.name)
    runs: dict[str, tuple[int, float, float]] = {}
    versions: set[int] = set()
    for folder, _, _ in records:
        for m in folder.glob("train/*/metrics.json"):
            metrics = json.loads(m.read_text(encoding="utf-8"))
            if metrics.get("status") == "complete" and metrics.get("wall_seconds", 0) > 0:
                cfg = json.loads((m.parent / "config.json").read_text(encoding="utf-8"))["config"]
                scale = work_scale(draft, cfg["model"], cfg["hyper"]["batch_size"]) if kind == "cpu" else 1.0
                runs[m.parent.name] = (int(metrics["total_steps"]), float(metrics["wall_seconds"]), scale)
        for a in folder.glob("analysis/*.json"):
            versions.add(int(json.loads(a.read_text(encoding="utf-8")).get("version", 0)))
    n_an, an_s, proc_s = 0, 0.0, 0.0
    for _, rec, _ in records:
        d = rec["durations"]
        if "analyses" in rec:  # a shard manifest
            n_an += len(rec["analyses"]) - len(rec.get("analysis_failures", {}))
        else:  # claims.json: one analysis per arm that has one
            n_an += sum(1 for r in rec.get("runs", []) if r.get("analysis"))
        an_s += d.get("analysis_seconds", 0.0)
        proc_s += d.get("total_seconds", 0.0) - sum(d.get(k, 0.0) for k in
                                                    ("train_seconds", "analysis_seconds", "evaluation_seconds",
                                                     "report_seconds"))
    steps, run_s = sum(r[0] for r in runs.values()), sum(r[1] for r in runs.values())
    ref_steps = sum(r[0] * r[2] for r in runs.values())  # in steps of the reference model and batch
    hvp = kind if kind == "cpu" else None
    v3 = not versions or max(versions) >= 4  # analysis version 4 is science v3's
    ran = analysis_cost(profile, profile.partner_of(profile.tasks[0]) is not None, science_v3=v3, device_type=hvp)
    ran *= work_scale(draft, profile.model, profile.pretrained.batch_size)
    per_ref = analysis_cost(measured_profile(reference), science_v3=False, device_type=hvp) / ran
    when = str(records[0][1]["provenance"].get("created", ""))[:10]
    names = ", ".join(sorted({str(f) for f, _, _ in records}))[:300]
    timings = Timings(
        device=", ".join(devices),
        train_steps_per_second=round(ref_steps / run_s, 3) if run_s else 0.0,
        analysis_seconds=round(an_s / n_an * per_ref, 1) if n_an else 0.0,
        process_seconds=round(proc_s / len(records), 1),
        source=f"measured {when} on {', '.join(devices)} by {len(records)} process(es) of profile {profile.name} "
               f"({len(runs)} training runs, {n_an} analyses): {names}",
        kind=kind,
        reference_profile=reference.name,
    )
    return Measured(len(runs), steps, run_s, len(records), n_an, an_s, proc_s, timings)


def format_measured(m: Measured) -> str:
    t = m.timings
    return "\n".join([
        f"measured: {m.runs} training runs, {m.steps} steps in {m.run_seconds:.0f} s "
        f"({m.steps / max(m.run_seconds, 1e-9):.2f} steps/s as run); {m.analyses} analyses in "
        f"{m.analysis_seconds:.0f} s "
        f"({m.analysis_seconds / max(m.analyses, 1):.1f} s each as run); {m.processes} process(es), "
        f"{m.process_seconds / max(m.processes, 1):.1f} s each outside training and analyses (imports not included)",
        f"measured timings on {t.device} (update repro/pipeline/timings.py RECORDED_BY_DEVICE[{t.kind!r}] with them, "
        f"in {t.reference_profile}-analysis units): train_steps_per_second={t.train_steps_per_second:g}, "
        f"analysis_seconds={t.analysis_seconds:g}, process_seconds={t.process_seconds:g}",
        f"paste: {t!r}",
    ])


def _main(argv: list[str] | None = None) -> int:
    """``python -m repro.pipeline.timings DIR...``: print what the finished runs under DIR measured."""
    import sys

    from repro.errors import ReproError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print("usage: python -m repro.pipeline.timings DIR... (shard outputs or a claims run directory)",
              file=sys.stderr)
        return 2
    try:
        print(format_measured(measure([Path(a) for a in args])))
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
