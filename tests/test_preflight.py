"""Offline-first up-front checks (issue 40): a run that cannot work fails in seconds, with one line naming the fix,
before any directory is created -- never after a job started or minutes of hub retries."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from repro.cli import main
from repro.errors import DataError
from repro.errors import ReproError
from repro.preflight import check_data, check_model, hub_reachable, in_hub_cache

HUB_ID = "bert-base-uncased"


def _never() -> bool:
    raise AssertionError("the hub must not be probed here")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, online mode (tox sets HF_HUB_OFFLINE=1; these tests choose it themselves)."""
    root = tmp_path / "hf-cache"
    root.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    return root


def _cache_model(root: Path, repo_id: str) -> None:
    snap = root / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")


def test_a_hub_id_neither_cached_nor_reachable_names_the_fixes(cache: Path) -> None:
    with pytest.raises(ReproError, match=r"not in the local Hugging Face cache and .* cannot be reached") as e:
        check_model(HUB_ID, reachable=lambda: False)
    assert "--set model=minilm-l6" in str(e.value) and "local checkpoint directory" in str(e.value)
    check_model(HUB_ID, reachable=lambda: True)  # with network: the hub will serve it


def test_a_cached_hub_id_without_network_asks_for_offline_mode(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cache_model(cache, HUB_ID)
    assert in_hub_cache(HUB_ID) and not in_hub_cache("org/other")
    with pytest.raises(ReproError, match="HF_HUB_OFFLINE=1"):
        check_model(HUB_ID, reachable=lambda: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_model(HUB_ID, reachable=_never)  # offline on purpose and cached: no probe, no error


def test_offline_mode_and_not_cached_is_an_error_without_a_probe(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ReproError, match="offline mode is on"):
        check_model("org/some-model", reachable=_never)


def test_named_models_and_local_directories_need_no_network(cache: Path, tmp_path: Path) -> None:
    check_model("minilm-l6", reachable=_never)
    check_model("tiny-random", reachable=_never)
    with pytest.raises(ReproError, match="has no config.json"):
        check_model(str(tmp_path), reachable=_never)
    (tmp_path / "config.json").write_text("{}")
    check_model(str(tmp_path), reachable=_never)


def test_data_files_are_located_for_every_task_and_split(tmp_path: Path, cache: Path) -> None:
    glue = tmp_path / "glue"
    with pytest.raises(DataError, match="does not exist"):
        check_data(("sst2",), glue, reachable=_never)
    (glue / "sst2").mkdir(parents=True)
    (glue / "sst2" / "train.jsonl").write_text("")
    with pytest.raises(DataError, match=r"no 'validation' split of task 'sst2'"):
        check_data(("sst2",), glue, reachable=_never)
    (glue / "sst2" / "validation.jsonl").write_text("")
    check_data(("sst2",), glue, reachable=_never)
    with pytest.raises(DataError, match=r"no 'train' split of task 'mrpc'"):  # the partner task is checked too
        check_data(("sst2", "mrpc"), glue, reachable=_never)


def test_hub_data_without_network_is_an_error_unless_offline_on_purpose(cache: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPRO_DATA_DIR", raising=False)
    with pytest.raises(ReproError, match="cannot be reached to download GLUE"):
        check_data(("sst2",), None, reachable=lambda: False)
    check_data(("sst2",), None, reachable=lambda: True)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    check_data(("sst2",), None, reachable=_never)


def test_the_probe_answers_within_its_timeout() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert hub_reachable.__wrapped__(f"http://127.0.0.1:{port}", 2.0)
    t0 = time.monotonic()
    assert not hub_reachable.__wrapped__(f"http://127.0.0.1:{port}", 2.0)  # closed now: refused at once
    assert time.monotonic() - t0 < 2.5


@pytest.mark.parametrize("extra", [["--data-dir", "MISSING"], ["--set", f"model={HUB_ID}"]])
def test_claims_fails_before_any_directory_exists(extra: list[str], tmp_path: Path, cache: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`repro claims` with a data directory that does not exist, or a hub model on a machine without network (the
    probe is replaced: this test must not depend on the network), exits 2 with one line and leaves --out empty."""
    monkeypatch.setattr("repro.preflight.hub_reachable", lambda: False)
    extra = [str(tmp_path / "missing") if x == "MISSING" else x for x in extra]
    out = tmp_path / "out"
    out.mkdir()
    code = main(["claims", "--profile", "smoke", "--out", str(out), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert "started" not in err and not any(out.iterdir())
