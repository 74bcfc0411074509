"""Scale-out gives the same results: the plan on 2 gloo workers (torch elastic) and the plan split into 2 shards
and merged both give claims.json numbers identical to one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from repro.pipeline.launcher import launch
from repro.pipeline.runner import CLAIMS_FILE, claims_dir, merge_shards, run_claims, shard_dir
from repro.errors import ReproError
from tests.plan_fixtures import tiny_profile

pytestmark = pytest.mark.slow


def _numbers(root: Path) -> tuple[str, list[dict]]:
    """Everything in claims.json that is a result: the claims (as JSON text, so NaN equals NaN) and the runs
    without their wall-clock times."""
    d = json.loads((root / CLAIMS_FILE).read_text(encoding="utf-8"))
    runs = [{k: v for k, v in r.items() if k != "wall_seconds"} for r in d["runs"]]
    return json.dumps(d["claims"], sort_keys=True), runs


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, tiny_glue: Path) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers run one thread each: same kernels, same rounding
    try:
        out = tmp_path_factory.mktemp("single")
        run_claims(tiny_profile(), out, data_dir=str(tiny_glue), progress=False, write_html=False)
    finally:
        torch.set_num_threads(threads)
    return claims_dir(tiny_profile(), out)


def test_shards_merged_equal_the_single_run(single: Path, tmp_path: Path, tiny_glue: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    profile = tiny_profile()
    outputs = []
    for i in range(2):  # as on two machines: separate result directories
        run_claims(profile, tmp_path / f"m{i}", data_dir=str(tiny_glue), progress=False, write_html=False,
                   shard=(i, 2))
        outputs.append(shard_dir(claims_dir(profile, tmp_path / f"m{i}"), (i, 2)))
        assert not (claims_dir(profile, tmp_path / f"m{i}") / CLAIMS_FILE).exists()
    for d in outputs:  # small: metrics and analyses only
        files = [p for p in d.rglob("*") if p.is_file()]
        assert {p.suffix for p in files} == {".json"}
        assert sum(p.stat().st_size for p in files) < 2_000_000

    with pytest.raises(ReproError, match=r"shard\(s\) 1/2 missing"):
        merge_shards(outputs[:1], tmp_path / "merged")
    capsys.readouterr()
    merge_shards(outputs, tmp_path / "merged", write_html=False)
    assert capsys.readouterr().out.startswith("claims run directory:")
    merged = claims_dir(profile, tmp_path / "merged")
    assert _numbers(merged) == _numbers(single)


@pytest.mark.distributed
def test_two_workers_equal_one(single: Path, tmp_path: Path, tiny_glue: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # inherited by the spawned workers
    kwargs = {"profile": tiny_profile(), "out": tmp_path, "data_dir": str(tiny_glue), "progress": False,
              "write_html": False}
    code = launch(2, kwargs)
    assert code in (0, 1)
    root = claims_dir(tiny_profile(), tmp_path)
    assert _numbers(root) == _numbers(single)
    durations = json.loads((root / CLAIMS_FILE).read_text())["durations"]
    assert {"train_seconds", "analysis_seconds", "evaluation_seconds", "total_seconds"} <= set(durations)
