"""The claim registry and the verdict logic, on synthetic evidence where the right answer is known."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claims import CLAIMS
from claims.base import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    VERDICTS,
    bootstrap_ci,
    combine,
    summarize,
)
from claims.evaluate import evaluate_claim
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


@pytest.mark.parametrize("claim_id", [c for c in CLAIMS.names() if c != "lower_layer_invariance"])
def test_unlearned_arm_makes_comparisons_inconclusive(claim_id: str) -> None:
    result = evaluate_claim(CLAIMS.get(claim_id), make_pairs(q=3.0, scratch_learned=False))
    assert result.verdict == INCONCLUSIVE
    comp = next(c for c in result.settings[0].comparisons if c.primary)
    assert comp.overall.n == 0 and comp.excluded and "scratch training loss" in comp.excluded[0]


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
    assert "reproduced under base of base, long" in result.reason


def test_combine() -> None:
    assert combine([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert combine([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, NOT_REPRODUCED]) == NOT_REPRODUCED
    assert combine([]) == INCONCLUSIVE


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=-10, max_value=10), min_size=2, max_size=12), st.floats(0.01, 1.0))
def test_summarize_verdict_matches_its_interval(effects: list[float], min_effect: float) -> None:
    s = summarize(effects, min_effect)
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


def test_bootstrap_is_seeded() -> None:
    x = [0.1, 0.5, -0.2, 0.3, 0.9]
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    lo, hi = bootstrap_ci(x)
    assert lo < sum(x) / len(x) < hi
