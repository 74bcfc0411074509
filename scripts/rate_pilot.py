"""Learning-rate pilot for a profile (issue 43): does each arm learn, on every pilot seed, at each rate of its grid?

For each task, arm (pretrained / scratch), rate of the arm's grid (BERT's fine-tuning grid {2e-5, 3e-5, 5e-5} for the
pretrained arm, ``repro.config.SCRATCH_LR_GRID`` for scratch) and pilot seed (tuning seeds, never verdict seeds), one
training run with the profile's recipe at that rate. Per run it records what ``repro profiles check`` and the
preconditions read:

* the training loss at θ1 on the analysis' fixed, label-stratified training subset (``eval_train_size`` examples,
  subset seed 11, as ``claims.analysis``) and whether it is at most 0.75 ln C (``claims.base`` "learned");
* the mean training loss of the last epoch (dropout on) and of the one before (the v3 plateau reading);
* dev accuracy at the end against the majority rate of the same dev examples, with a one-sided binomial p-value;
* wall seconds, steps.

The selection rule, fixed before any pilot run was read (registered with this script, issue 43): per arm, the rate of
its grid at which *every* pilot seed of *every* task the profile keeps learned; among several, the one with the highest
mean dev accuracy over those runs; none if no rate qualifies (then the arm cannot be used at this size and the
profile must change). The JSON holds every run, the per-rate summaries and that choice; no weights.

One task per invocation is fine (runs are cheap to resume, the JSON is rewritten after every run); ``--combine A.json
B.json --json OUT`` then applies the rule over every kept task together (``--tasks`` picks the kept ones).

Usage (runs go under --out and are reused when present, so an interrupted pilot resumes)::

    OMP_NUM_THREADS=2 python scripts/rate_pilot.py --profile standard --tasks sst2 --seeds 100,101,102 \\
        --set train_size=1000 --data-dir ../shared/glue --out /tmp/pilot-runs --json bench/results/pilot.json
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PRETRAINED_LR_GRID = (2e-5, 3e-5, 5e-5)  # BERT's fine-tuning grid (Devlin et al. 2019, §A.3)


def _profile(name: str, overrides: list[str]):  # noqa: ANN202
    from repro.config import profile_with_overrides
    from repro.validation import validate_profile

    prof = profile_with_overrides(name, overrides)
    validate_profile(prof)
    return prof


def binomial_p(correct: int, n: int, rate: float) -> float:
    """One-sided P(X ≥ correct) for X ~ Binomial(n, rate): is the accuracy above the majority rate by more than
    chance?"""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan")
    return float(binomtest(int(correct), int(n), float(rate), alternative="greater").pvalue)


def choose_rate(summaries: dict[str, dict[str, Any]], tasks: Sequence[str] | None = None) -> tuple[float | None, str]:
    """The registered selection rule over one arm's per-rate summaries (keyed by rate as text): every run learned;
    then the highest mean dev accuracy. Returns (rate or None, why). With ``tasks`` (every task the arm was piloted
    on), a rate must have been piloted on each of them: a rate left out on a task (because another task had already
    ruled it out) has no evidence there and never qualifies."""
    ok = {r: s for r, s in summaries.items() if s["runs"] > 0 and s["learned"] == s["runs"]
          and (tasks is None or set(s.get("tasks", ())) >= set(tasks))}
    if not ok:
        return None, "no rate of the grid learned on every pilot seed of every task"
    best = max(ok, key=lambda r: (ok[r]["mean_dev_accuracy"], -float(r)))
    return float(best), (f"every pilot run learned at {', '.join(sorted(ok, key=float))}; highest mean dev accuracy "
                         f"{ok[best]['mean_dev_accuracy']:.3f} at {best}")


def run_record(run: Any, profile: Any, data_dir: str | None, device: str | None) -> dict[str, Any]:
    import torch

    from claims.base import LEARNED_FRACTION_OF_CHANCE
    from repro.data import subset_indices
    from repro.landscape import ParamVector, evaluate, set_params
    from repro.models import load_model
    from repro.training import load_data

    cfg, m = run.config, run.metrics
    task, train_split, dev_split = load_data(cfg, data_dir)
    dev = torch.device(device or "cpu")
    ls = profile.landscape
    idx = subset_indices(len(train_split), min(ls.eval_train_size, len(train_split)), 11,
                         labels=train_split.labels.cpu().numpy())
    batches = [{k: v.to(dev) for k, v in b.items()}
               for b in train_split.select(idx).batches(ls.eval_batch_size, sort_by_length=True)]
    model = load_model(cfg.model, cfg.init, task.num_labels, cfg.seed, attn_implementation="sdpa").to(dev).eval()
    theta1 = run.theta1()
    set_params(model, ParamVector(tuple(theta1), tuple(theta1.values())))
    at1 = evaluate(model, batches)
    chance = math.log(task.num_labels)
    spe = max(1, m.steps_per_epoch)
    last = m.train_loss[-spe:]
    before = m.train_loss[-2 * spe:-spe] if len(m.train_loss) >= 2 * spe else []
    labels = dev_split.labels.cpu()
    majority = float(torch.bincount(labels, minlength=task.num_labels).max()) / max(1, len(labels))
    final = m.evals[-1]
    correct = round(final.dev_accuracy * m.num_dev)
    return {
        "task": cfg.task, "init": cfg.init, "seed": cfg.seed, "learning_rate": cfg.hyper.learning_rate,
        "epochs": cfg.hyper.epochs, "batch_size": cfg.hyper.batch_size, "steps": m.total_steps,
        "status": m.status, "run_dir": run.path.name,
        "train_loss_theta1": at1.loss, "train_accuracy_theta1": at1.accuracy, "eval_train_examples": at1.count,
        "learned": at1.loss <= LEARNED_FRACTION_OF_CHANCE * chance,
        "learned_level": LEARNED_FRACTION_OF_CHANCE * chance,
        "train_loss_last_epoch_mean": statistics.fmean(last),
        "train_loss_previous_epoch_mean": statistics.fmean(before) if before else None,
        "dev_accuracy": final.dev_accuracy, "dev_loss": final.dev_loss, "num_dev": m.num_dev,
        "dev_majority_rate": majority, "dev_p_above_majority": binomial_p(correct, m.num_dev, majority),
        "wall_seconds": m.wall_seconds,
    }


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm and rate (over every task and seed) and per task/arm/rate: runs, learned, mean dev accuracy."""

    def stats(rs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"runs": len(rs), "learned": sum(r["learned"] for r in rs), "tasks": sorted({r["task"] for r in rs}),
                "mean_dev_accuracy": statistics.fmean(r["dev_accuracy"] for r in rs) if rs else float("nan"),
                "dev_above_majority_p05": sum(r["dev_p_above_majority"] < 0.05 for r in rs),
                "mean_train_loss_theta1": statistics.fmean(r["train_loss_theta1"] for r in rs) if rs else float("nan")}

    out: dict[str, Any] = {"by_arm": {}, "by_task": {}, "chosen": {}}
    for init in sorted({r["init"] for r in records}):
        rates = sorted({r["learning_rate"] for r in records if r["init"] == init})
        out["by_arm"][init] = {f"{lr:g}": stats([r for r in records if r["init"] == init and r["learning_rate"] == lr])
                               for lr in rates}
        rate, why = choose_rate(out["by_arm"][init], sorted({r["task"] for r in records if r["init"] == init}))
        out["chosen"][init] = {"learning_rate": rate, "why": why}
        for task in sorted({r["task"] for r in records}):
            out["by_task"][f"{task}/{init}"] = {
                f"{lr:g}": stats([r for r in records if r["init"] == init and r["learning_rate"] == lr
                                  and r["task"] == task]) for lr in rates}
    return out


def combine(paths: Sequence[Path], keep: Sequence[str] | None = None) -> dict[str, Any]:
    """Several pilot JSONs (e.g. one per task) as one, the rule applied over all of their runs -- or over the tasks
    in ``keep`` only (the tasks a profile keeps): the rule reads every kept task together. The pilots must share
    the resolved recipe but for the learning rates (else their runs do not answer one question)."""
    import json

    parts = [json.loads(Path(p).read_text()) for p in paths]

    def recipe(part: dict[str, Any]) -> dict[str, Any]:
        prof = dict(part["resolved_profile"])
        for arm in ("pretrained", "scratch"):
            prof[arm] = {k: v for k, v in prof[arm].items() if k != "learning_rate"}
        return {k: v for k, v in prof.items() if k not in ("tasks", "pilot", "pilot_dev_accuracy")}

    if any(recipe(x) != recipe(parts[0]) for x in parts[1:]):
        raise SystemExit("--combine: the pilots were run with different recipes; combine only pilots of one recipe")
    runs = [r for x in parts for r in x["runs"] if keep is None or r["task"] in keep]
    tasks = sorted({r["task"] for r in runs})
    return {"pilot": "rate", "combined_from": [str(p) for p in paths], "profile": parts[0]["profile"],
            "tasks": tasks, "seeds": sorted({r["seed"] for r in runs}),
            "elapsed_seconds": sum(x["elapsed_seconds"] for x in parts),
            "parts": [{k: x[k] for k in ("tasks", "grids", "overrides", "device", "threads", "elapsed_seconds")}
                      for x in parts],
            "resolved_profile": parts[0]["resolved_profile"], "runs": runs, "summary": summarize(runs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--combine", nargs="+", default=None, metavar="PILOT_JSON",
                   help="instead of running: merge these pilot JSONs and apply the rule over their runs (the tasks "
                        "of --tasks only, when given) into --json")
    p.add_argument("--profile", default="standard")
    p.add_argument("--tasks", default=None, help="comma-separated (default: the profile's)")
    p.add_argument("--inits", default="pretrained,scratch")
    p.add_argument("--seeds", default="100,101,102", help="pilot seeds: never the profile's verdict seeds")
    p.add_argument("--pretrained-rates", default=",".join(f"{x:g}" for x in PRETRAINED_LR_GRID))
    p.add_argument("--scratch-rates", default=None, help="default: repro.config.SCRATCH_LR_GRID")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="runs directory (reused: a pilot resumes); needed unless --combine")
    p.add_argument("--json", required=True)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    if args.combine:
        from repro.storage import write_json

        out = combine([Path(x) for x in args.combine], args.tasks.split(",") if args.tasks else None)
        write_json(Path(args.json), out)
        for init, c in out["summary"]["chosen"].items():
            print(f"chosen rate for {init} over {', '.join(out['tasks'])}: {c['learning_rate']} ({c['why']})")
        return 0
    if args.out is None:
        p.error("--out is required (the runs directory) unless --combine")

    import torch

    from repro.config import SCRATCH_LR_GRID
    from repro.data import describe_source
    from repro.storage import write_json
    from repro.training import train

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    prof = _profile(args.profile, args.overrides)
    seeds = [int(s) for s in args.seeds.split(",")]
    clash = sorted(set(seeds) & set(prof.seeds))
    if clash:
        raise SystemExit(f"--seeds {args.seeds}: {clash} are verdict seeds of {prof.name}; pilot on other seeds")
    tasks = args.tasks.split(",") if args.tasks else list(prof.tasks)
    grids = {"pretrained": [float(x) for x in args.pretrained_rates.split(",")],
             "scratch": [float(x) for x in args.scratch_rates.split(",")] if args.scratch_rates
             else list(SCRATCH_LR_GRID)}
    source = describe_source(args.data_dir)
    records: list[dict[str, Any]] = []
    path = Path(args.json)
    started = time.time()
    for task in tasks:
        for init in args.inits.split(","):
            for lr in grids[init]:
                for seed in seeds:
                    hyper = dataclasses.replace(prof.hyper(init), learning_rate=lr)
                    cfg = dataclasses.replace(prof.train_config(task, init, seed, data_source=source), hyper=hyper)
                    run = train(cfg, args.out, data_dir=args.data_dir, device=args.device, progress=False)
                    rec = run_record(run, prof, args.data_dir, args.device)
                    records.append(rec)
                    print(f"{task:5s} {init:10s} lr {lr:g} seed {seed}: θ1 loss {rec['train_loss_theta1']:.3f} "
                          f"({'learned' if rec['learned'] else 'NOT learned'}), dev {rec['dev_accuracy']:.3f} vs "
                          f"majority {rec['dev_majority_rate']:.3f} (p {rec['dev_p_above_majority']:.2g}), "
                          f"{rec['wall_seconds']:.0f} s", flush=True)
                    # written after every run: an interrupted pilot keeps what it measured
                    write_json(path, {"pilot": "rate", "profile": prof.name, "overrides": list(args.overrides),
                                      "resolved_profile": prof.to_json(), "tasks": tasks, "seeds": seeds,
                                      "grids": grids, "data_source": source, "device": args.device or "cpu",
                                      "threads": torch.get_num_threads(),
                                      "elapsed_seconds": time.time() - started,
                                      "runs": records, "summary": summarize(records)})
    for init, c in summarize(records)["chosen"].items():
        print(f"chosen rate for {init}: {c['learning_rate']} ({c['why']})")
    print(f"rate pilot: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
