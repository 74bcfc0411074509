"""The copyable scripts in examples/ run with their defaults on the tiny model, offline, and write what they say."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(monkeypatch: pytest.MonkeyPatch, script: str, *args: str) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts examples/ on sys.path
    monkeypatch.setattr(sys, "argv", [script, *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert done.value.code == 0


def test_curvature_example_with_its_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _run(monkeypatch, "curvature_of_my_classifier.py", "--out", str(tmp_path))
    rec = json.loads((tmp_path / "density.json").read_text())
    assert rec["model"] == "tiny-random" and len(rec["density"]["grid"]) == len(rec["density"]["density"])
    assert rec["lambda_max"]["eigenvalues"][0] > 0 and rec["density"]["num_matvecs"] > 0
    assert (tmp_path / "density.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "λ_max =" in out and "products" in out and "low: λ_max" in out


def test_landscape_example_along_delta1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(monkeypatch, "landscape_of_my_model.py", "--out", str(tmp_path), "--start", "tiny-random", "--seed", "1",
         "--points", "3")
    curve = json.loads((tmp_path / "curve.json").read_text())
    surface = json.loads((tmp_path / "surface.json").read_text())
    assert curve["alphas"] == [-1.0, 0.5, 2.0] and curve["direction"]["kind"] == "optimization"
    assert len(surface["grids"]["train_loss"]) == 3 and (tmp_path / "landscape.png").stat().st_size > 0


@pytest.mark.parametrize("script", ["curvature_of_my_classifier.py", "landscape_of_my_model.py"])
def test_an_unreachable_hub_model_is_one_line_and_exit_2(script: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A hub id on a machine without network (the probe replaced, the cache empty): one line naming the fixes and
    exit 2 within seconds, not an 80-line traceback after minutes of retries (issue 40)."""
    monkeypatch.setattr("repro.preflight.hub_reachable", lambda: False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", [script, "--model", "bert-base-uncased", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and err.startswith("error: model 'bert-base-uncased'") and "\n" not in err, err
    assert "--set model=minilm-l6" in err
