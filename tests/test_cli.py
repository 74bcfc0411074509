"""The CLI's contract with scripts: exit 0 done, 1 not all reproduced (a result), 2 user error as one line naming
the fix, 3 a bug (traceback kept); bad input is rejected before any work; every documented command parses; the
help does not import torch; benchmarks write outside the source tree unless asked to publish."""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from repro import cli
from repro.cli import build_parser, main

REPO = Path(__file__).resolve().parent.parent


def _one_line_error(capsys: pytest.CaptureFixture[str], pattern: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert re.search(pattern, err), err
    return err


def _train(tmp_path: Path, *extra: str) -> list[str]:
    return ["train", "--task", "sst2", "--init", "scratch", "--out", str(tmp_path), "--no-progress",
            "--set", "model=tiny-random", *extra]


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--set", "pretrained.epochs=abc"], r"pretrained\.epochs = 'abc' must be an integer"),
        (["--set", "pretrained.epochs=0"], r"pretrained\.epochs = 0 must be a positive integer"),
        (["--set", "scratch.epochs=-2"], r"scratch\.epochs = -2 must be a positive integer"),
        (["--set", "scratch.epochs=1.5"], r"scratch\.epochs = 1\.5 must be an integer"),
        (["--set", "pretrained.batch_size=0"], r"pretrained\.batch_size = 0 must be a positive integer"),
        (["--set", "tasks=sst2,qqp"], r"unknown task\(s\) 'qqp'"),
        (["--set", "pretrained.learning_rate=abc"], r"bad --set override.*repro profiles show smoke"),
        (["--set", "nope=1"], r"bad --set override: unknown setting 'nope'"),
        (["--set", "novalue"], r"--set expects KEY=VALUE"),
        (["--seed", "99999999999999999999"], r"--seed = 99999999999999999999 must be in \[0, 2\*\*32 - 1\]"),
        (["--seed", "-1"], r"--seed = -1 must be in"),
        (["--setting", "fast"], r"unknown setting 'fast' for profile smoke"),
    ],
)
def test_train_user_errors_exit_2_before_any_work(extra: list[str], pattern: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_train(tmp_path, *extra)) == 2
    _one_line_error(capsys, pattern)
    assert not (tmp_path / "train").exists()  # nothing was started


def test_cuda_on_a_cpu_only_torch_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(_train(tmp_path, "--device", "cuda")) == 2
    _one_line_error(capsys, r"--device cuda: .*omit --device or pass --device cpu")


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--seeds", "0"], r"--seeds 0: must be a positive integer"),
        (["--seeds", "-1"], r"--seeds -1: must be a positive integer"),
        (["--tasks", "sst2", "qqp"], r"unknown --tasks value\(s\) 'qqp'"),
        (["--set", "tasks=sst2,qqp"], r"unknown task\(s\) 'qqp'"),
        (["--set", "seeds=-1"], r"seeds\[0\] = -1"),
        (["--set", "pretrained.epochs=1.5"], r"pretrained\.epochs = 1\.5 must be an integer"),
    ],
)
def test_claims_user_errors_exit_2_before_any_work(extra: list[str], pattern: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["claims", "--profile", "smoke", "--out", str(tmp_path), "--no-progress", *extra])
    assert code == 2
    _one_line_error(capsys, pattern)
    assert not any(tmp_path.iterdir())  # no claims directory, no empty claims.json, no training


def test_report_on_a_missing_or_wrong_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    _one_line_error(capsys, r"is not a directory: pass the directory of a claims run")
    assert main(["report", str(tmp_path)]) == 2
    _one_line_error(capsys, r"holds no claims\.json: .*run `repro claims` first")


def test_data_dir_error_names_where_the_path_came_from(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "from-env"))
    assert main(_train(tmp_path / "out")) == 2
    _one_line_error(capsys, r"from-env \(from environment variable REPRO_DATA_DIR\)")
    assert main(_train(tmp_path / "out", "--data-dir", str(tmp_path / "from-flag"))) == 2
    _one_line_error(capsys, r"from-flag \(from --data-dir")


def test_an_internal_error_exits_3_with_its_traceback(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def boom(args: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cmd_profiles", boom)
    assert main(["profiles"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a bug" in err and "bug in repro" in err


def test_disk_full_is_a_user_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def full(args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/theta1.safetensors")

    monkeypatch.setattr(cli, "cmd_profiles", full)
    assert main(["profiles"]) == 2
    _one_line_error(capsys, r"No space left on device: /runs/x/theta1\.safetensors; free disk space")


@pytest.mark.parametrize("argv", [["profiles"], ["profiles", "list"], ["profiles", "show", "cpu"], ["profiles", "cpu"]])
def test_profiles_commands(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    if argv[-1] == "cpu":
        assert json.loads(out)["name"] == "cpu"
    else:
        assert "smoke" in out and "standard" in out


def test_profiles_show_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "show"]) == 2
    _one_line_error(capsys, r"needs a profile name; known: ")
    assert main(["profiles", "show", "fast"]) == 2
    _one_line_error(capsys, r"unknown profile 'fast'")


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    cmds = re.findall(r"`(repro [^`]+)`", text)
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            m = re.search(r"(?:^|\s)(repro\s.*)$", line)
            if m:
                cmds.append(m.group(1))
    return cmds


def test_readme_lists_commands() -> None:
    assert len(_readme_commands()) >= 5


@pytest.mark.parametrize("command", _readme_commands())
def test_every_readme_command_parses(command: str) -> None:
    words = shlex.split(command)[1:]
    if words and words[0] in ("--help", "-h"):
        return
    args = build_parser().parse_args(words)
    if args.command == "profiles":  # the command itself must accept the words, not only argparse
        # `profiles check` exits 1 when a primary cannot be decided: a finding, not an error
        assert main(words) in ((0, 1) if words[1:2] == ["check"] else (0,))


def test_inits_match_the_models_package() -> None:
    from repro.models import INITS

    assert tuple(cli.INITS) == tuple(INITS)


def test_help_does_not_import_torch() -> None:
    code = ("import sys\nfrom repro.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'matplotlib') if m in sys.modules]\n"
            "print('HEAVY=' + ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "PYTHONWARNINGS": ""})
    assert "HEAVY=\n" in out.stdout, out.stdout[-200:]


def test_bench_writes_under_out_by_default_and_explains_each_figure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import repro.bench

    recorded = json.loads((REPO / "bench" / "results" / "grid-cpu.json").read_text())
    seen: list[Path] = []

    def fake(out: Path, **kw: object) -> dict:
        seen.append(Path(out))
        return recorded

    monkeypatch.setattr(repro.bench, "run_grid_bench", fake)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPRO_OUT", raising=False)
    assert main(["bench", "grid", "--device", "cpu"]) == 0
    assert seen[-1] == Path("runs") / "bench" / "grid-cpu.json"  # not the tracked bench/results
    out = capsys.readouterr().out
    assert re.search(r"ours / ceiling = [\d.]+: share of the rate of bare forward passes", out)
    assert re.search(r"ours / naive = [\d.]+: speed-up over the loss-landscape-style loop", out)
    # the comparison, or why there is none (the published run's reason: not installed, or failed)
    assert re.search(r"ours / loss-landscapes = [\d.]+|loss-landscapes \(PyPI\): (failed|unavailable) \(\w+Error", out)
    assert main(["bench", "grid", "--device", "cpu", "--results", "published"]) == 0
    assert seen[-1] == Path("published") / "grid-cpu.json"


def test_bench_says_when_pyhessian_is_unavailable() -> None:
    from repro.bench.common import describe_bench

    recorded = json.loads((REPO / "bench" / "results" / "curvature-cpu.json").read_text())
    lines = describe_bench(recorded)
    assert any("time ratio PyHessian / ours" in ln and "above 1 = ours is faster" in ln for ln in lines)
    recorded["top5"]["pyhessian_power"] = {"status": "unavailable", "reason": "ImportError: no pyhessian"}
    assert any("PyHessian: unavailable (ImportError: no pyhessian)" in ln for ln in describe_bench(recorded))


def test_bench_curvature_peers_not_installed_and_fastest_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer whose import fails is recorded as "not installed" (the benchmark goes on); the summary prints each
    peer and the fastest one against ours, with the goal line."""
    import repro.bench.peers as peers
    from repro.bench.common import describe_bench
    from repro.bench.curvature import _fastest_peer

    def missing(name: str) -> None:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(peers, "import_peer", missing)
    for name in peers.PEER_MODULES:  # fails at the import, before touching the (absent) model
        entry = peers.run_peer(name, None, {}, [], 1, 1e-3, 10, 0, None, lambda t: t, {})
        assert entry == {"status": "not installed", "reason": f"ModuleNotFoundError: No module named {name!r}"}
    assert all(e["status"] == "not installed" for e in peers.peer_product_differences(None, {}, [], None, 0).values())

    ours = {"seconds": 2.0, "hvps": 10, "eigenvalues": [1.0], "rel_residuals": [1e-4], "converged": True}
    entry = {"ours_lanczos": ours, "ours_lanczos_residual_rule": {**ours, "seconds": 3.0},
             "pyhessian_power": {"status": "ok", "seconds": 4.0, "hvps": 30, "rel_residuals": [1e-2]},
             "peers": {"curvlinops": {"status": "ok", "seconds": 2.5, "hvps": 21, "rel_residuals": [1e-4],
                                      "solver": "eigsh", "relative_difference_lambda_max": 1e-4},
                       "hessian_eigenthings": peers.run_peer("hessian_eigenthings", None, {}, [], 1, 1e-3, 10, 0,
                                                             None, lambda t: t, {})}}
    fp = _fastest_peer(entry)
    assert fp is not None and fp["peer"] == "curvlinops" and fp["ours"] == "ours_lanczos_residual_rule"
    assert fp["peer_over_ours"] == pytest.approx(2.5 / 3.0) and fp["goal_met"] is False
    entry["fastest_peer"] = fp
    lines = describe_bench({"benchmark": "curvature", "lambda_max": entry})
    assert any(ln.strip().startswith("hessian_eigenthings: not installed (ModuleNotFoundError") for ln in lines)
    assert any("fastest peer: curvlinops 2.50 s" in ln for ln in lines)
    assert "    goal: at least as fast as the fastest peer -- NOT met" in lines


def test_library_benchmarks_default_outside_the_source_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from repro.bench.common import RESULTS_DIR, default_out_path

    monkeypatch.delenv("REPRO_OUT", raising=False)
    path = default_out_path("grid", torch.device("cpu"))
    assert path == Path("runs") / "bench" / "grid-cpu.json" and RESULTS_DIR not in path.parents


def test_out_that_is_a_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "results.txt"
    afile.write_text("not a directory")
    assert main(["claims", "--profile", "smoke", "--out", str(afile), "--no-progress"]) == 2
    _one_line_error(capsys, r"choose an --out")


def test_an_unknown_task_on_the_command_line_is_named_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    """`--tasks qqp` is a --tasks mistake: the error names --tasks and the known tasks, not a --set field (issue 40)."""
    assert main(["claims", "--profile", "smoke", "--tasks", "qqp"]) == 2
    err = _one_line_error(capsys, r"unknown --tasks value\(s\) 'qqp'; known: ")
    assert "--set" not in err


def test_tasks_on_the_command_line_keep_a_partner_only_profile_valid(capsys: pytest.CaptureFixture[str]) -> None:
    """The workstation profile's MRPC is a partner-only task; `--tasks sst2,mrpc` analyses both (no partner left)."""
    assert main(["claims", "--profile", "workstation", "--tasks", "sst2", "mrpc", "--plan-shards", "--device",
                 "cpu"]) == 0
    assert "shard plan of profile workstation" in capsys.readouterr().out


@pytest.mark.parametrize(("code", "advice"), [
    (errno.ENOSPC, "free disk space"), (errno.EACCES, "this user can read and write"),
    (errno.EROFS, "this user can read and write")])
def test_an_environment_error_gets_the_advice_that_fits_it(code: int, advice: str, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A read-only or forbidden --out is not a full disk (issue 40): each errno its own fix, one line, exit 2."""
    def fail(args: object) -> int:
        raise OSError(code, os.strerror(code), "/runs/x")

    monkeypatch.setattr(cli, "cmd_profiles", fail)
    assert main(["profiles"]) == 2
    err = _one_line_error(capsys, re.escape(advice))
    assert ("free disk space" in err) == (code == errno.ENOSPC)


def test_out_that_is_a_claims_run_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--out runs/smoke-0697b992` would nest a new run inside the old one: refused before any work, naming the
    parent to pass instead (issue 40)."""
    run = tmp_path / "runs" / "smoke-0697b992"
    run.mkdir(parents=True)
    (run / "profile.json").write_text("{}")
    assert main(["claims", "--profile", "smoke", "--out", str(run)]) == 2
    _one_line_error(capsys, re.escape(f"is a claims run directory (it holds profile.json); pass the folder that "
                                      f"holds run directories, e.g. --out {run.parent}"))
    assert sorted(p.name for p in run.iterdir()) == ["profile.json"]  # nothing created inside
