"""`repro runs clean DIR` (issue 40): lists with sizes what no finished result needs -- checkpoints of unfinished
runs, grid stores of finished analyses, claims run directories that are not their profile's current version --
removes nothing without --delete, never a finished run's weights or an unfinished analysis' store, and superseded
runs only with --delete --superseded."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from repro.cli import main
from repro.config import get_profile
from repro.pipeline.clean import CHECKPOINT, GRID_STORE, SUPERSEDED, clean, find_removable
from repro.storage import config_hash, to_json_dict


def _claims_dir(out: Path, profile) -> Path:  # noqa: ANN001
    d = out / f"{profile.name}-{config_hash(profile, 8)}"
    d.mkdir(parents=True)
    (d / "profile.json").write_text(json.dumps(to_json_dict(profile)))
    return d


def _tree(out: Path) -> tuple[Path, Path]:
    current = _claims_dir(out, get_profile("smoke"))
    unfinished = current / "train" / "sst2-pretrained-seed0-aaaa"
    unfinished.mkdir(parents=True)
    (unfinished / "checkpoint.pt").write_bytes(b"x" * 3000)
    finished = current / "train" / "sst2-scratch-seed0-bbbb"
    finished.mkdir(parents=True)
    for name in ("metrics.json", "theta1.safetensors"):
        (finished / name).write_bytes(b"y" * 100)
    (finished / "checkpoint.pt").write_bytes(b"z" * 10)  # a finished run's leftover: kept (not ours to judge)
    done = current / "analysis" / "base-sst2-scratch-seed0-bbbb"
    done.mkdir(parents=True)
    (done / "grid.npz").write_bytes(b"g" * 500)
    done.with_suffix(".json").write_text("{}")
    running = current / "analysis" / "base-sst2-pretrained-seed0-aaaa"  # no .json yet: resumes from its store
    running.mkdir()
    (running / "grid.npz").write_bytes(b"g" * 50)
    old = _claims_dir(out, dataclasses.replace(get_profile("smoke"), train_size=64))
    (old / "claims.json").write_text("{}")
    return current, old


def test_dry_run_lists_each_kind_with_its_size_and_removes_nothing(tmp_path: Path) -> None:
    current, old = _tree(tmp_path)
    items = find_removable(tmp_path)
    kinds = {(i.kind, i.path.relative_to(tmp_path).as_posix(), i.size) for i in items}
    assert kinds == {
        (CHECKPOINT, f"{current.name}/train/sst2-pretrained-seed0-aaaa/checkpoint.pt", 3000),
        (GRID_STORE, f"{current.name}/analysis/base-sst2-scratch-seed0-bbbb", 500),
        (SUPERSEDED, old.name, len((old / "profile.json").read_bytes()) + 2),
    }
    before = sorted(p for p in tmp_path.rglob("*"))
    _, lines = clean(tmp_path)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert lines[-1].startswith("dry run: 3.5 KB in checkpoints and grid stores would go with --delete")


def test_delete_removes_checkpoints_and_stores_and_superseded_runs_only_when_asked(tmp_path: Path) -> None:
    current, old = _tree(tmp_path)
    clean(tmp_path, delete=True)
    assert not (current / "train" / "sst2-pretrained-seed0-aaaa" / "checkpoint.pt").exists()
    assert not (current / "analysis" / "base-sst2-scratch-seed0-bbbb").exists()
    assert (current / "analysis" / "base-sst2-scratch-seed0-bbbb.json").exists()  # the result stays
    assert (current / "analysis" / "base-sst2-pretrained-seed0-aaaa" / "grid.npz").exists()  # unfinished: stays
    assert (current / "train" / "sst2-scratch-seed0-bbbb" / "theta1.safetensors").exists()
    assert old.exists()
    size = sum(p.stat().st_size for p in old.rglob("*") if p.is_file())
    _, lines = clean(tmp_path, delete=True, superseded=True)
    assert not old.exists() and current.exists() and lines[-1] == f"freed {size / 1000:.1f} KB"


def test_one_claims_run_directory_can_be_cleaned_and_a_current_one_is_not_superseded(tmp_path: Path) -> None:
    current, _ = _tree(tmp_path)
    assert {i.kind for i in find_removable(current)} == {CHECKPOINT, GRID_STORE}


def test_the_cli_is_a_dry_run_by_default_and_refuses_what_it_cannot_do(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    current, old = _tree(tmp_path)
    assert main(["runs", "clean", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and "listed" in out and "superseded run" in out and old.exists()
    assert main(["runs", "clean", str(tmp_path), "--superseded"]) == 2
    assert main(["runs", "clean", str(tmp_path / "nope")]) == 2
    assert main(["runs", "purge", str(tmp_path)]) == 2
    assert main(["runs", "clean", str(tmp_path), "--delete"]) == 0 and old.exists()
    assert not (current / "train" / "sst2-pretrained-seed0-aaaa" / "checkpoint.pt").exists()
