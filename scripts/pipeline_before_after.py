"""The whole pipeline before and after issue 42, side by side in one run: one training run and one analysis of a
profile (default ``cpu``), timed at the revision before the issue and at this checkout, on the same machine.

Variants (each in its own fresh output folder, so nothing is reused; run one after another, never in parallel):

* ``before``  -- the revision before issue 42 (default 2aebef2, the last commit of science v3), from a ``git
  worktree`` outside this checkout;
* ``after``   -- this checkout with the registered recipe (the defaults every profile uses);
* ``after_bucketed_training`` -- this checkout's training with length-bucketed batches
  (``TrainHyper.length_bucketed``, off in every profile): training time only;
* ``after_bf16_grids`` -- the ``after`` variant's runs analysed again with bf16 grids on the CPU
  (``LandscapeSettings.cpu_grid_bf16``, off in every profile): analysis time, and its error against ``after``.

Each variant trains the SST-2 run and its cross-task partner (MRPC: the surface needs δ2) of one (init, seed) of the
base setting and analyses the SST-2 run. The JSON holds the seconds of each phase, the ratios before / after, and
the differences of every number of the analysis: ``after`` against ``before`` must agree to float rounding (the grids'
switch to the fused attention kernel changes losses by ~1e-7), and ``after_bf16_grids`` against ``after`` is the bf16
option's own error, each primary input's difference beside a tenth of its registered minimum effect -- the bar an option must pass before a profile may turn
it on (claims/REGISTRATION_V3.md, "Recipe changes after v3"). A PNG bar chart is written beside the JSON.

Usage (from the repository root; about 15 minutes for the cpu profile on 2 cores)::

    OMP_NUM_THREADS=2 python scripts/pipeline_before_after.py --data-dir /work/shared/glue \\
        --work /tmp/before-after --json bench/results/pipeline-before-after-cpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BEFORE = "2aebef2"  # the last commit before issue 42

# Runs inside the revision's own tree (PYTHONPATH), with an API both revisions share.
_DRIVER = r"""
import dataclasses, json, sys, time
import torch
spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
from repro.config import get_profile
from repro.training import train
from claims.analysis import analyze_run
prof = get_profile(spec["profile"])
if spec["bucketed"]:
    prof = dataclasses.replace(prof, pretrained=dataclasses.replace(prof.pretrained, length_bucketed=True),
                               scratch=dataclasses.replace(prof.scratch, length_bucketed=True))
if spec["bf16"]:
    prof = dataclasses.replace(prof, landscape=dataclasses.replace(prof.landscape, cpu_grid_bf16=True))
setting = prof.settings[0]
out, runs_out = spec["out"], spec["runs_out"]
times = {"train_s": 0.0, "train_partner_s": 0.0, "analysis_s": 0.0}
t = time.perf_counter()
run = train(prof.train_config(spec["task"], spec["init"], spec["seed"], setting), runs_out,
            data_dir=spec["data_dir"], device="cpu", progress=False)
t1 = time.perf_counter()
partner = train(prof.train_config(spec["partner"], spec["init"], spec["seed"], setting), runs_out,
                data_dir=spec["data_dir"], device="cpu", progress=False)
t2 = time.perf_counter()
if spec["time_training"]:
    times["train_s"], times["train_partner_s"] = t1 - t, t2 - t1
times["steps"] = run.metrics.total_steps
times["final_train_loss"] = float(run.metrics.train_loss[-1])
if spec["analyze"]:
    t = time.perf_counter()
    analyze_run(run, partner, prof, setting.name, out, data_dir=spec["data_dir"], device="cpu")
    times["analysis_s"] = time.perf_counter() - t
    times["analysis_json"] = str(sorted((__import__("pathlib").Path(out) / "analysis").glob("*.json"))[0])
print("RESULT " + json.dumps(times))
"""

# Inputs of registered primaries read from one analysis, with a tenth of the minimum effect in the units of the
# difference taken (log for widths: min effect log 1.25; nats for the swap and rollback costs: 0.01).
_PRIMARY_INPUTS = {
    "random_widths_bisection": ("width", "log", 0.1 * math.log(1.25)),
    "layer_widths_bisection": ("width", "log", 0.1 * math.log(1.25)),
    "matched_learned.random_widths": ("width", "log", 0.1 * math.log(1.25)),
    "layer_swap_dev": ("loss_swapped", "abs", 0.1 * 0.01),
    "rollback_dev": ("loss_rolled_back", "abs", 0.1 * 0.01),
}


def _flatten(x: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(x, dict):
        for k, v in x.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    elif isinstance(x, (int, float)) and not isinstance(x, bool) and x is not None:
        out[prefix] = float(x)
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per top-level field: the largest absolute difference and relative difference of its numbers, and, for the
    primaries' inputs, the largest difference in the units of their minimum effect against a tenth of it."""
    fb, fa = _flatten(before), _flatten(after)
    groups: dict[str, dict[str, float]] = {}
    for key in sorted(set(fb) & set(fa)):
        a, b = fa[key], fb[key]
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        top = key.split(".")[0].split("[")[0]
        g = groups.setdefault(top, {"max_abs": 0.0, "max_rel": 0.0, "numbers": 0})
        g["numbers"] += 1
        g["max_abs"] = max(g["max_abs"], abs(a - b))
        g["max_rel"] = max(g["max_rel"], abs(a - b) / max(abs(b), 1e-12))
    primaries: dict[str, Any] = {}
    for field, (leaf, unit, bar) in _PRIMARY_INPUTS.items():
        diffs = []
        for key in fb:
            head = key.split("[")[0]
            if (head == field or key.startswith(field + ".")) and key.endswith("." + leaf) and key in fa:
                a, b = fa[key], fb[key]
                if unit == "log":
                    if a > 0 and b > 0:
                        diffs.append(abs(math.log(a / b)))
                else:
                    diffs.append(abs(a - b))
        if diffs:
            worst = max(diffs)
            primaries[field] = {"unit": "log ratio" if unit == "log" else "nats", "max_difference": worst,
                                "tenth_of_min_effect": bar, "below_bar": worst < bar, "values": len(diffs)}
    return {"by_field": groups, "primary_inputs": primaries}


def _run_variant(name: str, tree: Path, args: argparse.Namespace, *, bucketed: bool = False, bf16: bool = False,
                 runs_from: str | None = None, analyze: bool = True) -> dict[str, Any]:
    """One variant in a fresh process. ``runs_from``: analyse another variant's runs (already trained: their
    training is not timed again); ``analyze=False``: time the training only."""
    out = Path(args.work) / name
    if out.exists():
        raise SystemExit(f"{out} exists: give a fresh --work folder (every variant must start from nothing)")
    runs_out = Path(args.work) / runs_from if runs_from else out
    spec = {"profile": args.profile, "task": "sst2", "partner": "mrpc", "init": args.init, "seed": args.seed,
            "data_dir": args.data_dir, "out": str(out), "runs_out": str(runs_out), "threads": args.threads,
            "bucketed": bucketed, "bf16": bf16, "time_training": runs_from is None, "analyze": analyze}
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(args.threads), REPRO_DATA_DIR=args.data_dir)
    print(f"[before-after] {name}: {tree}", flush=True)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(spec)], cwd=tree, env=env, text=True,
                          capture_output=True, check=False)
    wall = time.perf_counter() - t
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    rec = json.loads(line[len("RESULT "):])
    rec["process_s"] = wall
    rec["pipeline_s"] = rec["train_s"] + rec["train_partner_s"] + rec["analysis_s"]
    rec.setdefault("analysis_json", None)
    if rec["analysis_json"] is None:
        del rec["analysis_json"]
    print(f"[before-after] {name}: train {rec['train_s']:.0f} s + partner {rec['train_partner_s']:.0f} s, "
          f"analysis {rec['analysis_s']:.0f} s", flush=True)
    return rec


def _figure(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["variants"])
    phases = [("train_s", "training (SST-2)"), ("train_partner_s", "training (MRPC partner)"),
              ("analysis_s", "analysis (SST-2)")]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    left = [0.0] * len(names)
    for key, label in phases:
        vals = [result["variants"][n][key] for n in names]
        ax.barh(names, vals, left=left, label=label)
        left = [a + b for a, b in zip(left, vals)]
    for i, n in enumerate(names):
        ax.text(left[i], i, f" {left[i]:.0f} s", va="center", fontsize=8)
    ax.set_xlim(0, max(left) * 1.15)  # room for the totals
    ax.set_xlabel(f"seconds on {result['threads']} CPU threads ({result['profile']} profile, one run + analysis)")
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"Pipeline before / after issue 42: {result['speedup']['pipeline']:.2f}x (goal 2.5x)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--work", required=True, help="a fresh folder outside the checkout (runs, the before worktree)")
    p.add_argument("--json", required=True)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--init", default="pretrained", choices=("pretrained", "scratch"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--before", default=BEFORE, help="the revision before the issue (default %(default)s)")
    p.add_argument("--options", action="store_true",
                   help="also time bucketed training and analyse with bf16 grids (slow where the CPU has no native "
                        "bf16: 5.2x slower grids on an AVX2 CPU)")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "before-tree"
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.before], check=True,
                       capture_output=True)
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    variants = {"before": _run_variant("before", tree, args), "after": _run_variant("after", REPO, args)}
    if args.options:
        variants["after_bucketed_training"] = _run_variant("after_bucketed_training", REPO, args, bucketed=True,
                                                           analyze=False)
        variants["after_bf16_grids"] = _run_variant("after_bf16_grids", REPO, args, bf16=True, runs_from="after")
    analyses = {k: json.loads(Path(v["analysis_json"]).read_text()) for k, v in variants.items()
                if "analysis_json" in v}
    b = variants["before"]
    result: dict[str, Any] = {
        "benchmark": "pipeline_before_after", "profile": args.profile, "init": args.init, "seed": args.seed,
        "task": "sst2", "partner": "mrpc", "threads": args.threads, "before_revision": args.before,
        "after_revision": rev, "machine": platform.machine(), "python": platform.python_version(),
        "variants": {k: {kk: vv for kk, vv in v.items() if kk != "analysis_json"} for k, v in variants.items()},
        "speedup": {
            "pipeline": b["pipeline_s"] / variants["after"]["pipeline_s"],
            "training": (b["train_s"] + b["train_partner_s"])
            / (variants["after"]["train_s"] + variants["after"]["train_partner_s"]),
            "analysis": b["analysis_s"] / variants["after"]["analysis_s"],
        },
        "goal": "pipeline speedup >= 2.5 (issue 42)",
        # after vs before: the registered recipe (float rounding expected); bf16 grids vs after: the same runs,
        # so the option's own error
        "differences": {"after_vs_before": compare(analyses["before"], analyses["after"])},
    }
    if "after_bf16_grids" in variants:
        bt, bf = variants["after_bucketed_training"], variants["after_bf16_grids"]
        result["differences"]["bf16_grids_vs_after"] = compare(analyses["after"], analyses["after_bf16_grids"])
        result["speedup"]["training_bucketed"] = (b["train_s"] + b["train_partner_s"]) / (
            bt["train_s"] + bt["train_partner_s"])
        result["speedup"]["analysis_bf16_grids"] = b["analysis_s"] / bf["analysis_s"]
        result["speedup"]["pipeline_with_options"] = b["pipeline_s"] / (
            bt["train_s"] + bt["train_partner_s"] + bf["analysis_s"])
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    tmp.replace(out)
    _figure(result, out.with_suffix(".png"))
    print(json.dumps(result["speedup"], indent=2))
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False,
                   capture_output=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
