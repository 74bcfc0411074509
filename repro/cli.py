"""Command-line interface: ``repro train``, ``repro claims``, ``repro report``, ``repro bench``, ``repro profiles``.

Exit status, so that a script or CI job can tell a result from a mistake from a crash:

* 0 -- done (``repro claims``: every claim reproduced);
* 1 -- ``repro claims`` only: not every claim reproduced. A scientific result, not an error;
* 2 -- user error (bad argument or ``--set`` value, unknown name, missing data or directory, device not
  available, disk full or not writable): one line ``error: ...`` naming the fix, no traceback. Argparse's own
  usage errors also exit 2;
* 3 -- internal error, i.e. a bug in repro: the traceback is printed, followed by one line saying so;
* 130 / 143 -- interrupted by SIGINT (Ctrl-C) / SIGTERM; the line printed says exactly what was saved.

Every user-facing failure is a :class:`repro.errors.ReproError`. The whole resolved profile is validated
(:mod:`repro.validation`) before any work starts. ``repro --help`` imports neither torch nor transformers.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

from repro.errors import ReproError

DEFAULT_OUT = "runs"


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=os.environ.get("REPRO_OUT", DEFAULT_OUT),
                   help="results directory (default: $REPRO_OUT or ./runs); run directories inside it are keyed by "
                        "the resolved config and reused when the same config runs again")
    p.add_argument("--data-dir", default=None,
                   help="local GLUE copy: <dir>/<task>/<split>.jsonl (Hugging Face schema) or the classic GLUE TSV "
                        "layout (<dir>/SST-2/train.tsv, ...). Default: $REPRO_DATA_DIR, else the Hugging Face hub "
                        "(nyu-mll/glue)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile field, e.g. --set pretrained.epochs=2 --set tasks=sst2,rte "
                        "(see `repro profiles show NAME` for the fields)")
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress bars only: `repro claims` still writes plain progress lines to stderr (each "
                        "job's start and end, and a heartbeat at least once a minute while work runs), as it does "
                        "when stderr is not a terminal")


def _profile(args: argparse.Namespace):
    from repro.config import profile_with_overrides

    prof = profile_with_overrides(args.profile, args.overrides or ())
    _validate(prof, args)
    return prof


def _validate(prof, args: argparse.Namespace) -> None:
    """The profile as it will run (with ``--tasks``/``--seeds`` of ``repro claims`` applied) is valid."""
    import dataclasses

    from repro.config import first_seeds
    from repro.data import TASKS
    from repro.validation import check_count, check_names, validate_profile

    effective = prof
    if getattr(args, "tasks", None) is not None:
        check_names(args.tasks, TASKS.names(), "--tasks")  # named as given, not as a --set field
        effective = effective.with_tasks(args.tasks)
    if getattr(args, "seeds", None) is not None:
        check_count(args.seeds, "--seeds")
        effective = dataclasses.replace(effective, seeds=first_seeds(effective, args.seeds))
    validate_profile(effective)


def _check_out(out: Path) -> None:
    """``--out`` is where claims run directories go, not one of them: given a run directory (it holds profile.json
    or claims.json), a new run would nest inside it silently (issue 40). A file, or a folder this user cannot write,
    is refused here, before the plan prints, not when the first directory is made."""
    if out.exists() and not out.is_dir():
        raise ReproError(f"--out {out} is a file: choose an --out that is a directory this user can write (not a file)")
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ReproError(f"--out {out}: {existing} is not writable by this user; choose an --out (and --data-dir) "
                         f"this user can read and write")
    if (out / "profile.json").is_file() or (out / "claims.json").is_file():
        raise ReproError(f"--out {out} is a claims run directory (it holds "
                         f"{'profile.json' if (out / 'profile.json').is_file() else 'claims.json'}); pass the folder "
                         f"that holds run directories, e.g. --out {out.parent}")


def _data_dir(args: argparse.Namespace) -> str | None:
    """``--data-dir`` if given; otherwise None, and the data layer reads ``REPRO_DATA_DIR`` itself, so that its
    messages can say which of the two a bad path came from."""
    return args.data_dir or None


def cmd_train(args: argparse.Namespace) -> int:
    from repro.data import describe_source, get_task
    from repro.training import run_dir_for, train
    from repro.validation import check_seed

    get_task(args.task)
    check_seed(args.seed)
    prof = _profile(args)
    data_dir = _data_dir(args)
    setting = next((s for s in prof.settings if s.name == args.setting), None)
    if setting is None:
        raise ReproError(f"unknown setting {args.setting!r} for profile {prof.name}; known: "
                         f"{', '.join(s.name for s in prof.settings)}")
    from repro.preflight import check_data, check_model

    check_data((args.task,), data_dir)  # before the run directory is created (issue 40)
    if args.init == "pretrained":
        check_model(prof.model)
    cfg = prof.train_config(args.task, args.init, args.seed, setting, data_source=describe_source(data_dir))
    rd = run_dir_for(Path(args.out), cfg)
    reused = (rd / "metrics.json").exists()
    print(f"run directory: {rd}", flush=True)
    run = train(cfg, args.out, data_dir=data_dir, device=args.device, progress=not args.no_progress)
    m = run.metrics
    last = m.evals[-1]
    print(f"{'reused' if reused else 'trained'}: {run.path}")
    print(f"  {cfg.task} {cfg.init} seed {cfg.seed}: {m.total_steps} steps, final train loss "
          f"{m.train_loss[-1]:.4f}, dev loss {last.dev_loss:.4f}, dev accuracy {last.dev_accuracy:.4f}, "
          f"{m.wall_seconds:.1f} s")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    if args.merge:
        from repro.pipeline.runner import merge_shards

        return merge_shards([Path(d) for d in args.merge], Path(args.out))
    from repro.pipeline.distributed import launched_by_torchrun
    from repro.pipeline.launcher import launch
    from repro.pipeline.jobs import parse_shard
    from repro.pipeline.runner import run_claims

    shard = parse_shard(args.shard) if args.shard else None
    if args.plan_shards:
        return _plan_shards(args)
    shard_plan = None
    if args.shard_plan:
        from repro.pipeline.shardplan import load_plan

        if shard is None:
            raise ReproError("--shard-plan needs --shard I/N: the shard of the plan to run")
        shard_plan = load_plan(Path(args.shard_plan))
    if args.workers < 1:
        raise ReproError(f"--workers {args.workers}: must be at least 1")
    prof = _profile(args)
    _check_out(Path(args.out))
    from repro.preflight import preflight

    # every check that needs no work, before the plan prints or a directory is created (issue 40)
    preflight(prof.with_tasks(args.tasks) if args.tasks is not None else prof, _data_dir(args))
    kwargs = {"out": Path(args.out), "data_dir": _data_dir(args), "device": args.device, "tasks": args.tasks,
              "seeds": args.seeds, "progress": not args.no_progress, "shard": shard, "shard_plan": shard_plan}
    from repro.pipeline.threads import apply_threads, resolve_threads

    if args.workers > 1:
        if launched_by_torchrun():
            raise ReproError("--workers starts its own process group; under torchrun use --nproc-per-node instead")
        threads, why = resolve_threads(args.workers, args.threads)  # refuses to oversubscribe the cores
        print(f"{args.workers} workers x {threads} torch threads ({why})", flush=True)
        return launch(args.workers, {"profile": prof, **kwargs}, threads=threads)
    if args.threads is not None:  # one process, or each of torchrun's processes on this node
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if launched_by_torchrun() else 1
        apply_threads(resolve_threads(local, args.threads)[0])
    code = run_claims(prof, **kwargs)
    if launched_by_torchrun() and code == 1:
        # torchrun reports any non-zero exit as a crashed worker; "not all reproduced" is a result, in claims.json
        print("verdict: not all claims reproduced (exit status 0 under torchrun; see claims.json)")
        return 0
    return code


def _plan_shards(args: argparse.Namespace) -> int:
    """``repro claims --plan-shards``: print the cost-balanced split of the resolved profile (and save it with
    --save-plan), sized by the recorded timings of --device's kind (repro/pipeline/timings.py; cuda when --device
    is omitted, whatever this machine has: plans are usually made here for a GPU elsewhere)."""
    from repro.config import first_seeds
    from repro.pipeline.plan import resolve
    from repro.pipeline.shardplan import DEFAULT_BUDGET_BY_DEVICE, format_plan, plan_shards, save_plan
    from repro.pipeline.timings import recorded_for

    prof = _profile(args)
    prof = resolve(prof, args.tasks, first_seeds(prof, args.seeds) if args.seeds is not None else None)
    timings = recorded_for(args.device, prof.name)
    budget = args.budget if args.budget is not None else DEFAULT_BUDGET_BY_DEVICE[timings.kind]
    if budget <= 0:
        raise ReproError(f"--budget {budget}: must be a positive number of seconds")
    plan = plan_shards(prof, budget, timings, count=args.shards)
    print(format_plan(plan))
    if args.save_plan:
        save_plan(Path(args.save_plan), plan)
        print(f"shard plan: {args.save_plan}; run shard I with `repro claims --profile {prof.name} --shard "
              f"I/{plan.count} --shard-plan {args.save_plan}`")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ReproError(f"{run_dir} is not a directory: pass the directory of a claims run, the one holding "
                         f"claims.json (e.g. runs/<profile>-<hash>, printed by `repro claims`)")
    claims = Path(args.claims) if args.claims else None
    if claims is None and not (run_dir / "claims.json").is_file():
        raise ReproError(f"{run_dir} holds no claims.json: pass the directory of a finished claims run "
                         f"(run `repro claims` first; it prints the directory)")
    if claims is not None and not claims.is_file():
        raise ReproError(f"{claims} is not a file: --claims takes a claims.json")
    from repro.pipeline.revision import science_revision
    from repro.report import write_report

    from repro.report.data import load_report_data

    data = load_report_data(run_dir, claims)  # read once: the page and the warning below come from it
    missing = data.missing_evidence()
    # this code's science revision: the report says so when the claims were evaluated by other science code
    path = write_report(run_dir, Path(args.output) if args.output else None, claims,
                        science_revision=science_revision(), data=data)
    print(f"report: {path}")
    if missing:
        print(f"warning: {missing}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise ReproError(f"--threads {args.threads}: must be a positive integer (or omit it for torch's default)")
    train_only = [f"--{k.replace('_', '-').removeprefix('bench-')}"
                  for k in ("steps", "warmup") if getattr(args, k) is not None]
    if args.which != "train" and train_only:
        raise ReproError(f"{', '.join(train_only)}: only for `repro bench train`")
    if args.which == "grid" and (args.bench_profile is not None or args.data_dir is not None):
        raise ReproError("--profile, --data-dir: only for `repro bench train` and `repro bench curvature`")
    from repro.bench.common import describe_bench, pick_device
    from repro.models import resolve_spec

    model = args.model or ("minilm-l6" if args.which == "train" else "tiny-minilm")
    resolve_spec(model)
    device = pick_device(args.device)
    # user results go under --out; the tracked bench/results/*.json change only when asked for with --results
    folder = Path(args.results) if args.results else Path(args.out)
    out = folder / f"{args.which}-{device.type}.json"
    if args.which == "train":
        from repro.bench.train import describe_train, run_train_bench
        from repro.config import get_profile

        profile = args.bench_profile or "standard"
        get_profile(profile)
        steps, warmup = args.steps if args.steps is not None else 10, args.warmup if args.warmup is not None else 2
        if steps < 1 or warmup < 0:
            raise ReproError(f"--steps {steps} / --warmup {warmup}: need at least 1 timed step and 0 or more "
                             "warm-up steps")
        result = run_train_bench(out, model_name=model, profile=profile,
                                 data_dir=_data_dir(args), device=device, steps=steps, warmup=warmup,
                                 threads=args.threads)
        describe = describe_train
    else:
        from repro.bench import run_curvature_bench, run_grid_bench

        if args.which == "grid":
            result = run_grid_bench(out, model_name=model, device=device, threads=args.threads)
        else:  # on the verdict runs' batches: the profile's Hessian batches of real SST-2 examples
            result = run_curvature_bench(out, model_name=model, device=device, threads=args.threads,
                                         profile=args.bench_profile or "standard", data_dir=_data_dir(args))
        describe = describe_bench
    for line in describe(result):
        print(line)
    print(f"benchmark results: {out}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """``repro runs clean DIR [--delete [--superseded]]`` (repro.pipeline.clean)."""
    if len(args.words) != 2 or args.words[0] != "clean":
        raise ReproError("`repro runs` takes `clean DIR`, e.g. `repro runs clean runs` (add --delete to remove)")
    root = Path(args.words[1])
    if not root.is_dir():
        raise ReproError(f"{root} is not a directory: pass an --out folder (e.g. runs) or one claims run directory")
    if args.superseded and not args.delete:
        raise ReproError("--superseded goes with --delete (without it, superseded runs are already listed)")
    from repro.pipeline.clean import clean

    _, lines = clean(root, delete=args.delete, superseded=args.superseded)
    print("\n".join(lines))
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    import json

    from repro.config import PROFILES
    from repro.storage import to_json_dict

    words = list(args.words)
    if words[:1] == ["check"]:
        return _check_profile(words[1:], args)
    if words[:1] == ["list"]:
        words = words[1:]
    elif words[:1] == ["show"]:
        words = words[1:]
        if not words:
            raise ReproError(f"`repro profiles show` needs a profile name; known: {', '.join(PROFILES.names())}")
    if len(words) > 1:
        raise ReproError(f"`repro profiles` takes one profile name, got {' '.join(words)}; e.g. "
                         "`repro profiles show cpu`")
    if words:
        # every field --set can override, those left out of the hashed JSON at their default too
        print(json.dumps(to_json_dict(PROFILES.get(words[0]), full=True), indent=2, sort_keys=True,
                         allow_nan=False))
    else:
        for name, prof in PROFILES.items():
            print(f"{name:10s} {prof.model:20s} {prof.description}")
    return 0


def _check_profile(words: list[str], args: argparse.Namespace) -> int:
    """``repro profiles check NAME``: can every primary come out either way at this size (claims.decidability)?
    Exit 0 when every check passes (or its task is scoped out), 1 when one fails or is unknown -- an unknown is not
    a pass; the output names each failed and unknown check and what would settle it (a finding, like a claim not
    reproduced). Needs no network: dev labels come from a local GLUE copy only."""
    from claims.decidability import check_profile, format_decidability
    from repro.config import PROFILES
    from repro.storage import write_json

    if len(words) != 1:
        raise ReproError(f"`repro profiles check` takes one profile name; known: {', '.join(PROFILES.names())}")
    prof = PROFILES.get(words[0])
    ref = Path(args.reference) if args.reference else None
    if ref is not None and not (ref / "claims.json").is_file():
        raise ReproError(f"--reference {ref}: no claims.json there; pass a claims run directory (e.g. "
                         "tests/fixtures/golden/cpu)")
    if ref is None:
        from claims.decidability import committed_pilot

        ref = committed_pilot(prof.name)
        if ref is not None:
            print(f"reference: {ref} (the profile's committed claims pilot; --reference names another)")
    result = check_profile(prof, ref, data_dir=args.data_dir)
    print(format_decidability(result))
    if args.json:
        write_json(Path(args.json), result)
        print(f"decidability: {args.json}")
    return 0 if result.passes else 1


# repro.models.INITS, repeated so that building the parser (and `repro --help`) does not import torch; a test checks
# that the two agree
INITS = ("pretrained", "scratch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repro",
        description="Reproduce 'Visualizing and Understanding the Effectiveness of BERT' (Hao et al., EMNLP 2019): "
                    "train pretrained vs scratch encoders, measure loss landscapes and curvature, and check the "
                    "paper's claims.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one run (fine-tuning or from scratch), recording its trajectory",
                       description="Train one run. The run directory is keyed by the resolved config; an identical "
                                   "call reuses it, an interrupted one resumes from its last checkpoint.")
    p.add_argument("--task", required=True, help="GLUE task: sst2, mrpc, rte, mnli")
    p.add_argument("--init", required=True, choices=INITS, help="pretrained weights or the same architecture "
                                                                 "from a seeded random init")
    p.add_argument("--profile", default="smoke", help="preset (see `repro profiles`); default smoke")
    p.add_argument("--seed", type=int, default=0, help="seed for init, head, data order and dropout")
    p.add_argument("--setting", default="base", help="training setting of the profile (base, long)")
    _add_common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("claims", help="run the experiment plan and check the paper's five claims",
                       description="Train every (task, init, seed, setting) of the profile, measure landscapes and "
                                   "curvature, evaluate the claims, write claims.json and report.html. Exit 0 when "
                                   "every claim is reproduced, 1 otherwise, 2 on errors. Resumable.")
    p.add_argument("--profile", default=None, help="preset; default: standard on a GPU, cpu otherwise")
    p.add_argument("--tasks", nargs="+", default=None, help="subset of the profile's tasks")
    p.add_argument("--seeds", type=int, default=None, help="use the profile's first N seeds (default: all of them)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="run the plan's independent jobs on N processes of this machine (torch elastic, gloo); "
                        "across machines use torchrun (see README, Scaling out). Same results as 1 worker")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch CPU threads per worker process; workers x T must not exceed this machine's cores "
                        "(oversubscribed threads run 5-10x slower). Default: the cores shared out among --workers "
                        "(OMP_NUM_THREADS when set and it fits); with 1 worker, torch's own default")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="run only shard I of N (0-based) and write a small mergeable output (metrics and "
                        "analyses, no weights) to <run dir>/shards/; combine with --merge")
    p.add_argument("--shard-plan", default=None, metavar="FILE",
                   help="with --shard I/N: take shard I's analyses from this frozen plan (written by --plan-shards "
                        "--save-plan), so that shards run in different sessions partition one plan")
    p.add_argument("--plan-shards", action="store_true",
                   help="print a cost-balanced split of the plan into shards that each fit --budget seconds on one "
                        "GPU, or with --device cpu on 2 CPU cores (recorded timings per device kind: "
                        "repro/pipeline/timings.py; without --device, the GPU ones, on any machine); nothing runs")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="--plan-shards: expected wall seconds per shard: default 420 on one H100/H200 (--device "
                        "cuda or none), 6000 (100 min) on 2 CPU cores (--device cpu)")
    p.add_argument("--shards", type=int, default=None, metavar="N",
                   help="--plan-shards: exactly N balanced shards instead of the fewest that fit --budget")
    p.add_argument("--save-plan", default=None, metavar="FILE",
                   help="--plan-shards: also write the split to FILE (e.g. reports/standard/shards/plan.json)")
    p.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                   help="merge the outputs of all N `--shard I/N` runs into one claims run under --out "
                        "(claims.json and report); the profile comes from the shards")
    _add_common(p)
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("report", help="write the self-contained HTML report of a claims run directory")
    p.add_argument("run_dir", help="directory holding claims.json")
    p.add_argument("-o", "--output", default=None, help="output file (default: RUN_DIR/report.html)")
    p.add_argument("--claims", default=None,
                   help="verdicts from this claims.json instead of RUN_DIR/claims.json (evidence still from RUN_DIR;"
                        " e.g. a published run's record over its trimmed evidence)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="performance benchmarks that write JSON",
                       description="Time the grid evaluator, the Hessian eigen-solvers or training steps; print "
                                   "each figure with what it means and write the full JSON.")
    p.add_argument("which", choices=("grid", "curvature", "train"),
                   help="grid evaluation rate, Hessian eigen-solvers, or training throughput (steps/s, tokens/s, "
                        "GFLOP/s against a matmul ceiling; random vs length-bucketed batches)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", default=os.path.join(os.environ.get("REPRO_OUT", DEFAULT_OUT), "bench"),
                       help="directory for the JSON (default: $REPRO_OUT/bench or ./runs/bench)")
    where.add_argument("--results", default=None, metavar="DIR",
                       help="publish: write the JSON to DIR instead, e.g. --results bench/results to replace the "
                            "tracked results")
    p.add_argument("--device", default=None)
    p.add_argument("--model", default=None,
                   help="model to benchmark (default tiny-minilm; train: minilm-l6)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    # not `profile`: main() fills a missing `profile` with the claims default (cpu or standard)
    p.add_argument("--profile", dest="bench_profile", default=None,
                   help="train: the profile whose batch size, max length and training subset are used; "
                        "curvature: whose Hessian batches (default standard)")
    p.add_argument("--steps", type=int, default=None, help="train: timed optimizer steps per batch order (default 10)")
    p.add_argument("--warmup", type=int, default=None, help="train: untimed steps before them (default 2)")
    p.add_argument("--data-dir", default=None,
                   help="train, curvature: local GLUE copy for the SST-2 examples (default: $REPRO_DATA_DIR, else the "
                        "hub for train, synthetic examples for curvature)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("runs", help="runs clean DIR: list (and with --delete remove) what no finished result needs",
                       description="`repro runs clean DIR` lists, with sizes, what under an --out folder (or one "
                                   "claims run directory) no finished result needs: checkpoints of runs that never "
                                   "finished, grid stores of finished analyses, and claims run directories that are "
                                   "not the current version of their profile. A dry run unless --delete.")
    p.add_argument("words", nargs="+", metavar="clean DIR")
    p.add_argument("--delete", action="store_true", help="remove the checkpoints and grid stores listed")
    p.add_argument("--superseded", action="store_true",
                   help="with --delete: also remove the superseded claims run directories (claims.json included)")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("profiles", help="list the profiles, show one as JSON, or check that it can decide",
                       description="`repro profiles` lists the profiles; `repro profiles show NAME` (or `repro "
                                   "profiles NAME`) prints one as JSON: the fields --set can override. `repro "
                                   "profiles check NAME [--reference RUN_DIR]` says, for each primary comparison, "
                                   "whether it can come out either way at this size (exit 1 when a check "
                                   "fails or is unknown: an unknown is not a pass).")
    p.add_argument("words", nargs="*", metavar="[show|check] NAME", help="profile to show or check")
    p.add_argument("--reference", default=None, metavar="RUN_DIR",
                   help="check: a claims run directory whose per-pair spread and exclusions predict this profile's "
                        "(e.g. tests/fixtures/golden/cpu); default: the profile's committed claims pilot, "
                        "reports/pilots/NAME/, when there is one")
    p.add_argument("--data-dir", default=None, help="check: local GLUE copy, for the dev majority rates "
                                                     "(default $REPRO_DATA_DIR)")
    p.add_argument("--json", default=None, metavar="FILE", help="check: also write the checks as JSON")
    p.set_defaults(func=cmd_profiles)
    return parser


EXIT_OK, EXIT_NOT_REPRODUCED, EXIT_USER_ERROR, EXIT_INTERNAL_ERROR = 0, 1, 2, 3
# OSErrors that are the environment's (disk full, read-only, no permission, --out names a file), not a bug's
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                       errno.EEXIST}


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside a training loop (which handles it itself): unwind like Ctrl-C, so that every ``finally``
    runs (grid evaluations save their finished points) instead of dying mid-write."""

    signum = signal.SIGTERM


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated("SIGTERM")


def _interrupted(e: KeyboardInterrupt) -> int:
    signum = int(getattr(e, "signum", signal.SIGINT))
    if getattr(e, "run_dir", None) is not None:  # repro.training.TrainingInterrupted: says what it saved
        print(f"{e}", file=sys.stderr)
    else:
        print(f"interrupted by {signal.Signals(signum).name}: finished training runs and analyses are kept, and so "
              "are the grid points evaluated so far; a training run in progress resumes from its last checkpoint "
              "(at most a minute of training is lost). Rerun the same command to resume.", file=sys.stderr)
    return 128 + signum


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status documented in the module docstring."""
    parser = build_parser()
    args = parser.parse_args(argv)
    old_term = None
    if threading.current_thread() is threading.main_thread():
        old_term = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if getattr(args, "device", None) is not None and not getattr(args, "plan_shards", False):
            # (--plan-shards only reads the device's recorded timings: a GPU's plan is made on any machine)
            from repro.validation import check_device

            check_device(args.device)
        if getattr(args, "profile", "x") is None:
            import torch

            args.profile = "standard" if torch.cuda.is_available() else "cpu"
        return int(args.func(args))
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as e:
        return _interrupted(e)
    except OSError as e:
        if e.errno not in _ENVIRONMENT_ERRNOS:
            return _internal_error()
        where = f": {e.filename}" if e.filename else ""
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = "free disk space (or raise the quota), or choose an --out on a disk with room"
        elif e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            fix = "choose an --out (and --data-dir) this user can read and write"
        else:  # a path that is a file where a directory is needed, or the reverse
            fix = "choose an --out that is a directory this user can write (not a file)"
        print(f"error: {e.strerror}{where}; {fix}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception:  # noqa: BLE001 - last resort: a bug, reported as one (exit 3), never as a result (exit 1)
        return _internal_error()
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _internal_error() -> int:
    traceback.print_exc()
    print("internal error: this is a bug in repro, not a problem with your input; please report it with the "
          "traceback above (exit status 3)", file=sys.stderr)
    return EXIT_INTERNAL_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
