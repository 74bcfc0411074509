"""The resolved profile is checked before any work: every shipped profile passes, and each kind of nonsense is
rejected with a message naming the field (nothing clamped, rounded or silently emptied)."""

from __future__ import annotations

import dataclasses

import pytest

from repro.config import PROFILES, Setting, apply_overrides, get_profile
from repro.errors import ReproError
from repro.validation import check_count, check_device, check_seed, profile_problems, validate_profile


@pytest.mark.parametrize("name", PROFILES.names())
def test_shipped_profiles_are_valid(name: str) -> None:
    assert profile_problems(get_profile(name)) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pretrained.epochs": "abc"}, r"pretrained\.epochs = 'abc' must be an integer"),
        ({"pretrained.epochs": "1.5"}, r"pretrained\.epochs = 1\.5 must be an integer"),
        ({"pretrained.epochs": "0"}, r"pretrained\.epochs = 0 must be a positive integer"),
        ({"scratch.epochs": "-2"}, r"scratch\.epochs = -2 must be a positive integer"),
        ({"pretrained.batch_size": "0"}, r"pretrained\.batch_size = 0 must be a positive integer"),
        ({"pretrained.learning_rate": "-1e-4"}, r"pretrained\.learning_rate = -0\.0001 must be a positive"),
        ({"pretrained.warmup_ratio": "1"}, r"warmup_ratio = 1\.0 must be in \[0, 1\)"),
        ({"max_length": "1"}, r"max_length = 1 must be an integer >= 2"),
        ({"train_size": "0"}, r"train_size = 0 must be a positive integer or null"),
        ({"tasks": "sst2,qqp"}, r"unknown task\(s\) 'qqp' in tasks; known tasks: mnli, mrpc, rte, sst2"),
        ({"seeds": "-1"}, r"seeds\[0\] = -1 must be in \[0, 2\*\*32 - 1\]"),
        ({"seeds": "0,0"}, r"repeats a seed"),
        ({"seeds": "99999999999999999999"}, r"must be in \[0, 2\*\*32 - 1\]"),
        ({"model": "minilm-l9"}, r"unknown model 'minilm-l9'"),
        ({"snapshots": "1"}, r"snapshots = 1 must be an integer >= 2"),
        ({"landscape.curve_points": "1"}, r"landscape\.curve_points = 1 must be an integer >= 2"),
        ({"landscape.curve_min": "2"}, r"curve_min = 2\.0 must be below landscape\.curve_max"),
        ({"landscape.surface_radius": "0"}, r"surface_radius = 0\.0 must be a positive number"),
        ({"overfit_epoch_factor": "0.5"}, r"overfit_epoch_factor = 0\.5 must be a number >= 1"),
        ({"overfit_epoch_factor": "1.3"}, r"pretrained\.epochs 2 × overfit_epoch_factor 1\.3 = 2\.6 is not a whole"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(overrides: dict[str, str], message: str) -> None:
    prof = apply_overrides(get_profile("smoke"), overrides)
    with pytest.raises(ReproError, match=message) as exc:
        validate_profile(prof)
    text = str(exc.value)
    assert "\n" not in text and "repro profiles show smoke" in text


def test_every_problem_is_reported_at_once() -> None:
    prof = apply_overrides(get_profile("smoke"), {"pretrained.epochs": "0", "scratch.batch_size": "0"})
    problems = profile_problems(prof)
    assert any("pretrained.epochs" in p for p in problems) and any("scratch.batch_size" in p for p in problems)


def test_setting_factors_must_be_positive_and_give_whole_epochs() -> None:
    base = get_profile("smoke")
    bad = dataclasses.replace(base, settings=(Setting("base"), Setting("neg", lr_factor=-1.0)))
    with pytest.raises(ReproError, match="setting neg: lr_factor = -1.0 must be a positive number"):
        validate_profile(bad)
    half = dataclasses.replace(base, settings=(Setting("base"), Setting("odd", epoch_factor=1.25)))
    with pytest.raises(ReproError, match=r"setting odd: pretrained\.epochs 2 × epoch_factor 1\.25 = 2\.5 is not"):
        validate_profile(half)
    empty = dataclasses.replace(base, settings=())
    with pytest.raises(ReproError, match="settings is empty"):
        validate_profile(empty)
    dup = dataclasses.replace(base, settings=(Setting("base"), Setting("base", epoch_factor=2.0)))
    with pytest.raises(ReproError, match="settings repeat a name"):
        validate_profile(dup)


def test_empty_tasks_and_seeds_are_rejected() -> None:
    base = get_profile("smoke")
    with pytest.raises(ReproError, match="tasks is empty"):
        validate_profile(dataclasses.replace(base, tasks=()))
    with pytest.raises(ReproError, match="seeds is empty"):
        validate_profile(dataclasses.replace(base, seeds=()))


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999, True, 1.0])
def test_bad_seeds(seed: object) -> None:
    with pytest.raises(ReproError, match="--seed"):
        check_seed(seed)


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1])
def test_good_seeds(seed: int) -> None:
    check_seed(seed)


@pytest.mark.parametrize("count", [0, -1])
def test_seed_count_must_be_positive(count: int) -> None:
    with pytest.raises(ReproError, match="must be a positive integer"):
        check_count(count, "--seeds")


def test_device_checks() -> None:
    import torch

    check_device(None)
    check_device("cpu")
    with pytest.raises(ReproError, match="not a torch device"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ReproError, match="omit --device or pass --device cpu"):
            check_device("cuda")
