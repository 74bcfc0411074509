"""Measure a profile's own CPU timings for the shard planner (issue 43): training steps per second from finished
runs of its recipe, and the wall seconds of its analysis, timed here on those runs.

The shard planner prices a profile with the device kind's recorded figures scaled by examples x layers
(repro/pipeline/timings.py); across batch sizes and length-bucketed batches that guide is poor (it priced the
workstation recipe's training 4.4x too slow). This script measures the figures on the profile's own recipe, so
that ``RECORDED_BY_PROFILE`` can hold them:

* training: every finished run under ``--runs`` whose training configuration is the profile's (base setting,
  either arm, any rate of the arm's grid: rates do not change a step's cost), by task -- steps / wall seconds as
  the run recorded them (one process, the threads it ran with), and the mean over the plan's tasks weighted as
  the plan weights them (each task the same number of runs);
* analysis: one analysis per task (``--analyse TASK``; the first run of that task at the profile's base rates and
  the same (init, seed) on the next task as the partner, for the cross-task surface), timed in this process on a
  machine that should be doing nothing else. Written to a scratch folder, never reused.

The JSON holds each figure, the runs it came from, the threads and the machine. Usage (2 cores, nothing else
running)::

    OMP_NUM_THREADS=2 python scripts/profile_timings.py --profile workstation --runs /tmp/pilot/runs \\
        /work/pilot/runs-mrpc --analyse sst2,mrpc --data-dir ../shared/glue --work /tmp/timings \\
        --json bench/results/workstation-timings-cpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _recipe(cfg: dict[str, Any]) -> dict[str, Any]:
    """What sets a step's cost: everything of the training configuration but the task, arm, seed, rate, data
    source, snapshot count (a snapshot is one 45 MB write: the rate pilot kept 2, a profile more) and dev
    evaluations per epoch (each run's count is recorded: a run that evaluated more often prices the recipe on the
    safe side)."""
    hyper = {k: v for k, v in cfg["hyper"].items() if k != "learning_rate"}
    drop = {"task", "init", "seed", "hyper", "data_source", "snapshots", "evals_per_epoch"}
    return {**{k: v for k, v in cfg.items() if k not in drop}, "hyper": hyper}


def training_rates(profile, run_roots: list[Path]) -> dict[str, Any]:  # noqa: ANN001
    """Steps per wall second of every finished run of the profile's recipe under ``run_roots``, by task."""
    want = {}
    for init in ("pretrained", "scratch"):
        for task in (*profile.tasks, *profile.partner_tasks):
            want[(task, init)] = _recipe(profile.train_config(task, init, 0).to_json())
    by_task: dict[str, list[dict[str, Any]]] = {}
    for root in run_roots:
        for cfg_path in sorted(root.glob("train/*/config.json")):
            met_path = cfg_path.parent / "metrics.json"
            if not met_path.is_file():
                continue
            cfg = json.loads(cfg_path.read_text())["config"]
            met = json.loads(met_path.read_text())
            if met.get("status") != "complete" or _recipe(cfg) != want.get((cfg["task"], cfg["init"])):
                continue
            prov = json.loads(cfg_path.read_text()).get("provenance", {})
            by_task.setdefault(cfg["task"], []).append({
                "run": cfg_path.parent.name, "steps": met["total_steps"], "wall_seconds": met["wall_seconds"],
                "evals_per_epoch": cfg["evals_per_epoch"],
                "threads": prov.get("torch_threads"), "steps_per_second": met["total_steps"] / met["wall_seconds"]})
    out: dict[str, Any] = {"by_task": {}}
    for task, runs in by_task.items():
        two = [r for r in runs if r["threads"] == 2]
        use = two or runs
        out["by_task"][task] = {"runs": use, "steps_per_second": sum(r["steps"] for r in use)
                                / sum(r["wall_seconds"] for r in use), "threads": sorted({r["threads"] for r in use})}
    tasks = [t for t in (*profile.tasks, *profile.partner_tasks) if t in out["by_task"]]
    if tasks:
        # the harmonic mean of the tasks' rates: the rate of a mix with equal steps per task (the planner prices
        # each run by its own task's rate, training_rates()["by_task"])
        out["steps_per_second"] = len(tasks) / sum(1 / out["by_task"][t]["steps_per_second"] for t in tasks)
        out["tasks"] = tasks
    return out


def time_analysis(profile, task: str, run_roots: list[Path], work: Path, data_dir: str | None,  # noqa: ANN001
                  init: str = "pretrained") -> dict[str, Any]:
    """Wall seconds of one analysis of ``task``'s first base-setting run of arm ``init`` (at the profile's rate) with
    its partner on the next task, in a fresh folder. A run with fewer snapshots than the profile's (the rate pilot's
    2) projects fewer trajectory points: a few forward passes less than a verdict run's analysis."""
    from claims.analysis import analyze_run
    from repro.training.run import TrainRun

    setting = profile.settings[0]
    tasks = list(profile.tasks)
    partner_task = tasks[(tasks.index(task) + 1) % len(tasks)]

    def find(t: str, seed: int) -> Path | None:
        want = profile.train_config(t, init, seed, setting).to_json()
        want.pop("data_source"), want.pop("snapshots"), want.pop("evals_per_epoch")
        for root in run_roots:
            for cfg_path in sorted(root.glob(f"train/{t}-{init}-seed{seed}-*/config.json")):
                cfg = json.loads(cfg_path.read_text())["config"]
                cfg.pop("data_source"), cfg.pop("snapshots"), cfg.pop("evals_per_epoch")
                if cfg == want and (cfg_path.parent / "metrics.json").is_file():
                    return cfg_path.parent
        return None

    for seed in sorted({int(p.name.split("seed")[1].split("-")[0]) for r in run_roots
                        for p in r.glob(f"train/{task}-{init}-seed*")}):
        run_dir, partner_dir = find(task, seed), find(partner_task, seed)
        if run_dir is None or partner_dir is None:
            continue
        out = work / f"{task}-seed{seed}"
        out.mkdir(parents=True, exist_ok=False)
        t0 = time.perf_counter()
        analyze_run(TrainRun.load(run_dir), TrainRun.load(partner_dir), profile, setting.name, out,
                    data_dir=data_dir, device="cpu")
        return {"task": task, "init": init, "run": run_dir.name, "partner": partner_dir.name,
                "seconds": time.perf_counter() - t0}
    raise SystemExit(f"no {task} run with a {partner_task} partner at the profile's base rates under "
                     f"{', '.join(map(str, run_roots))}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="workstation")
    p.add_argument("--runs", nargs="+", required=True, help="runs directories (each with train/*/)")
    p.add_argument("--analyse", default="", help="comma-separated tasks whose analysis to time")
    p.add_argument("--init", default="pretrained", help="the arm whose runs to analyse (the cost is the same)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--work", required=True, help="scratch folder for the timed analyses (must not exist)")
    p.add_argument("--json", required=True)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    from repro.config import get_profile
    from repro.provenance import collect
    from repro.storage import write_json

    torch.set_num_threads(args.threads)
    prof = get_profile(args.profile)
    roots = [Path(r) for r in args.runs]
    work = Path(args.work)
    if work.exists():
        raise SystemExit(f"--work {work} exists: give a fresh folder (timed analyses are never reused)")
    analyses = [time_analysis(prof, t, roots, work, args.data_dir, args.init)
                for t in filter(None, args.analyse.split(","))]
    result = {
        "profile": prof.name, "threads": args.threads, "machine": f"{platform.machine()} x{os.cpu_count()}",
        "provenance": dataclasses.asdict(collect("cpu")),
        "training": training_rates(prof, roots), "analyses": analyses,
        "analysis_seconds": statistics.fmean(a["seconds"] for a in analyses) if analyses else None,
    }
    write_json(Path(args.json), result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("provenance",)}, indent=1, default=str)[:3000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
