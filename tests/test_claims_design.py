"""Issue 27's design rules, each against a hand oracle: censored widths used as bounds when they decide the sign,
the convergence precondition of the final-loss and straightness comparisons, "undecidable" for a constant measure,
the matched curvature at the learned level, and the registered task scope of the comparisons that need both arms
to generalise. Each test fails if its rule is dropped or reversed."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest

from claims import CLAIMS
from claims import effects as fx
from claims.base import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    UNDECIDABLE,
    Comparison,
    Pair,
    combine,
    combine_tasks,
    summarize,
)
from claims.evaluate import evaluate_claim, evaluate_comparison, in_scope
from repro.landscape import CurveResult, DirectionInfo
from tests.claims_fixtures import make_pairs

M = fx.Measured


# -- censored bounds -----------------------------------------------------------------------------------------------
def test_bounded_log_ratio_measured_values_are_exact() -> None:
    r = fx.bounded_log_ratio(M(2.0, False), M(1.0, False))
    assert r == pytest.approx(math.log(2.0)) and not isinstance(r, fx.Bound)


def test_censored_numerator_is_a_lower_bound_whatever_its_sign() -> None:
    """v3: the bound counts as an interval [r, +inf) even when r < 0 (issue 27 excluded such pairs)."""
    r = fx.bounded_log_ratio(M(3.0, True), M(1.0, False))
    assert isinstance(r, fx.Bound) and r.side == "lower" and float(r) == pytest.approx(math.log(3.0))
    neg = fx.bounded_log_ratio(M(0.5, True), M(1.0, False))  # true ratio ≥ log 0.5 < 0
    assert isinstance(neg, fx.Bound) and (neg.lo, neg.hi) == (pytest.approx(math.log(0.5)), math.inf)
    assert fx.effect_interval(neg) == (neg.lo, math.inf)


def test_censored_denominator_is_an_upper_bound_whatever_its_sign() -> None:
    r = fx.bounded_log_ratio(M(0.5, False), M(2.0, True))  # the scratch width is at least 2: ratio ≤ log 0.25
    assert isinstance(r, fx.Bound) and r.side == "upper" and float(r) == pytest.approx(math.log(0.25))
    pos = fx.bounded_log_ratio(M(3.0, False), M(2.0, True))
    assert (pos.lo, pos.hi) == (-math.inf, pytest.approx(math.log(1.5)))
    assert fx.effect_interval(0.3) == (0.3, 0.3)


def test_both_censored_is_undetermined() -> None:
    with pytest.raises(ValueError, match="both sides censored"):
        fx.bounded_log_ratio(M(3.0, True), M(2.0, True))


def test_bound_refuses_an_unknown_side() -> None:
    with pytest.raises(ValueError):
        fx.Bound(1.0, "sideways")


def _pair(task: str, seed: int) -> Pair:
    ev = SimpleNamespace(learned=True, learned_reason=lambda: "")
    return Pair("base", task, seed, ev, ev)


def test_evaluate_comparison_counts_bounds_marks_them_and_can_refute_with_them() -> None:
    """The cpu run's case: scratch censored, pretrained narrower -> upper bounds below 0 decide 'not reproduced'."""
    values = {0: fx.Bound(-0.6, "upper"), 1: fx.Bound(-0.8, "upper"), 2: -0.7}
    comp = Comparison("w", "width", lambda p: values[p.seed], math.log(1.25), "log ratio")
    r = evaluate_comparison(comp, [_pair("sst2", s) for s in range(3)])
    assert [row.get("bound") for row in r.per_pair] == ["upper", "upper", None]
    assert r.per_task["sst2"].bounds == 2 and r.overall.bounds == 2 and r.per_task["sst2"].n == 3
    assert r.per_task["sst2"].verdict == NOT_REPRODUCED and r.excluded == ()


def test_wider_optima_widths_use_the_bound_of_a_censored_scratch_arm() -> None:
    """Through the registered comparison: a scratch random-direction curve flat to the grid edge is censored; the
    pretrained arm's narrower curve then gives an upper bound below 0, which counts (it was excluded before)."""
    comp = next(c for c in CLAIMS.get("wider_optima").comparisons if c.name == "random_direction_width")
    alphas = tuple(float(a) for a in (-1, -0.5, 0, 0.5, 1))
    d = DirectionInfo("random", 1.0)

    def ev(width_curvature: float) -> SimpleNamespace:
        curve = CurveResult(alphas, {"train_loss": tuple(width_curvature * a * a for a in alphas)}, d, 1)
        return SimpleNamespace(analysis=SimpleNamespace(random_curves=(curve,), train_loss_theta1=0.1), init="x")

    pair = Pair("base", "sst2", 0, ev(1.0), ev(0.0))  # scratch: flat everywhere -> censored at the edge
    e = comp.effect(pair)
    assert isinstance(e, fx.Bound) and e.side == "upper" and e < 0
    assert comp.values(pair)["censored scratch"] == 1.0 and comp.values(pair)["censored pretrained"] == 0.0


# -- undecidable: constant -----------------------------------------------------------------------------------------
def test_constant_effects_are_undecidable_not_a_verdict() -> None:
    s = summarize([0.0, 0.0, 0.0], 0.05)
    assert s.verdict == UNDECIDABLE and s.sd == 0.0 and math.isnan(s.ci_low) and "constant" in s.note
    assert summarize([1.0, 1.0], 0.5).verdict == UNDECIDABLE  # even where a degenerate interval would "reproduce"
    assert summarize([0.0, 1e-12, 0.0], 0.05).verdict != UNDECIDABLE


def test_undecidable_combines_like_inconclusive_and_survives_only_when_every_task_is_undecidable() -> None:
    assert combine([REPRODUCED, UNDECIDABLE]) == INCONCLUSIVE
    assert combine([UNDECIDABLE, NOT_REPRODUCED]) == NOT_REPRODUCED
    u, r = summarize([1.0, 1.0], 0.1), summarize([1.0, 2.0, 1.5], 0.1)
    assert combine_tasks({"a": u, "b": u}) == UNDECIDABLE
    assert combine_tasks({"a": u, "b": r}) == INCONCLUSIVE


# -- convergence precondition: see tests/test_claims_v3.py (science v3 replaced issue 27's rule) ----------------

# -- matched curvature at the learned level ------------------------------------------------------------------------
def test_primary_curvature_is_read_at_the_learned_level_and_the_half_level_is_secondary() -> None:
    """v3: the primary is the *scaled* λ_max at the learned level; the raw ones are secondaries."""
    comps = {c.name: c for c in CLAIMS.get("wider_optima").comparisons}
    assert comps["scaled_lambda_max_learned_level"].primary
    assert not comps["hessian_lambda_max_learned_level"].primary
    assert not comps["hessian_lambda_max_matched_loss"].primary
    p = make_pairs(q=3.0)[0]
    want = math.log(p.scratch.analysis.matched_learned.hessian.eigenvalues[0]
                    / p.pretrained.analysis.matched_learned.hessian.eigenvalues[0])
    assert comps["hessian_lambda_max_learned_level"].effect(p) == pytest.approx(want)
    old = dataclasses.replace(p, pretrained=dataclasses.replace(
        p.pretrained, analysis=dataclasses.replace(p.pretrained.analysis, matched_learned=None, version=2)))
    with pytest.raises(ValueError, match="version 2 predates it"):
        comps["hessian_lambda_max_learned_level"].effect(old)


# -- registered task scope -----------------------------------------------------------------------------------------
def test_scope_restricts_only_the_comparisons_that_need_both_arms_to_generalise() -> None:
    gen = CLAIMS.get("generalization_consistency")
    comps = {c.name: c for c in gen.comparisons}
    assert in_scope(comps["surface_rank_agreement"], ("sst2",)) == ("sst2",)
    assert in_scope(comps["dev_accuracy"], ("sst2",)) is None  # needs one arm only
    assert in_scope(comps["surface_rank_agreement"], None) is None
    r = evaluate_claim(gen, make_pairs(q=3.0), generalization_tasks=("sst2",))
    res = {c.name: c for c in r.settings[0].comparisons}
    assert set(res["surface_rank_agreement"].per_task) == {"sst2"} and res["surface_rank_agreement"].scope == ("sst2",)
    assert set(res["dev_accuracy"].per_task) == {"sst2", "mrpc"} and res["dev_accuracy"].scope == ()
    assert r.verdict == REPRODUCED and set(r.per_task) == {"sst2", "mrpc"}


def test_every_comparison_says_when_it_was_registered() -> None:
    for name in CLAIMS.names():
        for c in CLAIMS.get(name).comparisons:
            assert c.registered, (name, c.name)


# -- issue 19's secondary measures ---------------------------------------------------------------------------------
def test_group_curvature_and_adaptive_sharpness_are_registered_secondaries_read_from_the_analysis() -> None:
    from repro.curvature import (
        AdaptiveSharpnessResult,
        GroupCurvature,
        GroupCurvatureResult,
    )

    wider = {c.name: c for c in CLAIMS.get("wider_optima").comparisons}
    layers = {c.name: c for c in CLAIMS.get("lower_layer_invariance").comparisons}
    assert not wider["adaptive_sharpness"].primary and not layers["group_lambda_max_high_vs_low"].primary
    p = make_pairs(q=3.0)[0]

    def with_(ev, **fields):  # noqa: ANN001, ANN202
        return dataclasses.replace(ev, analysis=dataclasses.replace(ev.analysis, **fields))

    def adapt(v: float) -> AdaptiveSharpnessResult:
        return AdaptiveSharpnessResult(v, 0.1, 0.1 + v, 0.05, 2.0, 5, 1, 0.5, 6, 0.05, 0.0, 0)

    def gc(low: float, high: float, res: float = 1e-6) -> GroupCurvatureResult:
        gs = tuple(GroupCurvature(n, 10, lam, res, True, 4, 1.0, 0.1, 2, 2)
                   for n, lam in (("low", low), ("middle", 1.0), ("high", high)))
        return GroupCurvatureResult(gs, 1e-3, 8, "LA", "hutchinson", 2, "autograd", 0, 18)

    pair = dataclasses.replace(p, pretrained=with_(p.pretrained, adaptive_sharpness=adapt(0.02),
                                                   group_curvature=gc(1.0, 4.0)),
                               scratch=with_(p.scratch, adaptive_sharpness=adapt(0.08)))
    assert wider["adaptive_sharpness"].effect(pair) == pytest.approx(math.log(4.0))
    assert layers["group_lambda_max_high_vs_low"].effect(pair) == pytest.approx(math.log(4.0))
    unconverged = dataclasses.replace(pair, pretrained=with_(pair.pretrained, group_curvature=gc(1.0, 4.0, res=1.0)))
    with pytest.raises(ValueError, match="not converged"):
        layers["group_lambda_max_high_vs_low"].effect(unconverged)
    with pytest.raises(ValueError, match="no adaptive sharpness"):
        wider["adaptive_sharpness"].effect(dataclasses.replace(p, scratch=with_(p.scratch, adaptive_sharpness=None)))
    with pytest.raises(ValueError, match="no per-group curvature"):
        layers["group_lambda_max_high_vs_low"].effect(
            dataclasses.replace(p, pretrained=with_(p.pretrained, group_curvature=None)))
