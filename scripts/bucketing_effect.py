"""What does length-bucketed batching (``TrainHyper.length_bucketed``, issue 42) do to training? One seed of both
arms (pretrained and scratch) of a profile on one task, each trained with the random order and with the bucketed
order; writes the four training curves to one JSON.

Per run: the per-step training loss, the final training loss (mean of the last epoch's steps, and the last step's),
every dev evaluation (loss, accuracy) and the last dev accuracy, the wall time of training (the run's own record),
steps, and the real and padded tokens of one epoch of each order. Per arm: the bucketed-minus-random differences.

Runs go under ``--out`` like ``repro train``'s (keyed by config hash): a random-order run that a claims run of the
same profile, data and seed already trained is reused, not retrained (its wall time is then the recorded one).
Switching a profile to bucketing is a registered recipe change; this is the evidence for it, not the change.

Usage (from the repository root; the cpu profile's SST-2 arm takes a few minutes per run on 2 cores)::

    OMP_NUM_THREADS=2 python scripts/bucketing_effect.py --profile cpu --task sst2 --data-dir /work/shared/glue \\
        --device cpu --out runs --json runs/bucketing-effect-cpu-sst2.json

``--set KEY=VALUE`` overrides profile fields as ``repro train`` does (e.g. ``--set pretrained.epochs=1``).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _profile(name: str, overrides: list[str]):  # noqa: ANN202
    from repro.config import profile_with_overrides
    from repro.validation import validate_profile

    prof = profile_with_overrides(name, overrides)
    validate_profile(prof)
    return prof


def epoch_tokens(split: Any, hyper: Any, seed: int) -> dict[str, int]:
    """Real and padded tokens of epoch 0 of ``hyper``'s order (what one epoch of that run computes on)."""
    from repro.training.loop import epoch_batches

    batches = epoch_batches(split, hyper, seed, 0)
    return {"real_tokens": sum(int(b["attention_mask"].sum()) for b in batches),
            "padded_tokens": sum(int(b["input_ids"].numel()) for b in batches), "batches": len(batches)}


def run_record(run: Any, tokens: dict[str, int]) -> dict[str, Any]:
    m = run.metrics
    last_epoch = m.train_loss[-m.steps_per_epoch:] if m.steps_per_epoch else m.train_loss
    return {
        "run_dir": str(run.path), "status": m.status, "steps": m.total_steps, "steps_per_epoch": m.steps_per_epoch,
        "train_loss": list(m.train_loss), "final_train_loss_last_epoch_mean": statistics.fmean(last_epoch),
        "final_train_loss_last_step": m.train_loss[-1],
        "dev": [{"step": e.step, "epoch": e.epoch, "dev_loss": e.dev_loss, "dev_accuracy": e.dev_accuracy}
                for e in m.evals],
        "final_dev_accuracy": m.evals[-1].dev_accuracy, "final_dev_loss": m.evals[-1].dev_loss,
        "wall_seconds": m.wall_seconds, "epoch0": tokens,
    }


def bucketing_effect(profile: Any, task: str, seed: int, setting_name: str, out: Path, *,
                     data_dir: str | None = None, device: str | None = None, progress: bool = True
                     ) -> dict[str, Any]:
    from repro.data import describe_source
    from repro.training import train
    from repro.training.loop import load_data

    setting = next((s for s in profile.settings if s.name == setting_name), None)
    if setting is None:
        raise SystemExit(f"unknown setting {setting_name!r}; known: {', '.join(s.name for s in profile.settings)}")
    source = describe_source(data_dir)
    result: dict[str, Any] = {"profile": profile.name, "model": profile.model, "task": task, "seed": seed,
                              "setting": setting_name, "data_source": source, "arms": {}}
    for init in ("pretrained", "scratch"):
        base = profile.train_config(task, init, seed, setting, data_source=source)
        _, split, _ = load_data(base, data_dir)
        arm: dict[str, Any] = {"learning_rate": base.hyper.learning_rate, "epochs": base.hyper.epochs,
                               "batch_size": base.hyper.batch_size}
        for order, bucketed in (("random", False), ("bucketed", True)):
            cfg = dataclasses.replace(base, hyper=dataclasses.replace(base.hyper, length_bucketed=bucketed))
            run = train(cfg, out, data_dir=data_dir, device=device, progress=progress)
            arm[order] = run_record(run, epoch_tokens(split, cfg.hyper, seed))
        r, b = arm["random"], arm["bucketed"]
        arm["bucketed_minus_random"] = {
            "final_train_loss_last_epoch_mean": b["final_train_loss_last_epoch_mean"]
            - r["final_train_loss_last_epoch_mean"],
            "final_dev_accuracy": b["final_dev_accuracy"] - r["final_dev_accuracy"],
            "wall_seconds": b["wall_seconds"] - r["wall_seconds"],
        }
        arm["bucketed_over_random_padded_tokens"] = b["epoch0"]["padded_tokens"] / r["epoch0"]["padded_tokens"]
        result["arms"][init] = arm
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--task", default="sst2")
    p.add_argument("--seed", type=int, default=None, help="default: the profile's first verdict seed")
    p.add_argument("--setting", default="base")
    p.add_argument("--data-dir", default=None, help="local GLUE copy (default $REPRO_DATA_DIR, else the hub)")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="runs", help="results directory for the four runs (default ./runs)")
    p.add_argument("--json", default=None, help="output JSON (default <out>/bucketing-effect-<profile>-<task>.json)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    import torch

    from repro.storage import write_json

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    prof = _profile(args.profile, args.overrides)
    seed = args.seed if args.seed is not None else prof.seeds[0]
    result = bucketing_effect(prof, args.task, seed, args.setting, Path(args.out), data_dir=args.data_dir,
                              device=args.device, progress=not args.no_progress)
    result["overrides"] = list(args.overrides)
    path = Path(args.json) if args.json else Path(args.out) / f"bucketing-effect-{prof.name}-{args.task}.json"
    write_json(path, result)
    for init, arm in result["arms"].items():
        for order in ("random", "bucketed"):
            r = arm[order]
            print(f"{init:10s} {order:8s}: final train loss {r['final_train_loss_last_epoch_mean']:.4f} (last epoch "
                  f"mean), dev accuracy {r['final_dev_accuracy']:.4f}, {r['wall_seconds']:.1f} s, "
                  f"{r['epoch0']['padded_tokens']} padded / {r['epoch0']['real_tokens']} real tokens per epoch")
    print(f"bucketing effect: {path}")
    return 0


if __name__ == "__main__":
    from repro.errors import ReproError

    try:
        sys.exit(main())
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
