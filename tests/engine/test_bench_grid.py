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
