"""Partner-only tasks (issue 43): a profile that analyses one task can train another only for the cross-task
direction δ2. Its runs are trained (the normal run of each (init, seed, setting)), never analysed, never extended,
never judged; a multi-task profile keeps taking partners from its own tasks, unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from repro.config import apply_overrides, get_profile
from repro.errors import ReproError
from repro.pipeline.jobs import plan_jobs, run_key
from repro.pipeline.plan import resolve
from repro.validation import profile_problems, validate_profile


def test_a_partner_only_task_is_trained_for_delta2_and_nothing_else() -> None:
    prof = get_profile("workstation")
    assert prof.tasks == ("sst2",) and prof.partner_tasks == ("mrpc",) and prof.partner_of("sst2") == "mrpc"
    train, analyses = plan_jobs(prof, "plan")
    keys = {j.key for j in train}
    assert {a.task for a in analyses} == {"sst2"}
    base = next(s for s in prof.settings if s.name == "base")
    assert prof.partner_setting == "base"
    for a in analyses:
        assert a.partner is not None and a.partner.task == "mrpc"
        # the partner of every setting's analysis is the base setting's MRPC run of the same init and seed
        assert (a.partner.init, a.partner.seed) == (a.run.init, a.run.seed)
        assert a.partner.hyper == prof.hyper(a.init, base)
        assert run_key(a.partner) in keys  # the plan trains it
    low = [a for a in analyses if a.setting == "low" and a.init == "pretrained"]
    assert low and all(a.partner.hyper.learning_rate != a.run.hyper.learning_rate for a in low)
    mrpc = [j for j in train if j.config.task == "mrpc"]
    # one normal run per (init, seed), shared by both settings
    assert len(mrpc) == len(prof.seeds) * 2
    assert all(j.config.hyper.epochs == prof.hyper(j.config.init).epochs for j in mrpc)  # no extended run


def test_without_a_partner_setting_each_setting_trains_its_own_partner() -> None:
    prof = dataclasses.replace(get_profile("workstation"), partner_setting=None)
    train, analyses = plan_jobs(prof, "plan")
    settings = {s.name: s for s in prof.settings}
    for a in analyses:
        assert a.partner == prof.train_config("mrpc", a.init, a.seed, settings[a.setting], data_source="plan")
    # pretrained in 2 settings (2 rates), scratch once (the same rate in both)
    assert len([j for j in train if j.config.task == "mrpc"]) == len(prof.seeds) * 3


def test_partner_setting_is_saved_only_when_set_and_must_name_a_setting() -> None:
    prof = get_profile("workstation")
    assert prof.to_json()["partner_setting"] == "base"
    assert type(prof).from_json(prof.to_json()) == prof
    assert "partner_setting" not in get_profile("standard").to_json()
    for field in ("partner_setting", "extended_setting"):
        problems = profile_problems(dataclasses.replace(prof, **{field: "nope"}))
        assert any(field in p and "nope" in p and "null" in p for p in problems), problems
    only_low = apply_overrides(prof, {"settings": "low"})
    assert any("partner_setting" in p for p in profile_problems(only_low))
    assert profile_problems(apply_overrides(prof, {"settings": "low", "partner_setting": "null"})) == []


def test_multi_task_profiles_take_partners_from_their_tasks_as_before() -> None:
    prof = get_profile("standard")
    assert prof.partner_tasks == () and "partner_tasks" not in prof.to_json()  # hash unchanged at the default
    assert [prof.partner_of(t) for t in prof.tasks] == ["mrpc", "rte", "mnli", "sst2"]
    one = dataclasses.replace(prof, tasks=("sst2",))
    assert one.partner_of("sst2") is None and all(a.partner is None for a in plan_jobs(one, "plan")[1])


def test_partner_tasks_are_checked() -> None:
    prof = get_profile("workstation")
    assert any("unknown task" in p for p in profile_problems(dataclasses.replace(prof, partner_tasks=("qqq",))))
    assert any("also in tasks" in p for p in profile_problems(dataclasses.replace(prof, partner_tasks=("sst2",))))
    several = dataclasses.replace(prof, tasks=("sst2", "rte"))
    with pytest.raises(ReproError, match="only with one analysed task"):
        validate_profile(several)


def test_tasks_on_the_command_line_replace_the_partners_where_they_must() -> None:
    prof = get_profile("workstation")
    assert resolve(prof, ["mrpc"], None).partner_tasks == ()  # the partner is now the analysed task
    assert resolve(prof, ["rte"], None).partner_tasks == ("mrpc",)
    both = resolve(prof, ["sst2", "mrpc"], None)
    assert both.partner_tasks == () and both.partner_of("sst2") == "mrpc"
    validate_profile(both)
