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
from claims.preconditions import (
    MAX_LOSS_DROP_PAST_THETA1,
    both_converged,
    loss_drop_past_theta1,
)
from repro.landscape import CurveResult, DirectionInfo
from tests.claims_fixtures import make_pairs

M = fx.Measured


# -- censored bounds -----------------------------------------------------------------------------------------------
def test_bounded_log_ratio_measured_values_are_exact() -> None:
    r = fx.bounded_log_ratio(M(2.0, False), M(1.0, False))
    assert r == pytest.approx(math.log(2.0)) and not isinstance(r, fx.Bound)


def test_censored_numerator_is_a_lower_bound_counted_only_when_positive() -> None:
    r = fx.bounded_log_ratio(M(3.0, True), M(1.0, False))
    assert isinstance(r, fx.Bound) and r.side == "lower" and float(r) == pytest.approx(math.log(3.0))
    with pytest.raises(ValueError, match="does not decide the sign"):
        fx.bounded_log_ratio(M(0.5, True), M(1.0, False))  # true ratio ≥ log 0.5 < 0: could be either sign


def test_censored_denominator_is_an_upper_bound_counted_only_when_negative() -> None:
    r = fx.bounded_log_ratio(M(0.5, False), M(2.0, True))  # the scratch width is at least 2: ratio ≤ log 0.25
    assert isinstance(r, fx.Bound) and r.side == "upper" and float(r) == pytest.approx(math.log(0.25))
    with pytest.raises(ValueError, match="does not decide the sign"):
        fx.bounded_log_ratio(M(3.0, False), M(2.0, True))


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
        return SimpleNamespace(analysis=SimpleNamespace(random_curves=(curve,)), init="x")

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


# -- convergence precondition --------------------------------------------------------------------------------------
def _curve_ev(init: str, past: float) -> SimpleNamespace:
    """An arm whose loss along θ0 → θ1 is 0.5 at θ1 and ``0.5 − past`` at α = 1.25 (still falling when > 0)."""
    alphas = (0.0, 0.5, 1.0, 1.25)
    c = CurveResult(alphas, {"train_loss": (0.69, 0.6, 0.5, 0.5 - past)}, DirectionInfo("optimization", 1.0), 1)
    return SimpleNamespace(init=init, analysis=SimpleNamespace(curve=c))


def test_loss_drop_past_theta1_by_hand() -> None:
    assert loss_drop_past_theta1(_curve_ev("x", 0.2)) == pytest.approx(0.2)
    assert loss_drop_past_theta1(_curve_ev("x", -0.1)) == pytest.approx(-0.1)
    no_beyond = SimpleNamespace(init="x", analysis=SimpleNamespace(curve=CurveResult(
        (0.0, 1.0), {"train_loss": (0.7, 0.5)}, DirectionInfo("optimization", 1.0), 1)))
    with pytest.raises(ValueError, match="no point beyond"):
        loss_drop_past_theta1(no_beyond)


def test_both_converged_excludes_an_arm_still_falling_past_theta1_at_the_threshold() -> None:
    check = both_converged()
    at = MAX_LOSS_DROP_PAST_THETA1
    assert check(Pair("base", "t", 0, _curve_ev("pretrained", at), _curve_ev("scratch", 0.0))) is None
    why = check(Pair("base", "t", 0, _curve_ev("pretrained", at + 0.01), _curve_ev("scratch", 0.0)))
    assert why and why.startswith("pretrained had not converged") and "scratch" not in why


@pytest.mark.parametrize("name, needs", [("final_train_loss", True), ("trajectory_straightness", True),
                                         ("steps_to_loss_level", False)])
def test_final_loss_and_straightness_need_converged_arms_speed_does_not(name: str, needs: bool) -> None:
    comp = next(c for c in CLAIMS.get("easier_optimization").comparisons if c.name == name)
    kinds = [getattr(r, "kind", "") for r in comp.requires]
    assert ("convergence" in kinds) == needs


def test_an_unconverged_pretrained_arm_is_excluded_from_the_final_loss_comparison() -> None:
    pairs = make_pairs(q=3.0)
    ev = pairs[0].pretrained
    a = ev.analysis
    y = list(a.curve.values["train_loss"])
    y[-1] = y[list(a.curve.alphas).index(1.0)] - 0.3  # still falling past θ1
    curve = dataclasses.replace(a.curve, values={**a.curve.values, "train_loss": tuple(y)})
    pairs[0] = dataclasses.replace(pairs[0], pretrained=dataclasses.replace(
        ev, analysis=dataclasses.replace(a, curve=curve)))
    comp = next(c for c in CLAIMS.get("easier_optimization").comparisons if c.name == "final_train_loss")
    r = evaluate_comparison(comp, pairs)
    assert len(r.excluded) == 1 and "had not converged" in r.excluded[0] and r.overall.n == len(pairs) - 1


# -- matched curvature at the learned level ------------------------------------------------------------------------
def test_primary_curvature_is_read_at_the_learned_level_and_the_half_level_is_secondary() -> None:
    comps = {c.name: c for c in CLAIMS.get("wider_optima").comparisons}
    assert comps["hessian_lambda_max_learned_level"].primary
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
