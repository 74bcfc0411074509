"""`repro bench grid` on a tiny model: the JSON carries every comparison it promises, including the fused-attention
surface (issue 42), whose losses must agree with the eager surface's to float rounding. No timing assertions."""

from __future__ import annotations

import json
from pathlib import Path

from repro.bench import run_grid_bench
from repro.bench.common import describe_bench


def test_grid_bench_times_the_sdpa_surface_beside_the_eager_one(tmp_path: Path) -> None:
    out = tmp_path / "grid.json"
    result = run_grid_bench(out, model_name="tiny-random", device="cpu", n_examples=8, max_len=12, batch_size=4,
                            grid_size=2, naive_points=2, vmap_points=1, with_loss_landscapes=False, threads=1)
    stored = json.loads(out.read_text())
    sd = stored["ours_sdpa"]
    assert sd["points_per_s"] > 0 and sd["max_abs_diff_vs_eager"] < 1e-4
    assert stored["ratios"]["sdpa_over_eager"] == sd["points_per_s"] / stored["ours"]["points_per_s"]
    assert any(line.startswith("  sdpa / eager attention = ") for line in describe_bench(result))


def test_grid_bench_counts_flops_against_the_matmul_ceiling_and_times_bf16(tmp_path: Path) -> None:
    """Issue 42: the grid rate as GFLOP/s on real tokens against the float32 matmul ceiling at the model's shapes
    (real FLOPs ≤ padded FLOPs; the ratio is the rate times the FLOPs over the ceiling), and the bf16 surface with its
    error against float32 -- bf16 rounding, so nonzero and small on a tiny model."""
    out = tmp_path / "grid.json"
    result = run_grid_bench(out, model_name="tiny-random", device="cpu", n_examples=8, max_len=12, batch_size=4,
                            grid_size=2, naive_points=2, vmap_points=1, with_loss_landscapes=False, threads=1)
    fl = result["flops_per_point"]
    assert 0 < fl["real"] < fl["padded"]  # synthetic examples of several lengths: some padding
    ceiling = result["matmul_ceiling"]["float32"]["gflops"]
    sd = result["ours_sdpa"]
    assert sd["useful_gflops"] == fl["real"] * sd["points_per_s"] / 1e9
    assert result["ratios"]["sdpa_useful_over_matmul_ceiling"] == sd["useful_gflops"] / ceiling
    b16 = result["ours_sdpa_bf16"]
    assert 0 < b16["max_abs_diff_vs_float32"] < 5e-2 and isinstance(b16["native_bf16"], bool)
    lines = describe_bench(result)
    assert any("of the float32 matmul ceiling" in ln and "goal 0.7" in ln for ln in lines)
    assert any(ln.startswith("  bf16 / float32 grids = ") for ln in lines)
