"""The standard reproduction in shards, on the CPU: the cost-balanced split (:mod:`repro.pipeline.shardplan`),
the science revision that guards a merge (:mod:`repro.pipeline.revision`), the CLI's refusals, and -- slow -- a
tiny profile run as 2 shards through ``scripts/device_run.sh shard next`` in separate folders, copied as the
script says, and merged to the numbers of the unsharded run."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from repro.cli import main
from repro.config import Profile, apply_overrides, get_profile
from repro.errors import ReproError
from repro.pipeline.jobs import plan_jobs, run_key
from repro.pipeline.revision import (
    SCIENCE_SOURCES,
    compute_science_revision,
    science_files,
)
from repro.pipeline.shardplan import (
    DEFAULT_BUDGET_BY_DEVICE,
    PLAN_FILE,
    ShardPlan,
    computed_shards,
    job_label,
    load_plan,
    next_shards,
    plan_shards,
    save_plan,
    seconds_model,
)
from repro.pipeline.timings import (
    RECORDED,
    RECORDED_BY_DEVICE,
    RECORDED_CPU,
    RECORDED_CUDA,
    GpuTimings,
    Timings,
    measure,
)
from repro.storage import from_json_dict, to_json_dict
from tests.plan_fixtures import tiny_profile, tiny_profile_overrides

REPO = Path(__file__).resolve().parents[1]


def _cost(profile: Profile, labels: tuple[str, ...]) -> float:
    """Expected seconds of a shard recomputed from scratch: process + its analyses + every run they read, once."""
    train_s, an_s = seconds_model(profile, RECORDED)
    _, jobs = plan_jobs(profile, "plan")
    by = {job_label(j): j for j in jobs}
    runs = {run_key(c) for a in labels for c in by[a].needs()}
    return RECORDED.process_seconds + sum(an_s[a] for a in labels) + sum(train_s[k] for k in runs)


# -- the split ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [420.0, 600.0, 1500.0])
def test_the_standard_split_covers_the_plan_once_within_the_budget_with_the_fewest_shards(budget: float) -> None:
    """Every analysis in exactly one shard; each shard's expected seconds (recomputed here independently) ≤ the
    budget and equal to what the plan states; one shard fewer cannot fit (a lower bound from the total)."""
    profile = get_profile("standard")
    plan = plan_shards(profile, budget)
    _, jobs = plan_jobs(profile, "plan")
    labels = [a for s in plan.shards for a in s.analyses]
    assert sorted(labels) == sorted(job_label(j) for j in jobs) and len(labels) == len(set(labels))
    assert [s.index for s in plan.shards] == list(range(plan.count))
    for s in plan.shards:
        assert _cost(profile, s.analyses) == pytest.approx(s.expected_seconds, abs=0.06)
        assert s.expected_seconds <= budget
    # fewer shards: with n - 1 shards the largest would exceed the budget
    tighter = plan_shards(profile, budget, count=plan.count - 1)
    assert max(s.expected_seconds for s in tighter.shards) > budget


def test_the_split_is_balanced_and_keeps_partner_runs_together() -> None:
    """Balanced: asking for more shards than needed lowers the largest one; each (init, seed, setting) block of
    the standard plan's 4 tasks trains its 4 runs once (the partner of each task is the next task's run)."""
    profile = get_profile("standard")
    plan = plan_shards(profile)
    more = plan_shards(profile, count=plan.count + 5)
    assert more.count == plan.count + 5
    assert max(s.expected_seconds for s in more.shards) < max(s.expected_seconds for s in plan.shards)
    # a shard holding parts of blocks reads each of its tasks' runs and extended runs, plus at most one partner per
    # block part (the next task's run, which the part does not analyse itself)
    for s in plan.shards:
        blocks = {(a.split("/")[0], *a.split("/")[2:]) for a in s.analyses}
        assert s.train_runs <= 2 * len(s.analyses) + len(blocks), s
    # with room for whole blocks (the default budget's fit depends on the recorded timings), the 8 analyses of one
    # (init, seed) -- 4 tasks x 2 settings -- share their partner and extended runs: 4 base runs, 4 long runs and
    # the 4 extended runs both settings read, nothing trained twice
    roomy = plan_shards(profile, 900.0)
    whole = [s for s in roomy.shards if len(s.analyses) == 8 and len({a.split("/", 2)[2] for a in s.analyses}) == 1]
    assert whole, "the 8 analyses of one (init, seed) fit 900 s"
    for s in whole:
        assert len({a.split("/")[0] for a in s.analyses}) == 2 and s.train_runs == 12


def test_a_budget_below_one_analysis_is_one_clear_error() -> None:
    with pytest.raises(ReproError, match=r"expected to take \d+ s on .*over the 100 s budget: raise --budget"):
        plan_shards(get_profile("standard"), 100.0)


def test_the_plan_round_trips_through_its_file_and_refuses_another_profile(tmp_path: Path) -> None:
    plan = plan_shards(get_profile("standard"))
    save_plan(tmp_path / PLAN_FILE, plan)
    back = load_plan(tmp_path / PLAN_FILE)
    assert back == plan and from_json_dict(ShardPlan, to_json_dict(plan)) == plan and back.digest == plan.digest
    plan.check_profile(get_profile("standard"))
    with pytest.raises(ReproError, match=r"splits profile standard-.* resolves to standard-"):
        plan.check_profile(dataclasses.replace(get_profile("standard"), seeds=(1, 2, 3)))


def test_the_next_shards_are_the_missing_ones_that_fit(tmp_path: Path) -> None:
    """First fit over the missing shards in index order; shards of another plan digest do not count as done."""
    plan = plan_shards(get_profile("standard"))
    s = [x.expected_seconds for x in plan.shards]
    assert next_shards(plan, [], min(s) - 1) == []
    assert next_shards(plan, [], s[0]) == [0]
    later = next(i for i, x in enumerate(s) if x <= s[0] - 0.1)
    assert later > 0 and next_shards(plan, [], s[0] - 0.1) == [later]  # 0 does not fit: a later, shorter one does
    assert next_shards(plan, [0], s[1] + s[2]) == [1, 2]
    assert next_shards(plan, range(plan.count), 10_000) == []
    for i, digest in ((3, plan.digest), (4, "other")):
        d = tmp_path / f"shard-{i}-of-{plan.count}"
        d.mkdir()
        (d / "manifest.json").write_text(json.dumps({"shard": i, "shards": plan.count, "plan": digest}))
    assert set(computed_shards(tmp_path, plan)) == {3}


def test_the_committed_standard_plan_is_the_standard_profile_split() -> None:
    """reports/standard/shards/plan.json is a split of the current standard profile (else a shard run would
    refuse it) within its budget."""
    plan = load_plan(REPO / "reports" / "standard" / "shards" / PLAN_FILE)
    plan.check_profile(get_profile("standard"))
    _, jobs = plan_jobs(get_profile("standard"), "plan")
    assert sorted(a for s in plan.shards for a in s.analyses) == sorted(job_label(j) for j in jobs)
    assert all(s.expected_seconds <= plan.budget_seconds for s in plan.shards)


# -- CPU timings (issue 42) ---------------------------------------------------------------------------------------
def test_cpu_plans_fit_the_100_minute_budget_with_the_cpu_figures() -> None:
    """Each CPU shard's expected seconds, recomputed from the CPU figures, are what the plan states and ≤ 100 min;
    one shard fewer cannot fit; the recorded figures are one place, per device kind, GPU ones unchanged."""
    assert RECORDED_BY_DEVICE == {"cuda": RECORDED_CUDA, "cpu": RECORDED_CPU} and RECORDED is RECORDED_CUDA
    assert GpuTimings is Timings and RECORDED_CPU.kind == "cpu" and RECORDED_CUDA.kind == "cuda"
    profile = get_profile("cpu-2026-11")  # the profile the CPU figures were measured on
    plan = plan_shards(profile, DEFAULT_BUDGET_BY_DEVICE["cpu"], RECORDED_CPU)
    assert DEFAULT_BUDGET_BY_DEVICE == {"cuda": 420.0, "cpu": 6000.0} and plan.timings == RECORDED_CPU
    train_s, an_s = seconds_model(profile, RECORDED_CPU)
    _, jobs = plan_jobs(profile, "plan")
    by = {job_label(j): j for j in jobs}
    for s in plan.shards:
        runs = {run_key(c) for a in s.analyses for c in by[a].needs()}
        cost = RECORDED_CPU.process_seconds + sum(an_s[a] for a in s.analyses) + sum(train_s[k] for k in runs)
        assert cost == pytest.approx(s.expected_seconds, abs=0.06) and s.expected_seconds <= 6000.0
    if plan.count > 1:
        assert max(x.expected_seconds for x in plan_shards(profile, 6000.0, RECORDED_CPU,
                                                             count=plan.count - 1).shards) > 6000.0
    # the cpu profile's own model and batch are the CPU reference: a training run costs its steps at 3.23 steps/s
    key, steps = next((j.key, j.cost) for j in plan_jobs(profile, "plan")[0])
    assert train_s[key] == pytest.approx(steps / RECORDED_CPU.train_steps_per_second)


def test_the_cpu_figures_give_more_shards_than_the_gpu_ones_for_the_same_budget() -> None:
    for name, budget in (("cpu-2026-11", 6000.0), ("cpu-2026-11", 3000.0)):
        gpu = plan_shards(get_profile(name), budget, RECORDED_CUDA)
        cpu = plan_shards(get_profile(name), budget, RECORDED_CPU)
        assert cpu.count > gpu.count and cpu.expected_seconds > gpu.expected_seconds
    # on the CPU a larger batch or a deeper model costs more per step (examples x layers); on a GPU it does not
    std = dataclasses.replace(get_profile("cpu-2026-11"), model="minilm-l6")
    assert seconds_model(std, RECORDED_CPU)[1] != seconds_model(get_profile("cpu-2026-11"), RECORDED_CPU)[1]
    a, b = (sum(seconds_model(p, RECORDED_CPU)[0].values()) for p in (std, get_profile("cpu-2026-11")))
    assert a == pytest.approx(2 * b)  # 6 layers against 3
    a, b = (sum(seconds_model(p, RECORDED_CUDA)[0].values()) for p in (std, get_profile("cpu-2026-11")))
    assert a == pytest.approx(b)


def test_a_plan_file_written_before_cpu_timings_loads_as_a_gpu_plan(tmp_path: Path) -> None:
    """Old plan files' timings have no kind or reference profile: they load as the GPU timings they were."""
    committed = load_plan(REPO / "reports" / "standard" / "shards" / PLAN_FILE)
    assert committed.timings.kind == "cuda" and committed.timings.reference_profile == "standard"
    assert committed.science_revision  # recorded since issue 43
    old = to_json_dict(plan_shards(get_profile("standard"), count=3))
    for key in ("kind", "reference_profile", "analysis_current", "train_steps_per_second_by_task"):
        del old["timings"][key]
    del old["science_revision"]
    (tmp_path / PLAN_FILE).write_text(json.dumps(old))
    back = load_plan(tmp_path / PLAN_FILE)
    assert back.timings == RECORDED_CUDA and back.science_revision == ""
    assert back.shards == plan_shards(get_profile("standard"), count=3).shards
    # the GPU split of the standard profile is still the committed one (the CPU figures changed nothing there)
    assert plan_shards(get_profile("standard"), committed.budget_seconds).digest == committed.digest


def _fake_run(folder: Path, profile: Profile, device: str, runs: list[tuple[int, float, int]],
              durations: dict[str, float], analyses: int, version: int) -> None:
    """A finished shard output: a manifest, training records (steps, wall seconds, batch size) and analyses."""
    folder.mkdir(parents=True)
    for i, (steps, wall, batch) in enumerate(runs):
        run = folder / "train" / f"{folder.name}-run{i}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"status": "complete", "total_steps": steps,
                                                      "wall_seconds": wall}))
        (run / "config.json").write_text(json.dumps({"config": {"model": profile.model,
                                                                "hyper": {"batch_size": batch}}}))
    (folder / "analysis").mkdir()
    for i in range(analyses):
        (folder / "analysis" / f"a{i}.json").write_text(json.dumps({"version": version}))
    (folder / "manifest.json").write_text(json.dumps({
        "shard": 0, "shards": 1, "profile": profile.to_json(), "analyses": [f"a{i}" for i in range(analyses)],
        "analysis_failures": {}, "durations": durations,
        "provenance": {"device": device, "created": "2026-12-07T00:00:00+00:00"}}))


def test_the_measuring_helper_returns_the_rates_put_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two shards of the cpu profile as its analysis was measured (version 3, no instruments): the figures are the
    plain ratios of the numbers put in; a batch twice the reference's counts its steps twice on the CPU only."""
    from repro.pipeline.timings import _main, measured_profile

    prof = measured_profile(get_profile("cpu-2026-11"))
    b = prof.pretrained.batch_size
    _fake_run(tmp_path / "cpu" / "shard-0-of-2", prof, "cpu:x86_64 x2 threads", [(160, 50.0, b), (256, 80.0, b)],
              {"train_seconds": 140.0, "analysis_seconds": 400.0, "total_seconds": 560.0}, 3, 3)
    _fake_run(tmp_path / "cpu" / "shard-1-of-2", prof, "cpu:x86_64 x2 threads", [(160, 30.0, 2 * b)],
              {"train_seconds": 35.0, "analysis_seconds": 200.0, "total_seconds": 245.0}, 2, 3)
    m = measure(tmp_path / "cpu")
    assert (m.runs, m.steps, m.analyses, m.processes) == (3, 576, 5, 2)
    t = m.timings
    assert t.kind == "cpu" and t.reference_profile == "cpu-2026-11" and t.device == "cpu:x86_64 x2 threads"
    assert t.train_steps_per_second == pytest.approx((160 + 256 + 2 * 160) / 160.0, abs=1e-3)
    assert t.analysis_seconds == pytest.approx(600.0 / 5, abs=0.05)
    assert t.process_seconds == pytest.approx(((560 - 540) + (245 - 235)) / 2, abs=0.05)
    # a GPU's shards: steps are steps whatever the batch
    _fake_run(tmp_path / "gpu" / "shard-0-of-1", prof, "cuda:NVIDIA H200", [(100, 4.0, b), (100, 4.0, 2 * b)],
              {"train_seconds": 10.0, "analysis_seconds": 90.0, "total_seconds": 130.0}, 2, 3)
    g = measure(tmp_path / "gpu").timings
    assert g.kind == "cuda" and g.train_steps_per_second == pytest.approx(25.0)
    assert g.process_seconds == pytest.approx(30.0)
    assert _main([str(tmp_path / "cpu")]) == 0
    out = capsys.readouterr().out
    assert "train_steps_per_second=4.6," in out and "paste: Timings(" in out
    assert _main([str(tmp_path / "nothing")]) == 2


# -- CLI ---------------------------------------------------------------------------------------------------------
def test_plan_shards_prints_and_saves_the_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "plan.json"
    assert main(["claims", "--profile", "standard", "--plan-shards", "--save-plan", str(target)]) == 0
    out = capsys.readouterr().out
    n = load_plan(target).count
    assert out.startswith("shard plan of profile standard-") and f"{n} shards, each expected at most 420 s" in out
    assert len(re.findall(r"^  shard \d+/\d+: ", out, flags=re.MULTILINE)) == n and "issue 11" in out
    assert main(["claims", "--profile", "standard", "--plan-shards", "--budget", "20"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    # --device cpu: the CPU figures and the 100-minute budget, both stated; --device cuda plans on any machine
    assert main(["claims", "--profile", "cpu", "--plan-shards", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "each expected at most 6000 s (100.0 min) on cpu" in out and "device cpu, budget 6000 s" in out
    assert main(["claims", "--profile", "cpu", "--plan-shards", "--device", "cuda"]) == 0
    assert "device cuda, budget 420 s" in capsys.readouterr().out


def test_a_shard_plan_of_another_profile_or_count_is_refused_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_plan(tmp_path / "plan.json", plan_shards(get_profile("standard")))
    n = load_plan(tmp_path / "plan.json").count
    cases = [["--profile", "standard", "--seeds", "2", "--shard", f"0/{n}"], ["--profile", "standard", "--shard", "0/2"],
             ["--profile", "standard"]]
    for extra in cases:
        assert main(["claims", *extra, "--shard-plan", str(tmp_path / "plan.json"), "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not list(tmp_path.glob("standard-*/train"))


# -- the science revision ----------------------------------------------------------------------------------------
def test_the_science_revision_changes_with_the_science_only(tmp_path: Path) -> None:
    """A content hash of the number-computing packages: a change to training or to claims/analysis.py changes
    it; a change to the report, the pipeline or the CLI does not; no .git is needed."""
    for folder in (*SCIENCE_SOURCES, "repro/report", "repro/pipeline"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "repro" / "cli.py", tmp_path / "repro" / "cli.py")
    base = compute_science_revision(tmp_path)
    assert base == compute_science_revision(REPO) and len(base) == 16
    assert {p.relative_to(tmp_path).parts[0] for p in science_files(tmp_path)} == {"repro", "claims"}
    for rel in ("repro/report/__init__.py", "repro/pipeline/runner.py", "repro/cli.py"):
        with open(tmp_path / rel, "a") as f:
            f.write("\n# a comment\n")
        assert compute_science_revision(tmp_path) == base, rel
    for rel in ("repro/training/loop.py", "claims/analysis.py", "repro/curvature/eigen.py"):
        before = compute_science_revision(tmp_path)
        with open(tmp_path / rel, "a") as f:
            f.write("\n# a comment\n")
        assert compute_science_revision(tmp_path) != before, rel


def test_merging_a_plan_folder_without_shards_names_every_missing_shard_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "shards"
    save_plan(folder / PLAN_FILE, plan_shards(get_profile("standard"), count=3))
    assert main(["claims", "--merge", str(folder), "--out", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: shard(s) 0/3, 1/3, 2/3 missing") and err.count("\n") == 1
    assert not (tmp_path / "merged").exists()


# -- the whole path through the script (slow) --------------------------------------------------------------------
def test_the_tiny_overrides_give_the_tiny_profile() -> None:
    pairs = dict(a.removeprefix("--set ").split("=", 1) for a in tiny_profile_overrides())
    assert apply_overrides(get_profile("smoke"), pairs) == tiny_profile()


def _device_run(args: list[str], work: Path, out: Path, plan: Path, have: Path, glue: Path,
                limit: int) -> subprocess.CompletedProcess[str]:
    claims_args = " ".join(["--profile smoke --device cpu", *tiny_profile_overrides()])
    env = {**os.environ, "REPRO_DEVICE_LOCAL": "1", "PYTHON": sys.executable, "OUT": str(out), "WORK": str(work),
           "SHARD_PLAN": str(plan), "SHARDS_HAVE": str(have), "SHARD_LIMIT": str(limit), "PACK_SECONDS": "5",
           "CLAIMS_ARGS": claims_args, "REPRO_DATA_DIR": str(glue), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(["bash", str(REPO / "scripts" / "device_run.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=400, check=False)


@pytest.mark.slow
def test_two_shards_through_the_script_merge_to_the_unsharded_numbers(
        tmp_path: Path, tiny_glue: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bar of issue 18: plan 2 shards of a tiny profile, run `device_run.sh shard next` twice in separate
    folders (each call picks the next missing shard that fits its time), unpack each as the script prints into
    one shards folder, merge, and get the claims and runs of one unsharded run, value for value."""
    import torch

    from repro.pipeline.runner import claims_dir, run_claims
    from tests.test_plan_workers import _numbers

    have = tmp_path / "reports" / "shards"
    plan_path = have / PLAN_FILE
    save_plan(plan_path, plan_shards(tiny_profile(), count=2))
    plan = load_plan(plan_path)
    # room for one shard per call: the first call runs shard 0, the second finds it and runs shard 1
    limit = int(plan.shards[0].expected_seconds + plan.shards[1].expected_seconds / 2) + 5 + 2
    for call, expected in enumerate((0, 1)):
        out = tmp_path / f"out{call}"
        res = _device_run(["shard", "next"], tmp_path / f"work{call}", out, plan_path, have, tiny_glue, limit)
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"shard {expected}/2: exit 0" in res.stdout, res.stdout
        copy = next(line for line in res.stdout.splitlines() if line.startswith("copy the shards"))
        assert copy.endswith(f"tar -xzf FILES_AT/shards.tar.gz -C {have}")
        assert "train_steps_per_second=" in (out / "timings.txt").read_text()
        with tarfile.open(out / "shards.tar.gz") as tar:
            names = tar.getnames()
            assert all(n.endswith(".json") or not Path(n).suffix for n in names)
            tar.extractall(have, filter="data")
        assert set(computed_shards(have, plan)) == set(range(expected + 1))
    res = _device_run(["shard", "next"], tmp_path / "work2", tmp_path / "out2", plan_path, have, tiny_glue, limit)
    assert res.returncode == 0 and "nothing to run: missing shards []" in res.stdout, res.stdout

    torch.set_num_threads(1)
    single = tmp_path / "single"
    run_claims(tiny_profile(), single, data_dir=str(tiny_glue), progress=False, write_html=False)
    assert main(["claims", "--merge", str(have), "--out", str(tmp_path / "merged")]) in (0, 1)
    assert _numbers(claims_dir(tiny_profile(), tmp_path / "merged")) == _numbers(claims_dir(tiny_profile(), single))
    # the same shard again (a second copy beside the first): refused, exit 2, one line
    shutil.copytree(have / "shard-1-of-2", tmp_path / "again" / "shard-1-of-2")
    capsys.readouterr()
    assert main(["claims", "--merge", str(have), str(tmp_path / "again" / "shard-1-of-2"), "--out",
                 str(tmp_path / "merged2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: shard 1/2 given twice") and err.count("\n") == 1


def test_settings_that_share_a_run_and_its_partner_pay_for_one_analysis_per_shard() -> None:
    """The workstation profile's scratch arm has one rate in both settings: its runs and its analysis are one
    measurement (claims.analysis reuses it), so a shard holding both settings' scratch analyses pays once, and the
    pretrained arm, whose settings differ, pays for each (issue 43)."""
    prof = get_profile("workstation")
    timings = dataclasses.replace(RECORDED_CPU, reference_profile="workstation", analysis_current=True)
    train_s, an_s = seconds_model(prof, timings)
    _, jobs = plan_jobs(prof, "plan")
    scratch = [j for j in jobs if (j.init, j.seed, j.task) == ("scratch", 1, "sst2")]
    pre = [j for j in jobs if (j.init, j.seed, j.task) == ("pretrained", 1, "sst2")]
    assert [j.setting for j in scratch] == ["base", "low"] and scratch[0].needs() == scratch[1].needs()
    assert pre[0].needs() != pre[1].needs()
    plan = plan_shards(prof, 10 ** 7, timings)  # one shard: every job together
    (only,) = plan.shards
    measurements = {(run_key(j.run), run_key(j.partner)) for j in jobs}
    assert len(measurements) == len(jobs) - len(prof.seeds) * len(prof.tasks)  # one per scratch (task, seed) saved
    runs = {run_key(c) for j in jobs for c in j.needs()}
    per = an_s[next(iter(an_s))]
    assert all(v == pytest.approx(per) for v in an_s.values())  # one analysis costs the same in every job here
    assert only.expected_seconds == pytest.approx(timings.process_seconds + len(measurements) * per
                                                  + sum(train_s[k] for k in runs), abs=0.06)


def test_a_profile_timed_on_its_own_recipe_is_planned_with_its_own_figures() -> None:
    """recorded_for(device, profile): the workstation profile's measured CPU figures (issue 43), per task (MRPC's
    pairs train at 0.45x SST-2's rate); any other profile or device keeps the device kind's. Its plan fits the
    issue's bounds: every shard ≤ 100 min, the whole ≤ 10 h on 2 cores."""
    from repro.pipeline.timings import RECORDED_CPU_WORKSTATION, recorded_for

    assert recorded_for("cpu", "workstation") is RECORDED_CPU_WORKSTATION
    assert recorded_for("cpu", "cpu") is RECORDED_CPU and recorded_for("cpu") is RECORDED_CPU
    assert recorded_for("cuda:0", "workstation") is RECORDED_CUDA
    prof = get_profile("workstation")
    t = RECORDED_CPU_WORKSTATION
    assert t.analysis_current and t.reference_profile == "workstation" and t.kind == "cpu"
    train_s, an_s = seconds_model(prof, t)
    train, _ = plan_jobs(prof, "plan")
    for j in train:
        assert train_s[j.key] == pytest.approx(j.cost / t.train_steps_per_second_by_task[j.config.task])
    assert all(v == pytest.approx(t.analysis_seconds) for v in an_s.values())  # timed on its own analysis
    plan = plan_shards(prof, DEFAULT_BUDGET_BY_DEVICE["cpu"], t)
    assert all(s.expected_seconds <= 6000.0 for s in plan.shards) and plan.expected_seconds <= 10 * 3600
