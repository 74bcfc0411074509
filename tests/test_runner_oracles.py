"""The orchestration of a claims run (claims/runner.py) against oracles, without training anything.

The committed golden run (tests/fixtures/golden/tiny: a trimmed real ``repro claims`` directory with every
metrics.json and analysis JSON and the claims.json they gave) is the oracle: :func:`finish` on a copy of it must
write that claims.json again (claims, per-run summaries, training compute time); the same evidence split into
shards with :func:`write_shard` and merged with :func:`merge_shards` must give the same claims.json as the
unsharded run; a bad set of shards must stop with one error naming the fix before anything is overwritten; and
:func:`run_claims` (with the plan's ``execute`` replaced by a copy of the golden files) must hand its arguments
through, write a shard only for a shard, and nothing at all on a rank other than 0. The terminal table and summary
are checked for the verdicts, aligned columns and signed numbers a user reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from claims.base import LEARNED_FRACTION_OF_CHANCE, NOT_REPRODUCED, REPRODUCED, Stat
from repro.pipeline.distributed import Workers
from repro.pipeline.jobs import AnalysisJob, deal, plan_jobs, run_key
from repro.pipeline.plan import Outcomes
from repro.pipeline.revision import science_revision
from repro.pipeline.runner import (
    CLAIMS_FILE,
    MANIFEST_FILE,
    ShardManifest,
    claims_dir,
    finish,
    format_stat,
    format_summary,
    format_table,
    merge_shards,
    run_claims,
    shard_dir,
    write_shard,
)
from repro import provenance
from repro.results import SCHEMA_VERSION, ClaimsReport, load_claims
from repro.results.schema import validate as validate_claims
from repro.config import Profile
from repro.data import describe_source
from repro.errors import ReproError
from repro.storage import from_json_dict, read_json, to_json_dict
from tests.golden import FIXTURES

GOLDEN = FIXTURES / "tiny"
pytestmark = pytest.mark.skipif(not (GOLDEN / CLAIMS_FILE).exists(), reason="no golden run committed")

ALL_DURATIONS = {"train_seconds", "analysis_seconds", "evaluation_seconds", "total_seconds",
                 "training_compute_seconds"}


@dataclasses.dataclass(frozen=True)
class Golden:
    profile: Profile
    stored: ClaimsReport
    raw: dict[str, Any]  # the stored claims.json as JSON
    jobs: tuple[AnalysisJob, ...]

    @property
    def source(self) -> str:
        return self.stored.data_source


@pytest.fixture(scope="module")
def golden() -> Golden:
    profile = Profile.from_json(read_json(GOLDEN / "profile.json"))
    stored = load_claims(GOLDEN)
    _, jobs = plan_jobs(profile, stored.data_source)
    return Golden(profile, stored, read_json(GOLDEN / CLAIMS_FILE), jobs)


def _copy_run(dst: Path) -> Path:
    """The golden run's evidence (no claims.json) at ``dst``, with a stand-in weights file a shard must not copy."""
    shutil.copytree(GOLDEN, dst, ignore=shutil.ignore_patterns(CLAIMS_FILE))
    first = sorted((dst / "train").iterdir())[0]
    (first / "model.safetensors").write_bytes(b"weights")
    return dst


def _prov(tag: str) -> provenance.Provenance:
    return provenance.Provenance("2024-01-01T00:00:00+00:00", "3.12", {"torch": "x"}, f"rev-{tag}", False, "cpu", 1)


def _claims_text(raw: dict[str, Any]) -> str:
    """The claims of a claims.json as JSON text (NaN equals NaN), without their prose rationale."""
    claims = [{k: v for k, v in c.items() if k != "rationale"} for c in raw["claims"]]
    return json.dumps(claims, sort_keys=True)


def _runs_text(raw: dict[str, Any]) -> str:
    return json.dumps(raw["runs"], sort_keys=True)


def _no_temp_files(root: Path) -> None:
    left = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert not left, f"temporary files left behind: {left}"


def _failures(g: Golden) -> tuple[Outcomes, AnalysisJob, AnalysisJob, AnalysisJob]:
    """One training failure, one extended-training failure and one analysis failure, on three different arms."""
    by = {(j.setting, j.task, j.init, j.seed): j for j in g.jobs}
    trained = by["base", "sst2", "scratch", 1]
    extended = by["base", "mrpc", "pretrained", 2]
    analysed = by["long", "sst2", "pretrained", 0]
    return (Outcomes({run_key(trained.run): "RuntimeError: boom", run_key(extended.overfit): "OOM"},
                     {analysed.key: "ValueError: bad"}), trained, extended, analysed)


# -- finish: the golden claims.json again ------------------------------------------------------------------------
def test_finish_on_the_golden_evidence_writes_its_claims_json_again_and_prints_the_summary(
        golden: Golden, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """finish must evaluate every claim on the evidence on disk and write exactly the claims, run summaries
    (run/analysis paths relative to the run directory, last dev accuracy, θ1 loss, steps) and training compute
    (each distinct run's recorded wall time once, extended runs included) that the real run wrote; its timings
    are of this call; the printed text is the summary of what was written; nothing else is written."""
    root = _copy_run(tmp_path / "run")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    prov = _prov("a")
    t0 = time.perf_counter()
    code = finish(golden.profile, root, golden.jobs, Outcomes(), {"train_seconds": 3.0, "analysis_seconds": 4.0},
                  t0, prov, golden.source, False)
    elapsed = time.perf_counter() - t0
    assert code == 1  # the golden run does not reproduce every claim
    raw = read_json(root / CLAIMS_FILE)
    assert _claims_text(raw) == _claims_text(golden.raw)
    assert _runs_text(raw) == _runs_text(golden.raw)
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["science_revision"] == science_revision()  # the code that evaluated the claims, for later reports
    validate_claims(raw)  # a produced claims.json matches the committed JSON Schema
    report = load_claims(root)
    assert report.profile == golden.profile.to_json()
    assert report.provenance == prov and report.data_source == golden.source
    assert report.tasks == ("sst2", "mrpc") and report.seeds == (0, 1, 2) and report.settings == ("base", "long")
    assert report.verdict == "not_all_reproduced" == golden.stored.verdict
    assert report.learned_fraction_of_chance == LEARNED_FRACTION_OF_CHANCE
    d = report.durations
    assert set(d) == ALL_DURATIONS
    assert d["train_seconds"] == 3.0 and d["analysis_seconds"] == 4.0
    assert 0.0 <= d["evaluation_seconds"] <= d["total_seconds"] <= elapsed
    assert d["training_compute_seconds"] == pytest.approx(golden.stored.durations["training_compute_seconds"],
                                                          rel=1e-12)
    assert capsys.readouterr().out == f"{format_summary(report)}\nclaims: {root / CLAIMS_FILE}\n"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == sorted([*before, Path(CLAIMS_FILE)])
    _no_temp_files(root)


def test_finish_records_failed_training_extended_training_and_analysis_per_run(
        golden: Golden, tmp_path: Path) -> None:
    """A recorded failure replaces what is on disk: the failed run's summary says failed with no analysis, no θ1
    loss, no dev accuracy (NaN, not a stale number) and no steps; a failed extended run has no overfit run dir and
    leaves the compute total; a failed analysis keeps the training numbers but drops the analysis. Every other
    run's summary is the golden one."""
    root = _copy_run(tmp_path / "run")
    failures, trained, extended, analysed = _failures(golden)
    assert finish(golden.profile, root, golden.jobs, failures, {}, time.perf_counter(), _prov("a"), golden.source,
                  False) == 1
    report = load_claims(root)
    stored = {(r.setting, r.task, r.init, r.seed): r for r in golden.stored.runs}
    got = {(r.setting, r.task, r.init, r.seed): r for r in report.runs}
    assert list(got) == list(stored)
    t = got["base", "sst2", "scratch", 1]
    assert (t.status, t.learned, t.analysis, t.train_loss_theta1, t.total_steps, t.wall_seconds) == (
        "failed", False, None, None, 0, 0.0)
    assert math.isnan(t.dev_accuracy) and t.run_dir == stored["base", "sst2", "scratch", 1].run_dir
    assert "training failed: RuntimeError: boom" in t.error
    e = got["base", "mrpc", "pretrained", 2]
    assert e.overfit_run_dir is None and "extended training failed: OOM" in e.error
    assert dataclasses.replace(e, overfit_run_dir=stored[e.setting, e.task, e.init, e.seed].overfit_run_dir,
                               error="", learned=True) == stored[e.setting, e.task, e.init, e.seed]
    a = got["long", "sst2", "pretrained", 0]
    s = stored["long", "sst2", "pretrained", 0]
    assert a.analysis is None and a.train_loss_theta1 is None and not a.learned and a.status == "complete"
    assert (a.dev_accuracy, a.total_steps, a.wall_seconds, a.overfit_run_dir) == (
        s.dev_accuracy, s.total_steps, s.wall_seconds, s.overfit_run_dir)
    assert "analysis failed: ValueError: bad" in a.error
    shared = {(j.setting, j.task, j.init, j.seed) for j in golden.jobs if j.overfit == extended.overfit}
    assert len(shared) == 2  # both settings extend the same run: both lose it
    for k in shared:
        assert got[k].overfit_run_dir is None and "extended training failed: OOM" in got[k].error
    for k in set(got) - shared - {("base", "sst2", "scratch", 1), ("long", "sst2", "pretrained", 0)}:
        assert got[k] == stored[k]
    # compute time: every distinct run directory's wall seconds once (the failed run's placeholder counts 0)
    walls: dict[str, float] = {}
    for r in report.runs:
        walls[r.run_dir] = r.wall_seconds
        if r.overfit_run_dir is not None:
            walls[r.overfit_run_dir] = read_json(root / r.overfit_run_dir / "metrics.json")["wall_seconds"]
    assert walls[t.run_dir] == 0.0 and len(walls) < 2 * len(report.runs)
    assert report.durations["training_compute_seconds"] == pytest.approx(sum(walls.values()), rel=1e-12)


@pytest.mark.parametrize("verdicts, code, verdict", [
    ((REPRODUCED,) * 5, 0, REPRODUCED),
    ((REPRODUCED,) * 4 + (NOT_REPRODUCED,), 1, "not_all_reproduced"),
])
def test_finish_exits_0_only_when_every_claim_is_reproduced(
        golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdicts: tuple[str, ...], code: int,
        verdict: str) -> None:
    """The exit status a script or CI checks: 0 when every claim is reproduced, 1 otherwise, and the same overall
    verdict in claims.json."""
    claims = tuple(dataclasses.replace(c, verdict=v) for c, v in zip(golden.stored.claims, verdicts, strict=True))
    monkeypatch.setattr("repro.pipeline.runner.evaluate_all", lambda plan, *scope: claims)
    root = _copy_run(tmp_path / "run")
    assert finish(golden.profile, root, golden.jobs, Outcomes(), {}, time.perf_counter(), _prov("a"),
                  golden.source, False) == code
    assert load_claims(root).verdict == verdict


def _stub_report(monkeypatch: pytest.MonkeyPatch, calls: list[Path]) -> None:
    """A stand-in for repro.report.write_report (the real one renders figures for a minute)."""

    def write_report(run_dir: Path, *, science_revision: str | None = None) -> Path:
        report = load_claims(run_dir)  # the report reads the claims.json written before it
        assert report.claims
        assert science_revision == report.science_revision  # told the code's revision, the one the claims record
        calls.append(Path(run_dir))
        (Path(run_dir) / "report.html").write_text("<html></html>", encoding="utf-8")
        return Path(run_dir) / "report.html"

    monkeypatch.setattr("repro.report.write_report", write_report)


def test_finish_writes_the_report_after_claims_json_and_records_its_time(
        golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With write_html the report is written from the claims.json just written, its path printed, and claims.json
    rewritten with the report's time and the same results."""
    calls: list[Path] = []
    _stub_report(monkeypatch, calls)
    root = _copy_run(tmp_path / "run")
    t0 = time.perf_counter()
    assert finish(golden.profile, root, golden.jobs, Outcomes(), {"train_seconds": 1.0, "analysis_seconds": 2.0}, t0, _prov("a"),
                  golden.source, True) == 1
    elapsed = time.perf_counter() - t0
    assert calls == [root]
    raw = read_json(root / CLAIMS_FILE)
    assert _claims_text(raw) == _claims_text(golden.raw) and _runs_text(raw) == _runs_text(golden.raw)
    d = raw["durations"]
    assert set(d) == ALL_DURATIONS | {"report_seconds"}
    assert 0.0 <= d["report_seconds"] <= d["total_seconds"] <= elapsed
    assert d["train_seconds"] == 1.0 and d["analysis_seconds"] == 2.0
    out = capsys.readouterr().out
    assert out.endswith(f"claims: {root / CLAIMS_FILE}\nreport: {root / 'report.html'}\n")
    _no_temp_files(root)


# -- shards ------------------------------------------------------------------------------------------------------
def _shards(g: Golden, base: Path, n: int, failures: Outcomes = Outcomes(),  # noqa: B008
            durations: list[dict[str, float]] | None = None) -> list[Path]:
    """The golden evidence written as ``n`` shards, each on its own "machine" (a separate --out), each shard with
    the failures of its own jobs and its own provenance."""
    dirs = []
    for i in range(n):
        root = claims_dir(g.profile, base / f"machine{i}")
        _copy_run(root)
        mine = deal(g.jobs, i, n)
        keys = {j.key for j in mine} | {run_key(c) for j in mine for c in (j.run, j.overfit)}
        own = Outcomes({k: v for k, v in failures.train.items() if k in keys},
                       {k: v for k, v in failures.analysis.items() if k in keys})
        d = durations[i] if durations else {"train_seconds": 1.0, "analysis_seconds": 1.0, "total_seconds": 1.0}
        dirs.append(write_shard(root, (i, n), g.profile, g.source, _prov(str(i)), mine, own, d))
    return dirs


def test_a_shard_holds_its_jobs_metrics_and_analyses_and_a_manifest_and_no_weights(
        golden: Golden, tmp_path: Path) -> None:
    """write_shard copies exactly what its jobs' evidence reads (each run's and extended run's config and metrics,
    each analysis), nothing else (no weights), and a manifest recording the shard, the plan, the source, the
    provenance, its analyses and its failures, readable back as a ShardManifest."""
    failures, trained, _, analysed = _failures(golden)
    mine = deal(golden.jobs, 1, 3)
    root = _copy_run(claims_dir(golden.profile, tmp_path))
    durations = {"train_seconds": 2.0, "analysis_seconds": 5.0, "total_seconds": 8.0}
    target = write_shard(root, (1, 3), golden.profile, golden.source, _prov("m"), mine, failures, durations)
    assert target == root / "shards" / "shard-1-of-3" == shard_dir(root, (1, 3))
    expected = {Path("manifest.json")}
    for j in mine:
        for cfg in (j.run, j.overfit):
            expected |= {Path("train") / run_key(cfg) / "config.json", Path("train") / run_key(cfg) / "metrics.json"}
        expected.add(Path("analysis") / f"{j.setting}-{run_key(j.run)}.json")
    files = {p.relative_to(target) for p in target.rglob("*") if p.is_file()}
    assert files == expected
    for f in files - {Path("manifest.json")}:
        assert (target / f).read_bytes() == (root / f).read_bytes()
    m = from_json_dict(ShardManifest, read_json(target / MANIFEST_FILE))
    assert m == ShardManifest(1, 3, golden.profile.to_json(), golden.source, _prov("m"), tuple(j.key for j in mine),
                              failures.train, failures.analysis, durations, science_revision(), "")
    _no_temp_files(target)


def test_shards_merged_give_the_claims_json_of_the_unsharded_run(
        golden: Golden, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The point of sharding: 3 shards written on 3 machines (each with its own failures), merged from the three
    forms of directory a user may pass (a shard output, a claims run directory holding shards/, an --out directory
    holding claims run directories), give the claims and run summaries of one run on all the evidence with all the
    failures; compute times are summed over the shards (a shard that recorded none counts 0); the provenance is
    the first shard's; the exit status is the verdict's."""
    failures, *_ = _failures(golden)
    single = _copy_run(tmp_path / "single")
    assert finish(golden.profile, single, golden.jobs, failures, {}, time.perf_counter(), _prov("s"),
                  golden.source, False) == 1
    durations = [{"train_seconds": 1.0, "analysis_seconds": 10.0, "total_seconds": 100.0},
                 {"train_seconds": 2.0, "analysis_seconds": 20.0, "total_seconds": 200.0},
                 {}]  # a shard that recorded no times
    dirs = _shards(golden, tmp_path, 3, failures, durations)
    capsys.readouterr()
    passed = [dirs[0], dirs[1].parent.parent, tmp_path / "machine2"]  # shard dir, claims run dir, --out dir
    t0 = time.perf_counter()
    assert merge_shards(passed, tmp_path / "merged", write_html=False) == 1
    elapsed = time.perf_counter() - t0
    root = claims_dir(golden.profile, tmp_path / "merged")
    out = capsys.readouterr().out
    assert out.startswith(f"claims run directory: {root} ")
    assert out.endswith(f"claims: {root / CLAIMS_FILE}\n")
    merged, one = read_json(root / CLAIMS_FILE), read_json(single / CLAIMS_FILE)
    assert _claims_text(merged) == _claims_text(one) and _runs_text(merged) == _runs_text(one)
    for k in ("profile", "data_source", "tasks", "seeds", "settings", "verdict", "learned_fraction_of_chance"):
        assert merged[k] == one[k], k
    report = load_claims(root)
    assert report.provenance == _prov("0")
    d = report.durations
    assert set(d) == ALL_DURATIONS
    assert (d["train_seconds"], d["analysis_seconds"]) == (3.0, 30.0)
    assert 0.0 <= d["evaluation_seconds"] <= d["total_seconds"] <= elapsed
    assert d["training_compute_seconds"] == one["durations"]["training_compute_seconds"]
    assert Profile.from_json(read_json(root / "profile.json")) == golden.profile
    assert not list(root.rglob("*.safetensors"))
    _no_temp_files(root)


def test_merging_again_keeps_the_files_already_merged(golden: Golden, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs are keyed by their config hash, so a file already in the merged directory is the same run and is
    kept; the merge writes the report by default."""
    calls: list[Path] = []
    _stub_report(monkeypatch, calls)
    dirs = _shards(golden, tmp_path, 2)
    assert merge_shards(dirs, tmp_path / "merged") == 1
    root = claims_dir(golden.profile, tmp_path / "merged")
    assert calls == [root] and (root / "report.html").exists()
    rel = Path("train") / run_key(deal(golden.jobs, 0, 2)[0].run) / "metrics.json"
    kept = (root / rel).read_bytes()
    (dirs[0] / rel).write_bytes(kept + b"\n\n")  # a different copy of the same run in a shard
    assert merge_shards(dirs, tmp_path / "merged", write_html=False) == 1
    assert (root / rel).read_bytes() == kept


def _manifest(d: Path) -> dict[str, Any]:
    return read_json(d / MANIFEST_FILE)


def _rewrite(d: Path, **changes: Any) -> None:
    m = _manifest(d)
    m.update(changes)
    (d / MANIFEST_FILE).write_text(json.dumps(m), encoding="utf-8")


@pytest.mark.parametrize("change", ["profile", "data_source", "shards"])
def test_a_shard_of_another_plan_is_one_clear_error_and_nothing_is_written(
        golden: Golden, tmp_path: Path, change: str) -> None:
    """Shards of different plans (profile, data source or shard count) cannot be merged: one ReproError naming
    the odd shard and the one it differs from, before anything is written."""
    dirs = _shards(golden, tmp_path, 2)
    other = {"profile": {**golden.profile.to_json(), "seeds": [0, 1]}, "data_source": "local:/elsewhere",
             "shards": 3}[change]
    _rewrite(dirs[1], **{change: other})
    with pytest.raises(ReproError, match="different plan") as err:
        merge_shards(dirs, tmp_path / "merged", write_html=False)
    assert f"{dirs[1]} is a shard" in str(err.value) and f"from {dirs[0]})" in str(err.value)
    assert "--shard I/N" in str(err.value)
    assert not (tmp_path / "merged").exists()


def test_missing_shards_are_one_clear_error_naming_them(golden: Golden, tmp_path: Path) -> None:
    """Merging 1 of 3 shards names the two missing ones and the command that makes them; nothing is written."""
    dirs = _shards(golden, tmp_path, 3)
    with pytest.raises(ReproError, match=r"shard\(s\) 0/3, 2/3 missing: run `repro claims --shard I/3`"):
        merge_shards([dirs[1]], tmp_path / "merged", write_html=False)
    assert not (tmp_path / "merged").exists()


def test_a_shard_given_twice_is_refused_naming_it(golden: Golden, tmp_path: Path) -> None:
    """The same shard passed twice (the same directory again, or a copy) would count its seconds twice: refused
    with one line naming the shard and both places, and nothing is written."""
    dirs = _shards(golden, tmp_path, 2)
    copy = tmp_path / "copy"
    shutil.copytree(dirs[1], copy)
    for passed in ([dirs[0], dirs[1], dirs[1]], [dirs[0], dirs[1], copy]):
        with pytest.raises(ReproError) as err:
            merge_shards(passed, tmp_path / "merged", write_html=False)
        msg = str(err.value)
        assert msg == f"shard 1/2 given twice ({dirs[1]} and {passed[2]}): pass each shard output once"
        assert "\n" not in msg
    assert not (tmp_path / "merged").exists()


def test_shards_of_different_science_code_are_refused_naming_shards_and_revisions(
        golden: Golden, tmp_path: Path) -> None:
    """A shard computed by other training/landscape/curvature/metrics/claims code has other numbers: the merge
    names which shards are at which revision, in one line, and writes nothing."""
    dirs = _shards(golden, tmp_path, 3)
    assert _manifest(dirs[0])["science_revision"] == science_revision()
    _rewrite(dirs[2], science_revision="0123456789abcdef")
    with pytest.raises(ReproError) as err:
        merge_shards(dirs, tmp_path / "merged", write_html=False)
    msg = str(err.value)
    assert msg.startswith("shards computed by different science code (shard(s) 2/3 at 0123456789abcdef; "
                          f"shard(s) 0/3, 1/3 at {science_revision()}): rerun the odd shards")
    assert "repro/training" in msg and "claims" in msg and "\n" not in msg
    assert not (tmp_path / "merged").exists()


def test_an_analysis_in_two_shards_is_refused(golden: Golden, tmp_path: Path) -> None:
    """Shards of two different splits (same count) can overlap: an analysis in two shards is refused."""
    dirs = _shards(golden, tmp_path, 2)
    key = _manifest(dirs[0])["analyses"][0]
    _rewrite(dirs[1], analyses=[*_manifest(dirs[1])["analyses"], key])
    with pytest.raises(ReproError, match=rf"analysis {re.escape(key)} is in shards 0/2 and 1/2"):
        merge_shards(dirs, tmp_path / "merged", write_html=False)


def test_a_directory_without_shards_is_one_clear_error(golden: Golden, tmp_path: Path) -> None:
    dirs = _shards(golden, tmp_path, 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReproError, match=r"holds no shard output \(manifest.json\)"):
        merge_shards([dirs[0], dirs[1], tmp_path / "empty"], tmp_path / "merged", write_html=False)


def test_shards_that_do_not_cover_the_plan_are_an_error_and_keep_the_earlier_merge(
        golden: Golden, tmp_path: Path) -> None:
    """Shards whose analyses are not exactly the plan's (written by another version: one analysis lost, one key
    the plan does not have) stop the merge with one error, and the claims.json of an earlier merge is intact."""
    dirs = _shards(golden, tmp_path, 2)
    merge_shards(dirs, tmp_path / "merged", write_html=False)
    root = claims_dir(golden.profile, tmp_path / "merged")
    before = (root / CLAIMS_FILE).read_bytes()
    m = _manifest(dirs[1])
    _rewrite(dirs[1], analyses=[*m["analyses"][1:], "base/sst2/no-such-job"])
    with pytest.raises(ReproError, match=r"cover 23 of the plan's 24 analyses.*rerun the shards"):
        merge_shards(dirs, tmp_path / "merged", write_html=False)
    assert (root / CLAIMS_FILE).read_bytes() == before


def test_shards_found_in_one_directory_merge_in_shard_order(golden: Golden, tmp_path: Path) -> None:
    """Two shards written into one claims run directory are both found there, in shard order (so the provenance
    of the merged run is shard 0's whatever order the file system lists them in)."""
    root = _copy_run(claims_dir(golden.profile, tmp_path / "one"))
    for i in (1, 0):
        write_shard(root, (i, 2), golden.profile, golden.source, _prov(str(i)), deal(golden.jobs, i, 2),
                    Outcomes(), {})
    assert merge_shards([tmp_path / "one"], tmp_path / "merged", write_html=False) == 1
    assert load_claims(claims_dir(golden.profile, tmp_path / "merged")).provenance == _prov("0")


# -- run_claims --------------------------------------------------------------------------------------------------
class _FakeExecute:
    """Stands in for repro.pipeline.plan.execute: records its arguments and puts the golden evidence where training and
    analysis would have put it."""

    def __init__(self, g: Golden, failures: Outcomes = Outcomes(), jobs: bool = True) -> None:  # noqa: B008
        self.g, self.failures, self.jobs, self.calls = g, failures, jobs, []

    def __call__(self, profile: Profile, out: Path, **kwargs: Any) -> tuple:
        self.calls.append((profile, Path(out), kwargs))
        if not self.jobs:
            return (), Outcomes(), 0.0, 0.0
        shutil.rmtree(out)
        _copy_run(out)
        assert profile == self.g.profile
        return self.g.jobs, self.failures, 5.0, 6.0


def test_run_claims_runs_the_plan_and_writes_the_golden_claims_json(
        golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """One process: the plan runs in ``<out>/<profile>-<hash>`` with every option handed through (progress and
    the report on by default), claims.json is the golden one with this run's source, device provenance and
    times (the provenance describes the device asked for, not the machine's default), the report is written, and
    the process leaves the group it joined."""
    fake = _FakeExecute(golden)
    monkeypatch.setattr("repro.pipeline.runner.execute", fake)
    left: list[Workers] = []
    monkeypatch.setattr("repro.pipeline.runner.join_group", lambda: Workers())
    monkeypatch.setattr("repro.pipeline.runner.leave_group", left.append)
    calls: list[Path] = []
    _stub_report(monkeypatch, calls)
    # a machine whose default device is a GPU: the provenance must describe the device asked for
    monkeypatch.setattr("repro.provenance.default_device", lambda: torch.device("cuda"))
    data = tmp_path / "glue"
    t0 = time.perf_counter()
    code = run_claims(golden.profile, tmp_path / "out", data_dir=str(data), device="cpu")
    elapsed = time.perf_counter() - t0
    assert code == 1
    root = claims_dir(golden.profile, tmp_path / "out")
    assert re.fullmatch(r"tiny-[0-9a-f]{8}", root.name)
    assert len(fake.calls) == 1
    profile, out, kwargs = fake.calls[0]
    assert out == root
    assert kwargs == {"data_dir": str(data), "device": "cpu", "progress": True, "shard": None, "workers": Workers(),
                      "shard_plan": None}
    assert calls == [root] and left == [Workers()]
    raw = read_json(root / CLAIMS_FILE)
    assert _claims_text(raw) == _claims_text(golden.raw) and _runs_text(raw) == _runs_text(golden.raw)
    report = load_claims(root)
    assert report.data_source == describe_source(str(data))
    assert report.provenance.device == provenance.device_description("cpu")
    assert report.profile == golden.profile.to_json()
    d = report.durations
    assert (d["train_seconds"], d["analysis_seconds"]) == (5.0, 6.0)
    assert 0.0 <= d["total_seconds"] <= elapsed
    assert Profile.from_json(read_json(root / "profile.json")) == golden.profile
    out_text = capsys.readouterr().out
    assert out_text.startswith(f"claims run directory: {root} (profile tiny)\n")


def test_run_claims_as_a_shard_writes_only_the_mergeable_output(
        golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A shard evaluates nothing: it exits 0, writes no claims.json, and leaves a shard directory whose manifest
    records its shard, failures and times, and says how to merge; the merge of it and its partner is the golden
    claims.json."""
    failures, *_ = _failures(golden)
    fake = _FakeExecute(golden, failures)
    monkeypatch.setattr("repro.pipeline.runner.execute", fake)
    data = tmp_path / "glue"
    t0 = time.perf_counter()
    assert run_claims(golden.profile, tmp_path / "m1", data_dir=str(data), progress=False, write_html=False,
                      shard=(1, 2), workers=Workers()) == 0
    elapsed = time.perf_counter() - t0
    root = claims_dir(golden.profile, tmp_path / "m1")
    assert fake.calls[0][2]["shard"] == (1, 2)  # the plan runs only this shard's share
    assert not (root / CLAIMS_FILE).exists()
    target = shard_dir(root, (1, 2))
    m = from_json_dict(ShardManifest, read_json(target / MANIFEST_FILE))
    assert (m.shard, m.shards, m.data_source) == (1, 2, describe_source(str(data)))
    assert m.profile == golden.profile.to_json() and m.analyses == tuple(j.key for j in golden.jobs)
    assert (m.train_failures, m.analysis_failures) == (failures.train, failures.analysis)
    assert m.provenance.device == provenance.device_description(None)
    assert set(m.durations) == {"train_seconds", "analysis_seconds", "total_seconds"}
    assert (m.durations["train_seconds"], m.durations["analysis_seconds"]) == (5.0, 6.0)
    assert 0.0 <= m.durations["total_seconds"] <= elapsed
    out = capsys.readouterr().out
    assert out.startswith(f"claims run directory: {root} (profile tiny, shard 1/2)\n")
    assert "shard 1/2 done: 24 analyses, 3 failure(s)" in out and str(target) in out
    assert "merge all 2 shard outputs with: repro claims --merge" in out


def test_run_claims_on_a_rank_other_than_0_writes_and_prints_nothing(
        golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Under torchrun only rank 0 writes: another rank runs its share and exits 0, and a group it was handed is
    not left (its caller owns it)."""
    fake = _FakeExecute(golden, jobs=False)
    monkeypatch.setattr("repro.pipeline.runner.execute", fake)
    left: list[Workers] = []
    monkeypatch.setattr("repro.pipeline.runner.leave_group", left.append)
    worker = Workers(rank=1, world=2, local_rank=1)
    assert run_claims(golden.profile, tmp_path, progress=False, write_html=False, workers=worker) == 0
    root = claims_dir(golden.profile, tmp_path)
    assert fake.calls[0][2]["workers"] == worker
    assert sorted(root.iterdir()) == [] and capsys.readouterr().out == "" and left == []


def test_run_claims_on_rank_0_of_a_group_says_so_and_evaluates(
        golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("repro.pipeline.runner.execute", _FakeExecute(golden))
    worker = Workers(rank=0, world=2)
    assert run_claims(golden.profile, tmp_path, progress=False, write_html=False, workers=worker) == 1
    root = claims_dir(golden.profile, tmp_path)
    assert (root / CLAIMS_FILE).exists()
    assert capsys.readouterr().out.startswith(f"claims run directory: {root} (profile tiny, 2 workers)\n")


def test_run_claims_restricts_the_profile_to_the_tasks_and_seeds_asked_for(
        golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--tasks and --seeds N change the profile the plan runs (the first N verdict seeds) and so its directory;
    an unknown task is one clear error before anything is written; a second call resumes the same directory; the
    group is left even on error."""
    fake = _FakeExecute(golden, jobs=False)
    monkeypatch.setattr("repro.pipeline.runner.execute", fake)
    left: list[Workers] = []
    monkeypatch.setattr("repro.pipeline.runner.leave_group", left.append)
    run_claims(golden.profile, tmp_path, tasks=["mrpc"], seeds=2, progress=False, write_html=False)
    profile = fake.calls[0][0]
    assert profile == dataclasses.replace(golden.profile, tasks=("mrpc",), seeds=(0, 1))
    assert fake.calls[0][1] == claims_dir(profile, tmp_path) != claims_dir(golden.profile, tmp_path)
    assert Profile.from_json(read_json(claims_dir(profile, tmp_path) / "profile.json")) == profile
    assert len(left) == 1
    with pytest.raises(ReproError):
        run_claims(golden.profile, tmp_path / "bad", tasks=["no-such-task"], progress=False, write_html=False)
    assert not (tmp_path / "bad").exists()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("repro.pipeline.runner.execute", boom)
    with pytest.raises(RuntimeError):  # the same directory again: resumed, not refused
        run_claims(golden.profile, tmp_path, tasks=["mrpc"], seeds=2, progress=False, write_html=False)
    assert len(left) == 2


def test_claims_dir_is_named_by_the_profile_and_a_short_hash_of_it(golden: Golden, tmp_path: Path) -> None:
    """The same profile resumes the same directory; a changed profile gets another one."""
    d = claims_dir(golden.profile, tmp_path)
    canon = json.dumps(to_json_dict(golden.profile), sort_keys=True, separators=(",", ":"))
    assert d == tmp_path / f"tiny-{hashlib.sha256(canon.encode()).hexdigest()[:8]}"
    assert claims_dir(golden.profile, str(tmp_path)) == d
    assert claims_dir(dataclasses.replace(golden.profile, seeds=(0,)), tmp_path) != d


# -- the terminal table and summary ------------------------------------------------------------------------------
def test_verdict_table_has_one_aligned_row_per_claim_with_each_tasks_verdict(golden: Golden) -> None:
    """Each claim's row carries its per-task verdicts under the task columns and its overall verdict under
    'overall'; a task without a verdict shows '-'."""
    claims = list(golden.stored.claims)
    claims[0] = dataclasses.replace(claims[0], per_task={"sst2": REPRODUCED})
    report = dataclasses.replace(golden.stored, claims=tuple(claims))
    lines = format_table(report).split("\n")
    head = lines[0]
    assert head.split() == ["claim", "section", "sst2", "mrpc", "overall"]
    assert lines[1] == "-" * len(head)
    assert len(lines) == 2 + len(claims)
    ends = [head.index(w) + len(w) for w in ("sst2", "mrpc", "overall")]
    for line, c in zip(lines[2:], claims, strict=True):
        cells = line.split()
        assert cells == [c.id, c.section, c.per_task.get("sst2", "-"), c.per_task.get("mrpc", "-"), c.verdict]
        assert [line.index(" " + x, e - len(x) - 1) + 1 + len(x) for x, e in zip(cells[2:], ends)] == ends
        assert line.index(c.section) == head.index("section")
    assert lines[2].split()[3] == "-"


def test_summary_lists_each_claims_verdict_primary_comparisons_exclusions_once_and_failed_runs(
        golden: Golden) -> None:
    """After the table and a blank line: per claim its verdict, then per setting its primary comparisons (not the
    secondary ones) and the pairs it left out with the reason -- a list already printed for an earlier claim is
    referred to, not repeated, and a setting without exclusions does not end the claim's listing -- then, after a
    blank line, every run whose training or analysis failed."""
    base = golden.stored.claims[0]
    comp = base.settings[0].comparisons[0]
    st = dataclasses.replace(comp.overall, verdict=NOT_REPRODUCED, n=3, mean=-0.25, ci_low=-0.5, ci_high=0.125)

    def c(name: str, primary: bool = True, excluded: tuple[str, ...] = ()) -> Any:
        return dataclasses.replace(comp, name=name, primary=primary, excluded=excluded, overall=st, min_effect=0.1)

    gone = ("sst2/seed0: scratch did not learn", "mrpc/seed1: analysis failed")

    def setting(name: str, *comps: Any) -> Any:
        return dataclasses.replace(base.settings[0], setting=name, comparisons=comps)

    a = dataclasses.replace(base, id="claim_a", verdict=REPRODUCED, settings=(
        setting("base", c("width"), c("side", primary=False)), setting("long", c("depth", excluded=gone))))
    b = dataclasses.replace(base, id="claim_b", verdict=NOT_REPRODUCED, settings=(
        setting("base", c("gap", excluded=gone)), setting("long", c("slope"))))
    failed = dataclasses.replace(golden.stored.runs[0], error="training failed: boom")
    report = dataclasses.replace(golden.stored, claims=(a, b), runs=(golden.stored.runs[1], failed))
    stat = "not_reproduced: n=3, mean -0.25, 95% CI [-0.5, +0.125], needs ≥ +0.1"
    assert format_stat(st, 0.1) == stat
    assert format_summary(report).split("\n") == [
        *format_table(report).split("\n"), "",
        "claim_a: reproduced",
        f"  [base] width: {stat}",
        f"  [long] depth: {stat}",
        "  [long] 2 pair(s) excluded:",
        "    - sst2/seed0: scratch did not learn",
        "    - mrpc/seed1: analysis failed",
        "claim_b: not_reproduced",
        f"  [base] gap: {stat}",
        "  [base] 2 pair(s) excluded, as for claim_a [long]",
        f"  [long] slope: {stat}",
        "",
        "1 run(s) with failures (the same command retries them and reuses the rest):",
        "  base sst2 pretrained seed 0: training failed: boom",
    ]
    golden_text = format_summary(golden.stored)
    assert "nan" not in golden_text.lower() and "run(s) with failures" not in golden_text
    for claim in golden.stored.claims:
        assert f"{claim.id}: {claim.verdict}" in golden_text.split("\n")


def test_format_stat_signs_every_number_and_says_why_an_interval_is_missing() -> None:
    """Negative effects print with '-', positive with '+', to 3 significant digits; an interval needs 2 finite
    ends from at least 2 pairs, else it says 'n/a' and why; an infinite number prints 'n/a'."""
    nan, inf = float("nan"), float("inf")

    def st(n: int, mean: float, lo: float, hi: float) -> Stat:
        return Stat(n=n, mean=mean, sd=0.1, ci_low=lo, ci_high=hi, positive=1, verdict=NOT_REPRODUCED)

    assert format_stat(st(2, -0.12345, -0.5, 0.25), 0.05) == (
        "not_reproduced: n=2, mean -0.123, 95% CI [-0.5, +0.25], needs ≥ +0.05")
    assert format_stat(st(1, 0.5, -0.5, 0.25), 0.05) == (
        "not_reproduced: n=1, mean +0.5, 95% CI n/a (fewer than 2 valid pairs), needs ≥ +0.05")
    assert format_stat(st(3, 0.5, nan, 0.25), 0.05).endswith("CI n/a (fewer than 2 valid pairs), needs ≥ +0.05")
    assert format_stat(st(3, 0.5, -0.5, inf), 0.05).endswith("CI n/a (fewer than 2 valid pairs), needs ≥ +0.05")
    assert format_stat(st(3, inf, -0.5, 0.25), -inf) == (
        "not_reproduced: n=3, mean n/a, 95% CI [-0.5, +0.25], needs ≥ n/a")
    assert format_stat(st(0, nan, nan, nan), 0.05) == "not_reproduced: no valid pair"
    blocked = Stat(n=3, mean=0.1, sd=0.01, ci_low=0.08, ci_high=0.13, positive=3, verdict="inconclusive",
                   note="3 pair(s) bounded only from below: not reproduced unreachable")
    assert format_stat(blocked, 0.223) == ("inconclusive: n=3, mean +0.1, 95% CI [+0.08, +0.13], needs ≥ +0.223 "
                                           "(3 pair(s) bounded only from below: not reproduced unreachable)")


# -- data notes --------------------------------------------------------------------------------------------------
def test_a_run_on_the_mnli_excerpt_says_so_when_it_starts_under_its_verdicts_in_claims_json_and_after_a_merge(
        golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """repro.data.data_notes (the shared MNLI excerpt's training pairs come from the mismatched dev set) is printed
    right after the run directory, again under the verdict table, and recorded in claims.json (``data_notes``, which
    the report shows); a shard records it in its manifest, so a merge where the shard's data directory is gone keeps
    it. The golden run has no MNLI, so the notes are read as if its tasks were MNLI, from a real PROVENANCE.md."""
    from repro.data import MNLI_MISMATCHED_TRAIN_NOTE as NOTE
    from repro.data import sources

    data = tmp_path / "glue"
    monkeypatch.setattr("repro.pipeline.runner.data_notes", lambda task, d: sources.data_notes("mnli", d))
    # any source string reads `data` (the golden jobs are keyed by the golden run's own source)
    as_mnli = lambda tasks, source: sources.source_notes(("mnli",), describe_source(str(data)))  # noqa: E731
    monkeypatch.setattr("repro.pipeline.runner.source_notes", as_mnli)
    monkeypatch.setattr("repro.pipeline.shards.source_notes", as_mnli)
    monkeypatch.setattr("repro.pipeline.runner.execute", _FakeExecute(golden))
    data.mkdir()
    (data / "PROVENANCE.md").write_text("Here `mnli/train`\nis 1,000 pairs from the mismatched dev set.\n")
    assert run_claims(golden.profile, tmp_path / "out", data_dir=str(data), progress=False, write_html=False) == 1
    root = claims_dir(golden.profile, tmp_path / "out")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [f"claims run directory: {root} (profile tiny)", f"data note: {NOTE}"]
    report = load_claims(root)
    assert report.data_notes == (NOTE,)
    assert format_summary(report).split("\n")[len(report.claims) + 2] == f"data note: {NOTE}"  # under the table
    assert lines.count(f"data note: {NOTE}") == 2
    # shards on a machine whose data directory the merging machine does not have
    dirs = [write_shard(_copy_run(claims_dir(golden.profile, tmp_path / f"machine{i}")), (i, 2), golden.profile,
                        golden.source, _prov(str(i)), deal(golden.jobs, i, 2), Outcomes(),
                        {"train_seconds": 1.0, "analysis_seconds": 1.0, "total_seconds": 1.0}) for i in range(2)]
    assert all(_manifest(d)["data_notes"] == [NOTE] for d in dirs)
    shutil.rmtree(data)
    capsys.readouterr()
    assert merge_shards(dirs, tmp_path / "merged", write_html=False) == 1
    assert load_claims(claims_dir(golden.profile, tmp_path / "merged")).data_notes == (NOTE,)
    assert f"data note: {NOTE}" in capsys.readouterr().out.splitlines()[1]


def test_a_hub_or_note_free_source_records_no_data_notes(golden: Golden, tmp_path: Path) -> None:
    root = _copy_run(tmp_path / "run")
    assert finish(golden.profile, root, golden.jobs, Outcomes(), {}, time.perf_counter(), _prov("a"),
                  "hub:nyu-mll/glue", False) == 1
    assert load_claims(root).data_notes == ()
    assert read_json(root / CLAIMS_FILE)["data_notes"] == []


def test_run_claims_pins_the_science_revision_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An hours-long run records the revision of the science files as it started: editing the tree while it trains
    must not relabel its numbers with the edited code's revision (the revision is computed once, before ``execute``)."""
    import repro.pipeline.runner as runner
    from repro.config import get_profile

    science_revision.cache_clear()
    seen: list[int] = []

    def execute(*args: Any, **kwargs: Any) -> Any:
        seen.append(science_revision.cache_info().currsize)
        raise RuntimeError("stop here")

    monkeypatch.setattr(runner, "execute", execute)
    with pytest.raises(RuntimeError, match="stop here"):
        runner.run_claims(get_profile("smoke"), tmp_path / "out", workers=Workers(), progress=False)
    assert seen == [1]
