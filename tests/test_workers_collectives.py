"""Workers.gather and Workers.barrier in a real two-process gloo group: every rank receives every rank's object, in
rank order. The plan's failure exchange rests on this (each rank learns the training failures of the others before
its analyses); the end-to-end two-worker plan (tests/test_plan_workers.py) is ``slow``, so without this test the
fast suite never ran the distributed branch of gather (tests/MUTATION.md)."""

from __future__ import annotations

import json
from pathlib import Path

import torch.distributed as dist
import torch.multiprocessing as mp

from repro.pipeline.distributed import Workers


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        workers = Workers(rank=rank, world=world, local_rank=rank)
        got = workers.gather({"rank": rank, "failed": {f"run-{rank}": f"oom on rank {rank}"}})
        workers.barrier()
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(got), encoding="utf-8")
    finally:
        dist.destroy_process_group()


def test_gather_gives_every_rank_every_ranks_object_in_rank_order(tmp_path: Path) -> None:
    world = 2
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world, join=True)
    want = [{"rank": r, "failed": {f"run-{r}": f"oom on rank {r}"}} for r in range(world)]
    for rank in range(world):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text(encoding="utf-8")) == want


def test_a_single_process_gathers_its_own_object_without_a_group() -> None:
    obj = {"train": {}, "analysis": {"a": "nan"}}
    assert Workers().gather(obj) == [obj] and Workers().gather(obj)[0] is obj
    Workers().barrier()  # no group initialised: a no-op, not an error
