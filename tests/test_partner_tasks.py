"""Partner-only tasks (issue 43): a profile that analyses one task can train another only for the cross-task
direction δ2. Its runs are trained (the normal run of each (init, seed, setting)), never analysed, never extended,
never judged; a multi-task profile keeps taking partners from its own tasks, unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from repro.config import get_profile
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
    for a in analyses:
        assert a.partner is not None and a.partner.task == "mrpc"
        assert (a.partner.init, a.partner.seed, a.partner.hyper) == (a.run.init, a.run.seed, a.run.hyper)
        assert run_key(a.partner) in keys  # the plan trains it
    mrpc = [j for j in train if j.config.task == "mrpc"]
    # one normal run per (init, seed, distinct rate): pretrained in 2 settings, scratch once (same rate in both)
    assert len(mrpc) == len(prof.seeds) * 3
    assert all(j.config.hyper.epochs == prof.hyper(j.config.init).epochs for j in mrpc)  # no extended run


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
