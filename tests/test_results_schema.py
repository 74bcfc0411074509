"""claims.json has a versioned layout and a JSON Schema generated from its dataclasses: the committed schema is
current, every committed claims.json matches it, a file written before versioning still loads (with one notice)
and a file from a newer version is refused."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import jsonschema
import pytest

from repro.results import SCHEMA_VERSION, load_claims, schema_notice
from repro.results.schema import SCHEMA_PATH, claims_schema, main, validate
from repro.storage import to_json_dict

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted([*ROOT.glob("reports/*/claims.json"), *ROOT.glob("tests/fixtures/**/claims.json")])
PREDATES = "predates the current schema"  # what a superseded run's NOTE.txt says when its file cannot be read


def _predates_schema(path: Path) -> bool:
    note = path.parent / "NOTE.txt"
    return note.exists() and PREDATES in note.read_text(encoding="utf-8")


def test_the_committed_schema_is_what_the_dataclasses_give(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().err
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == claims_schema()
    assert schema["properties"]["schema_version"]["maximum"] == SCHEMA_VERSION


def test_check_fails_when_the_schema_file_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import repro.results.schema as mod

    stale = tmp_path / "claims.schema.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(mod, "SCHEMA_PATH", stale)
    assert main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main([]) == 0 and json.loads(stale.read_text()) == claims_schema()  # regenerates it


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.relative_to(ROOT)) for p in COMMITTED])
def test_every_committed_claims_json_matches_the_schema(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if _predates_schema(path):  # kept as a record: neither the schema nor the loader reads it, and it says so
        with pytest.raises(jsonschema.ValidationError):
            validate(data)
        with pytest.raises((ValueError, TypeError, KeyError)):
            load_claims(path)
        return
    validate(data)
    assert load_claims(path).claims


def test_a_loaded_and_rewritten_file_matches_and_carries_the_current_version() -> None:
    path = ROOT / "tests/fixtures/golden/cpu/claims.json"
    raw = to_json_dict(load_claims(path))
    raw["schema_version"] = SCHEMA_VERSION
    validate(raw)


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(verdict=3),
    lambda d: d["claims"][0]["settings"][0]["comparisons"][0]["overall"].update(n="two"),
    lambda d: d["claims"][0].update(surprise=True),
    lambda d: d.pop("runs"),
    lambda d: d.update(schema_version=SCHEMA_VERSION + 1),
    lambda d: d["runs"][0].update(seed=0.5),
])
def test_the_schema_rejects_a_wrong_file(mutate) -> None:
    data = copy.deepcopy(json.loads((ROOT / "reports/cpu-2026-11-27/claims.json").read_text()))
    validate(data)
    mutate(data)
    with pytest.raises(jsonschema.ValidationError):
        validate(data)


def test_a_file_without_version_loads_with_one_notice(caplog: pytest.LogCaptureFixture) -> None:
    path = ROOT / "reports/cpu-2026-11-27/claims.json"
    assert "schema_version" not in json.loads(path.read_text())
    with caplog.at_level(logging.WARNING, logger="repro.results.records"):
        report = load_claims(path)
    assert report.schema_version == 0
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "no schema_version" in notices[0] and "\n" not in notices[0]
    assert schema_notice(report) and str(path) in notices[0]


def test_a_current_file_loads_silently(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = json.loads((ROOT / "reports/cpu-2026-11-27/claims.json").read_text())
    raw["schema_version"] = SCHEMA_VERSION
    (tmp_path / "claims.json").write_text(json.dumps(raw))
    with caplog.at_level(logging.WARNING):
        report = load_claims(tmp_path)
    assert report.schema_version == SCHEMA_VERSION and schema_notice(report) == "" and not caplog.records


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    raw = json.loads((ROOT / "reports/cpu-2026-11-27/claims.json").read_text())
    raw["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "claims.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="newer"):
        load_claims(tmp_path)
