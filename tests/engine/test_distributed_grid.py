"""The grid split across 2 gloo processes equals the single-process grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import label_batches, make_quadratic, quad_loss
from repro.landscape import ParamVector, compute_surface, get_params

ALPHAS, BETAS = [-1.0, 0.0, 0.5, 2.0], [-0.5, 0.0, 1.0]


def _surface(**kw):
    model = make_quadratic(6, seed=11)
    base = get_params(model)
    g = torch.Generator().manual_seed(5)
    d1 = ParamVector(("x",), (torch.randn(6, generator=g, dtype=torch.float64),))
    d2 = ParamVector(("x",), (torch.randn(6, generator=g, dtype=torch.float64),))
    sets = {"train": label_batches([3]), "dev": label_batches([2])}
    calls = {"n": 0}

    def counting(model, batch):
        calls["n"] += 1
        return quad_loss(model, batch)

    s = compute_surface(model, base, d1, d2, ALPHAS, BETAS, sets, loss_fn=counting, logits_fn=None, **kw)
    return s, calls["n"] // 2  # two batch sets per point


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        s, points = _surface(distributed=True, store_dir=f"{out_dir}/store")
        np.save(f"{out_dir}/train_loss.{rank}.npy", s.train_loss)
        np.save(f"{out_dir}/points.{rank}.npy", np.array(points))
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_two_process_grid_equals_single_process(tmp_path) -> None:
    world = 2
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world, join=True)
    single, n_single = _surface()
    for r in range(world):
        np.testing.assert_array_equal(np.load(tmp_path / f"train_loss.{r}.npy"), single.train_loss)
    counts = [int(np.load(tmp_path / f"points.{r}.npy")) for r in range(world)]
    assert counts == [6, 6] and sum(counts) == n_single == len(ALPHAS) * len(BETAS)
    assert sorted(p.name for p in (tmp_path / "store").glob("grid.r*of2.npz")) == ["grid.r0of2.npz", "grid.r1of2.npz"]
