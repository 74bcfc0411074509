"""Profiles and results round-trip to JSON; writes are atomic; the registry explains unknown names."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repro.config import PROFILES, Profile, TrainConfig, apply_overrides, get_profile
from repro.errors import UnknownNameError
from repro.storage import atomic_write_text, config_hash, dumps, from_json_dict, read_json, to_json_dict, write_json


@pytest.mark.parametrize("name", PROFILES.names())
def test_profiles_round_trip(name: str) -> None:
    prof = get_profile(name)
    assert Profile.from_json(read_json_text(dumps(prof))) == prof
    cfg = prof.train_config(prof.tasks[0], "scratch", prof.seeds[0], prof.settings[-1])
    assert TrainConfig.from_json(cfg.to_json()) == cfg


def read_json_text(text: str) -> dict:
    import json

    return json.loads(text)


def test_standard_and_cpu_profiles_have_three_seeds_and_two_settings() -> None:
    for name in ("cpu-2026-11", "standard"):
        prof = get_profile(name)
        assert len(prof.seeds) >= 3
        assert len(prof.settings) >= 2


def test_unknown_profile_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'smoke'"):
        get_profile("smok")


def test_overrides() -> None:
    prof = apply_overrides(get_profile("cpu"), {"tasks": "sst2,rte", "pretrained.epochs": "7", "seeds": "4,5"})
    assert prof.tasks == ("sst2", "rte") and prof.pretrained.epochs == 7 and prof.seeds == (4, 5)
    with pytest.raises(KeyError):
        apply_overrides(prof, {"pretrained.nope": "1"})


def test_settings_override_keeps_the_named_settings_in_the_order_given() -> None:
    """``settings=base`` runs one setting of a profile (a claims pilot); an unknown name is refused, naming the
    profile's settings."""
    prof = get_profile("workstation")
    one = apply_overrides(prof, {"settings": "base"})
    assert one.settings == (prof.settings[0],)
    assert apply_overrides(prof, {"settings": "low,base"}).settings == (prof.settings[1], prof.settings[0])
    with pytest.raises(KeyError, match="base, low"):
        apply_overrides(prof, {"settings": "long"})


def test_config_hash_changes_with_any_field() -> None:
    prof = get_profile("smoke")
    a = prof.train_config("sst2", "pretrained", 0)
    b = prof.train_config("sst2", "pretrained", 1)
    assert config_hash(a) != config_hash(b)
    assert config_hash(a) == config_hash(prof.train_config("sst2", "pretrained", 0))


@dataclass(frozen=True)
class _Result:
    value: float
    values: tuple[float, ...]
    name: str | None = None


@given(st.floats(allow_nan=True, allow_infinity=True), st.lists(st.floats(allow_nan=False), max_size=4))
def test_non_finite_floats_survive_json(x: float, xs: list[float]) -> None:
    r = _Result(x, tuple(xs))
    back = from_json_dict(_Result, read_json_text(dumps(r)))
    assert (math.isnan(back.value) and math.isnan(x)) or back.value == x
    assert back.values == tuple(xs)


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json(path, {"v": 1})

    class Boom:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        write_json(path, {"v": Boom()})
    assert read_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    atomic_write_text(path, "x")
    assert path.read_text() == "x"


def test_unknown_field_rejected() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        from_json_dict(_Result, {"value": 1.0, "values": [], "extra": 1})
    assert to_json_dict(_Result(1.0, (2.0,)))["values"] == [2.0]
