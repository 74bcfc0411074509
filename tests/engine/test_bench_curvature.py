"""The curvature benchmark's issue-42 parts, small: the verdict analysis's Hessian batches (real data, synthetic only
without), the kept- against rebuilt-graph product measurement, and the calibration the cost model reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import synthetic_batches

from repro.bench.curvature import recorded_hvp_forwards, verdict_batches
from repro.bench.hvp import reuse_costs
from repro.config import get_profile


def test_verdict_batches_are_the_profiles_length_sorted_hessian_batches(tiny_glue: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ls = get_profile("cpu").landscape
    real, source = verdict_batches("tiny-random", "cpu", "sst2", tiny_glue, torch.device("cpu"))
    assert source.startswith("sst2 train") and str(tiny_glue) in source
    assert sum(int(b["labels"].shape[0]) for b in real) == ls.hessian_examples
    assert all(int(b["labels"].shape[0]) <= ls.hessian_batch_size for b in real)
    widths = [int(b["attention_mask"].sum(1).max()) for b in real]
    assert widths == sorted(widths, reverse=True) and all(int(b["input_ids"].shape[1]) == w
                                                          for b, w in zip(real, widths))
    monkeypatch.setenv("REPRO_DATA_DIR", str(tiny_glue))  # the default data directory, as the CLI's
    again, _ = verdict_batches("tiny-random", "cpu", "sst2", None, torch.device("cpu"))
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(real, again))
    monkeypatch.delenv("REPRO_DATA_DIR")
    synthetic, source = verdict_batches("tiny-random", "standard", "sst2", None, torch.device("cpu"))
    assert source == "synthetic"
    assert [int(b["labels"].shape[0]) for b in synthetic] == [64] * 4


def test_reuse_costs_measure_both_products_and_the_kept_graphs(tiny_model: torch.nn.Module) -> None:
    data = synthetic_batches(2, 3, max_len=8, seed=1)
    r = reuse_costs(tiny_model, data, None, repeats=1, seed=0, device=torch.device("cpu"))
    assert r["batches"] == 2 and r["examples"] == 6 and r["products_max_rel_difference"] < 1e-6
    assert set(r["forward_equivalents_per_product"]) == {"kept_graphs", "rebuilt_graphs"}
    assert all(x > 0 for x in r["forward_equivalents_per_product"].values())
    assert len(r["graph_mib_per_batch"]) == 2 and all(m > 0 for m in r["graph_mib_per_batch"])


def test_the_cost_model_reads_a_recorded_calibration_else_assumes(tmp_path: Path) -> None:
    assert recorded_hvp_forwards("cpu", tmp_path) is None  # nothing recorded
    (tmp_path / "curvature-cpu.json").write_text(json.dumps({"calibration": {"hvp_forward_equivalents": 6.25}}))
    assert recorded_hvp_forwards("cpu", tmp_path) == 6.25
    (tmp_path / "curvature-cuda.json").write_text(json.dumps({"model": "no calibration"}))
    assert recorded_hvp_forwards("cuda", tmp_path) is None
    from repro.config import get_profile
    from repro.pipeline.jobs import HVP_FORWARDS, analysis_cost, hvp_forwards

    assert hvp_forwards() == (recorded_hvp_forwards() or HVP_FORWARDS)
    # the plan's costs never depend on the machine; a named device prices its products at its calibration
    std = get_profile("standard")
    plain = analysis_cost(std)
    for device in ("cpu", "cuda"):
        priced = analysis_cost(std, device_type=device)
        assert (priced > plain) if hvp_forwards(device) > HVP_FORWARDS else (priced <= plain), device
    import repro.bench.curvature as bc

    bc_before = bc.recorded_hvp_forwards
    try:  # a calibration of 50 forwards per product leaves the plan's cost as it is
        bc.recorded_hvp_forwards = lambda *a, **k: 50.0
        assert analysis_cost(std) == plain and analysis_cost(std, device_type="cpu") > plain
    finally:
        bc.recorded_hvp_forwards = bc_before
