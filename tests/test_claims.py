"""The claim registry and the verdict logic, on synthetic evidence where the right answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claims import CLAIMS
from claims.base import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    UNDECIDABLE,
    REPRODUCED,
    VERDICTS,
    combine,
    summarize,
    t_interval,
)
from claims.evaluate import evaluate_claim, evaluate_comparison
from repro.storage import dumps, from_json_dict
from tests.claims_fixtures import make_pairs

EXPECTED = {"wider_optima", "easier_optimization", "overfitting_robustness", "generalization_consistency",
            "lower_layer_invariance"}


def test_registry_holds_the_five_claims_in_paper_order() -> None:
    assert set(CLAIMS.names()) == EXPECTED
    sections = [CLAIMS.get(n).section for n in CLAIMS.names()]
    assert sections == sorted(sections)


@pytest.mark.parametrize("claim_id", CLAIMS.names())
def test_claim_is_declared(claim_id: str) -> None:
    claim = CLAIMS.get(claim_id)
    assert claim.section.startswith("§") and len(claim.statement) > 40
    assert any(c.primary for c in claim.comparisons)
    for c in claim.comparisons:
        assert c.min_effect > 0, f"{c.name}: a threshold of 0 would call any positive noise a reproduction"


@pytest.mark.parametrize("claim_id", CLAIMS.names())
def test_paper_like_evidence_is_reproduced(claim_id: str) -> None:
    result = evaluate_claim(CLAIMS.get(claim_id), make_pairs(q=3.0))
    assert result.verdict == REPRODUCED, result.reason
    assert set(result.per_task.values()) == {REPRODUCED}


@pytest.mark.parametrize("claim_id", CLAIMS.names())
def test_reversed_evidence_is_not_reproduced(claim_id: str) -> None:
    result = evaluate_claim(CLAIMS.get(claim_id), make_pairs(q=1 / 3))
    assert result.verdict == NOT_REPRODUCED, result.reason


# the paired comparisons (an across-runs association does not flip with the arms: tests/test_claims_v3.py)
ALL_COMPARISONS = [(claim, c.name) for claim in CLAIMS.names() for c in CLAIMS.get(claim).comparisons
                   if c.across_runs is None]


def _comparison(claim_id: str, name: str):  # noqa: ANN202
    return next(c for c in CLAIMS.get(claim_id).comparisons if c.name == name)


@pytest.mark.parametrize(("claim_id", "name"), ALL_COMPARISONS)
def test_every_comparison_reproduces_on_paper_like_evidence(claim_id: str, name: str) -> None:
    r = evaluate_comparison(_comparison(claim_id, name), make_pairs(q=3.0))
    assert not r.excluded, r.excluded
    assert r.overall.verdict == REPRODUCED, (r.overall, r.per_task)
    assert all(e > 0 for e in r.overall.effects)


@pytest.mark.parametrize(("claim_id", "name"), ALL_COMPARISONS)
def test_every_comparison_fails_on_reversed_evidence(claim_id: str, name: str) -> None:
    """Swapping which arm is the good one must flip every effect's sign (kills arm-swap and orientation mutants)."""
    r = evaluate_comparison(_comparison(claim_id, name), make_pairs(q=1 / 3))
    assert not r.excluded, r.excluded
    assert r.overall.verdict == NOT_REPRODUCED, (r.overall, r.per_task)
    assert all(e < 0 for e in r.overall.effects)


@pytest.mark.parametrize(("claim_id", "name"), ALL_COMPARISONS)
def test_effects_are_antisymmetric_in_the_arms(claim_id: str, name: str) -> None:
    """The effect of a pair with the arms' profiles exchanged is (close to) the negative of the original."""
    comp = _comparison(claim_id, name)
    fwd = evaluate_comparison(comp, make_pairs(q=3.0)).overall.mean
    rev = evaluate_comparison(comp, make_pairs(q=1 / 3)).overall.mean
    assert fwd > 0 > rev
    assert abs(fwd + rev) < 0.35 * max(abs(fwd), abs(rev)), (fwd, rev)


@pytest.mark.parametrize("claim_id", [c for c in CLAIMS.names() if c != "lower_layer_invariance"])
def test_unlearned_arm_makes_comparisons_inconclusive(claim_id: str) -> None:
    result = evaluate_claim(CLAIMS.get(claim_id), make_pairs(q=3.0, scratch_learned=False))
    assert result.verdict == INCONCLUSIVE
    comp = next(c for c in result.settings[0].comparisons if c.primary)
    assert comp.overall.n == 0 and comp.excluded and "scratch training loss" in comp.excluded[0]


@pytest.mark.parametrize(("claim_id", "name"), [
    ("overfitting_robustness", "dev_accuracy_drop"), ("overfitting_robustness", "dev_loss_rise"),
    ("generalization_consistency", "surface_rank_agreement"), ("generalization_consistency", "minimum_gap"),
    ("generalization_consistency", "argmin_distance"),
])
def test_generalisation_comparisons_need_both_arms_above_the_majority_rate(claim_id: str, name: str) -> None:
    r = evaluate_comparison(_comparison(claim_id, name), make_pairs(q=3.0, scratch_generalized=False))
    assert r.overall.n == 0 and r.overall.verdict == INCONCLUSIVE
    assert all("scratch did not generalise" in e and "majority rate 0.500" in e for e in r.excluded)


def test_dev_accuracy_needs_only_one_arm_to_generalise() -> None:
    comp = _comparison("generalization_consistency", "dev_accuracy")
    one = evaluate_comparison(comp, make_pairs(q=3.0, scratch_generalized=False))
    assert one.overall.verdict == REPRODUCED and not one.excluded  # a generalising pretrained arm beats scratch
    none = evaluate_comparison(comp, make_pairs(q=3.0, scratch_generalized=False, pretrained_generalized=False))
    assert none.overall.n == 0 and all("neither arm generalised" in e for e in none.excluded)


def test_tasks_are_not_pooled_a_failing_task_fails_the_comparison() -> None:
    """Agreement is required per task: a task where the effect is reversed fails the comparison even when the
    pooled mean is large and its pooled interval excludes 0."""
    comp = _comparison("generalization_consistency", "dev_accuracy")
    good = make_pairs(q=5.0, tasks=("sst2", "rte", "mnli"))
    bad = make_pairs(q=1 / 3, tasks=("mrpc",))
    r = evaluate_comparison(comp, good + bad)
    assert r.per_task["mrpc"].verdict == NOT_REPRODUCED
    assert r.overall.ci_low > 0 and r.overall.mean > comp.min_effect  # pooled would have said "reproduced"
    assert r.overall.verdict == NOT_REPRODUCED


def test_reason_says_how_each_setting_came_out() -> None:
    import dataclasses

    r = evaluate_claim(CLAIMS.get("wider_optima"), make_pairs(q=3.0)
                       + [dataclasses.replace(p, setting="long") for p in make_pairs(q=1.0 + 1e-9)])
    assert r.reason.startswith("Reproduced under base; ")
    assert "no setting" not in r.reason


def test_lower_layer_claim_needs_only_the_pretrained_arm() -> None:
    result = evaluate_claim(CLAIMS.get("lower_layer_invariance"), make_pairs(q=3.0, scratch_learned=False))
    assert result.verdict == REPRODUCED, result.reason


def test_claim_result_round_trips_to_json() -> None:
    import json

    from claims.base import ClaimResult

    result = evaluate_claim(CLAIMS.get("wider_optima"), make_pairs(q=3.0))
    back = from_json_dict(ClaimResult, json.loads(dumps(result)))
    assert back.verdict == result.verdict and back.settings[0].comparisons[0].overall == \
        result.settings[0].comparisons[0].overall


def test_settings_must_all_hold() -> None:
    import dataclasses

    good = make_pairs(q=3.0)
    bad = [dataclasses.replace(p, setting="long") for p in make_pairs(q=1 / 3)]
    result = evaluate_claim(CLAIMS.get("wider_optima"), good + bad)
    assert [s.verdict for s in result.settings] == [REPRODUCED, NOT_REPRODUCED]
    assert result.verdict == NOT_REPRODUCED
    assert result.reason.startswith("Reproduced under base; Not reproduced under long.")


def test_combine() -> None:
    assert combine([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert combine([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, NOT_REPRODUCED]) == NOT_REPRODUCED
    assert combine([]) == INCONCLUSIVE


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.floats(min_value=-10, max_value=10), min_size=2, max_size=12), st.floats(0.01, 1.0))
def test_summarize_verdict_matches_its_interval(effects: list[float], min_effect: float) -> None:
    s = summarize(effects, min_effect)
    if all(e == effects[0] for e in effects):  # zero variance: no interval, no verdict
        assert s.verdict == UNDECIDABLE and math.isnan(s.ci_low) and s.note.startswith("constant")
        return
    assert s.verdict in VERDICTS
    assert s.ci_low <= s.mean + 1e-12 and s.mean <= s.ci_high + 1e-12
    if s.verdict == REPRODUCED:
        assert s.ci_low > 0 and s.mean >= min_effect
    if s.verdict == NOT_REPRODUCED:
        assert s.ci_high < min_effect


def test_too_few_pairs_is_inconclusive() -> None:
    assert summarize([5.0], 0.1).verdict == INCONCLUSIVE
    assert summarize([], 0.1).verdict == INCONCLUSIVE
    assert math.isnan(summarize([], 0.1).mean)


def test_t_interval_by_hand() -> None:
    """x = (1, 2, 3): mean 2, sd 1, t_{0.975, 2} = 4.30265273 (tables) -> 2 ± 4.30265273/√3."""
    lo, hi = t_interval([1.0, 2.0, 3.0])
    half = 4.30265273 / math.sqrt(3)
    assert isinstance(lo, float) and isinstance(hi, float)  # plain floats for 1-D input (they go into JSON)
    assert lo == pytest.approx(2 - half, rel=1e-8) and hi == pytest.approx(2 + half, rel=1e-8)


def test_t_interval_batched_uses_last_axis() -> None:
    """Catches intervals computed over the wrong axis for the coverage simulation."""
    a = np.array([[1.0, 2.0, 4.0, 7.0], [0.0, 0.0, 1.0, 3.0]])
    lo, hi = t_interval(a)
    assert lo.shape == (2,) and hi.shape == (2,)
    for i in range(2):
        l1, h1 = t_interval(a[i])
        assert math.isclose(lo[i], l1, rel_tol=1e-12) and math.isclose(hi[i], h1, rel_tol=1e-12)


def test_t_interval_fewer_than_two_values_is_nan() -> None:
    """Catches a verdict from a single seed: n < 2 must give NaN intervals with the batch shape."""
    lo, hi = t_interval([3.0])
    assert isinstance(lo, float) and isinstance(hi, float)
    assert math.isnan(lo) and math.isnan(hi)
    lo3, hi3 = t_interval(np.ones((2, 3, 1)))
    assert lo3.shape == (2, 3) and hi3.shape == (2, 3)
    lo2, hi2 = t_interval(np.ones((3, 1)))
    assert lo2.shape == (3,) and hi2.shape == (3,)
    assert np.all(np.isnan(lo2)) and np.all(np.isnan(hi2))


def test_mean_at_threshold_with_interval_above_zero_is_reproduced_and_just_below_is_not() -> None:
    """The verdict needs both lo > 0 and mean ≥ min_effect (kills a rule that drops either condition)."""
    tight = [0.5 - 1e-4, 0.5, 0.5 + 1e-4]  # sd 1e-4: interval 0.5 ± 2.5e-4
    assert summarize(tight, 0.4999).verdict == REPRODUCED
    assert summarize([x - 2e-3 for x in tight], 0.4999).verdict == NOT_REPRODUCED  # interval ends at 0.49825
    assert summarize([x - 2e-3 for x in tight], 0.4981).verdict == INCONCLUSIVE  # mean 0.498 below, interval not
    assert summarize([0.1, 5.0, 9.9], 0.5).verdict == INCONCLUSIVE  # mean ≥ threshold, interval includes 0
    wide_pos = [0.2, 0.3, 0.4]  # interval above 0, mean below the threshold, interval reaches above it
    assert summarize(wide_pos, 0.35).verdict == INCONCLUSIVE


def test_lambda_max_is_gated_on_its_own_residual_not_on_the_lower_eigenpairs() -> None:
    """A converged λ_max is kept when a lower Ritz pair has not converged; an unconverged λ_max is excluded."""
    from types import SimpleNamespace

    from claims.effects import lambda_max
    from repro.curvature import EigenResult

    def ev(residuals: tuple[float, ...]) -> SimpleNamespace:
        eig = EigenResult((40.0, 8.0, 6.0), residuals, False, 22, 1e-3, "lanczos", 0)
        return SimpleNamespace(init="pretrained", analysis=SimpleNamespace(hessian=eig))

    assert lambda_max(ev((0.039, 5.0, 5.0))) == 40.0  # 0.039 / 40 < 1e-3
    with pytest.raises(ValueError, match="not converged"):
        lambda_max(ev((0.041, 0.0, 0.0)))  # 0.041 / 40 > 1e-3, whatever the others
