"""Command-line interface: ``repro train``, ``repro claims``, ``repro report``, ``repro bench``, ``repro profiles``.

Every user-facing failure is a :class:`repro.errors.ReproError`, printed as one line that names the fix, with exit
status 2. ``repro claims`` exits 0 when every claim is reproduced and 1 otherwise -- a result, not an error.
"""

from __future__ import annotations

import argparse
import os
import sys
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
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _profile(args: argparse.Namespace):  # noqa: ANN202
    from repro.config import apply_overrides, get_profile

    prof = get_profile(args.profile)
    if args.overrides:
        pairs = {}
        for item in args.overrides:
            if "=" not in item:
                raise ReproError(f"--set expects KEY=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            pairs[k.strip()] = v.strip()
        try:
            prof = apply_overrides(prof, pairs)
        except (KeyError, ValueError, TypeError) as e:
            raise ReproError(f"bad --set override: {e}. See `repro profiles show {args.profile}`.") from e
    return prof


def _data_dir(args: argparse.Namespace) -> str | None:
    return args.data_dir or os.environ.get("REPRO_DATA_DIR") or None


def cmd_train(args: argparse.Namespace) -> int:
    from repro.data import describe_source, get_task
    from repro.models import resolve_spec
    from repro.training import run_dir_for, train

    prof = _profile(args)
    get_task(args.task)
    resolve_spec(prof.model)
    data_dir = _data_dir(args)
    setting = next((s for s in prof.settings if s.name == args.setting), None)
    if setting is None:
        raise ReproError(f"unknown setting {args.setting!r} for profile {prof.name}; known: "
                         f"{', '.join(s.name for s in prof.settings)}")
    cfg = prof.train_config(args.task, args.init, args.seed, setting, data_source=describe_source(data_dir))
    rd = run_dir_for(Path(args.out), cfg)
    reused = (rd / "metrics.json").exists()
    run = train(cfg, args.out, data_dir=data_dir, device=args.device, progress=not args.no_progress)
    m = run.metrics
    last = m.evals[-1]
    print(f"{'reused' if reused else 'trained'}: {run.path}")
    print(f"  {cfg.task} {cfg.init} seed {cfg.seed}: {m.total_steps} steps, final train loss "
          f"{m.train_loss[-1]:.4f}, dev loss {last.dev_loss:.4f}, dev accuracy {last.dev_accuracy:.4f}, "
          f"{m.wall_seconds:.1f} s")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from claims.runner import run_claims

    prof = _profile(args)
    return run_claims(prof, out=Path(args.out), data_dir=_data_dir(args), device=args.device,
                      tasks=args.tasks, seeds=args.seeds, progress=not args.no_progress)


def cmd_report(args: argparse.Namespace) -> int:
    from repro.report import write_report

    path = write_report(Path(args.run_dir), Path(args.output) if args.output else None)
    print(f"report: {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from repro.bench import run_curvature_bench, run_grid_bench
    from repro.bench.common import pick_device

    device = pick_device(args.device)
    out = Path(args.results) / f"{args.which}-{device.type}.json"
    fn = run_grid_bench if args.which == "grid" else run_curvature_bench
    result = fn(out, model_name=args.model, device=device, threads=args.threads)
    summary = {k: result[k] for k in ("ratios", "lambda_max", "top5") if k in result}
    print(json.dumps(summary, indent=2, default=str))
    print(f"benchmark results: {out}")
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from repro.config import PROFILES
    from repro.storage import dumps

    if args.name:
        print(dumps(PROFILES.get(args.name)), end="")
    else:
        for name, prof in PROFILES.items():
            print(f"{name:10s} {prof.model:20s} {prof.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from repro.models import INITS

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
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the profile's)")
    _add_common(p)
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("report", help="write the self-contained HTML report of a claims run directory")
    p.add_argument("run_dir", help="directory holding claims.json")
    p.add_argument("-o", "--output", default=None, help="output file (default: RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="performance benchmarks that write JSON")
    p.add_argument("which", choices=("grid", "curvature"), help="grid evaluation rate or Hessian eigen-solvers")
    p.add_argument("--results", default="bench/results", help="directory for the JSON (default bench/results)")
    p.add_argument("--device", default=None)
    p.add_argument("--model", default="tiny-minilm", help="model to benchmark (default tiny-minilm)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("profiles", help="list the profiles, or show one as JSON")
    p.add_argument("name", nargs="?", default=None)
    p.set_defaults(func=cmd_profiles)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "profile", "x") is None:
        import torch

        args.profile = "standard" if torch.cuda.is_available() else "cpu"
    try:
        return int(args.func(args))
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: completed work is saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
