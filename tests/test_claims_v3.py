"""Science v3's rules (claims/REGISTRATION_V3.md), each by the cases that define it, not by what the code gives:
censored effects as intervals judged on their unfavourable end (cases A, B and C of issue 36), saturation and
resolution as "undecidable", and the convergence rule read from the training record."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from claims import effects as fx
from claims.base import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    UNDECIDABLE,
    Comparison,
    Pair,
    summarize,
)
from claims.evaluate import evaluate_comparison
from claims.preconditions import (
    MAX_CONVERGENCE_LOSS_DROP,
    both_converged,
    convergence_drop,
    convergence_reason,
    epoch_mean_losses,
)

MIN = math.log(1.25)  # 0.223, §5.1's registered minimum
LOWER, UPPER = "lower", "upper"


def _verdict(values: list[float], min_effect: float = MIN) -> str:
    """The per-task verdict of ``values`` (floats or fx.Bound) through the whole comparison machinery."""
    comp = Comparison("w", "width", lambda p: values[p.seed], min_effect, "log ratio")
    ev = SimpleNamespace(learned=True, learned_reason=lambda: "")
    return evaluate_comparison(comp, [Pair("base", "sst2", s, ev, ev) for s in range(len(values))]).per_task[
        "sst2"].verdict


# -- §1 censored effects are intervals -------------------------------------------------------------------------
def test_case_a_lower_bounds_below_the_minimum_cannot_refute() -> None:
    """Pretrained censored in every pair: the true effects are at least +0.095..+0.113 and could be +0.69. A lower
    bound can never support "not reproduced" (issue 27's rule gave not_reproduced [+0.08, +0.13])."""
    bounds = [fx.Bound(v, LOWER) for v in (0.095, 0.113, 0.104)]
    assert _verdict(bounds) == INCONCLUSIVE
    s = summarize(bounds, MIN, bounds=3, lows=[b.lo for b in bounds], highs=[b.hi for b in bounds])
    assert s.blocked_upper == 3 and s.blocked_lower == 0 and "not reproduced unreachable" in s.note
    # the same numbers measured exactly are refuted: the bound, not the numbers, is what keeps A open
    assert _verdict([0.095, 0.113, 0.104]) == NOT_REPRODUCED


def test_case_a_lower_bounds_above_the_minimum_reproduce() -> None:
    assert _verdict([fx.Bound(v, LOWER) for v in (0.40, 0.45, 0.50)]) == REPRODUCED


def test_case_b_upper_bounds_below_the_minimum_refute() -> None:
    """An upper bound in [0, 0.223) already says "below the threshold" (issue 27 threw such pairs away)."""
    assert _verdict([fx.Bound(v, UPPER) for v in (0.10, 0.15, 0.12)]) == NOT_REPRODUCED
    assert _verdict([fx.Bound(v, UPPER) for v in (0.10, 0.15, 0.12)] + [0.11]) == NOT_REPRODUCED


def test_case_b_upper_bounds_can_never_reproduce() -> None:
    assert _verdict([fx.Bound(v, UPPER) for v in (1.0, 1.2, 1.1)]) == INCONCLUSIVE


def test_case_c_one_upper_bound_blocks_reproduced_whatever_value_it_allows() -> None:
    """Four exact effects near +2 and one upper bound −0.01: issue 27 said reproduced [+0.48, +2.72]; with −3, a
    value the bound allows, the t-interval is inconclusive -- so the bound must not decide "reproduced"."""
    exact = [1.9, 2.1, 2.0, 2.2]
    assert _verdict(exact + [fx.Bound(-0.01, UPPER)]) == INCONCLUSIVE
    assert _verdict(exact + [-3.0]) == INCONCLUSIVE  # the completion the bound allows
    assert _verdict(exact + [fx.Bound(-3.0, UPPER)]) == INCONCLUSIVE
    assert _verdict(exact + [2.05]) == REPRODUCED  # without the bound the exact pairs reproduce


def test_directions_use_their_own_ends_and_report_them() -> None:
    vals = [0.5, 0.6, fx.Bound(0.55, LOWER)]
    s = summarize(vals, MIN, bounds=1, lows=[0.5, 0.6, 0.55], highs=[0.5, 0.6, math.inf])
    assert s.verdict == REPRODUCED and s.lower[0] == 3 and s.lower[1] == pytest.approx(0.55)
    assert s.blocked_upper == 1 and math.isnan(s.upper[2])


def test_measured_effects_give_the_plain_t_rule() -> None:
    for vals, want in (([0.5, 0.6, 0.55], REPRODUCED), ([0.0, 0.05, 0.02], NOT_REPRODUCED),
                       ([0.1, 5.0, 9.9], INCONCLUSIVE)):
        s = summarize(vals, MIN)
        assert s.verdict == want and s.lower == s.upper and (s.lower[2], s.lower[3]) == (s.ci_low, s.ci_high)


def test_both_sides_censored_is_excluded_with_its_reason() -> None:
    comp = Comparison("w", "w", lambda p: fx.bounded_log_ratio(fx.Measured(1.0, True), fx.Measured(1.0, True)),
                      MIN, "log ratio")
    ev = SimpleNamespace(learned=True, learned_reason=lambda: "")
    r = evaluate_comparison(comp, [Pair("base", "t", 0, ev, ev)])
    assert r.per_task["t"].n == 0 and "both sides censored" in r.excluded[0]


# -- §4 undecidable ----------------------------------------------------------------------------------------------
def _pairs(n: int, task: str = "t") -> list[Pair]:
    return [Pair("base", task, s, SimpleNamespace(learned=True, learned_reason=lambda: "", seed=s),
                 SimpleNamespace(learned=True, learned_reason=lambda: "", seed=s)) for s in range(n)]


def test_saturated_pairs_are_set_aside_and_leave_the_task_undecidable() -> None:
    effects = {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.2}
    comp = Comparison("mono", "m", lambda p: effects[p.seed], 0.05, "difference",
                      saturated=lambda p: p.seed < 3)
    r = evaluate_comparison(comp, _pairs(4))
    st = r.per_task["t"]
    assert st.verdict == UNDECIDABLE and "saturated" in st.note and st.n == 1
    assert sum("saturated" in e for e in r.excluded) == 3


def test_a_few_saturated_pairs_leave_the_rest_to_decide() -> None:
    effects = {0: 0.0, 1: 0.3, 2: 0.35, 3: 0.32}
    comp = Comparison("mono", "m", lambda p: effects[p.seed], 0.05, "difference", saturated=lambda p: p.seed == 0)
    assert evaluate_comparison(comp, _pairs(4)).per_task["t"].verdict == REPRODUCED


def test_a_spread_below_the_resolution_is_undecidable() -> None:
    """Dev-accuracy differences on 100 examples move in steps of 0.01: a spread of 0.001 is rounding."""
    effects = {0: 0.05, 1: 0.051, 2: 0.05}
    quantum = Comparison("acc", "a", lambda p: effects[p.seed], 0.01, "difference", resolution=lambda p: 0.01)
    r = evaluate_comparison(quantum, _pairs(3))
    assert r.per_task["t"].verdict == UNDECIDABLE and "resolution" in r.per_task["t"].note
    plain = Comparison("acc", "a", lambda p: effects[p.seed], 0.01, "difference")
    assert evaluate_comparison(plain, _pairs(3)).per_task["t"].verdict == REPRODUCED


# -- §3 convergence from the training record ---------------------------------------------------------------------
def _metrics(losses: list[float], per_epoch: int) -> SimpleNamespace:
    return SimpleNamespace(train_loss=losses, steps_per_epoch=per_epoch)


def _arm(losses: list[float], per_epoch: int = 2, *, extended: list[float] | None = None, lr: float = 1e-4,
         ext_lr: float = 1e-4, init: str = "pretrained") -> SimpleNamespace:
    return SimpleNamespace(init=init, status="complete", metrics=_metrics(losses, per_epoch),
                           overfit=None if extended is None else _metrics(extended, per_epoch),
                           learning_rate=lr, overfit_learning_rate=ext_lr)


def test_epoch_means_include_a_partial_last_epoch() -> None:
    assert epoch_mean_losses(_metrics([1.0, 3.0, 2.0, 4.0, 5.0], 2)) == [2.0, 3.0, 5.0]


def test_extended_run_at_the_same_rate_decides() -> None:
    """The MRPC case of the 2026-11-27 cpu run: own last epoch 0.43, the extended run at the same rate 0.09."""
    arm = _arm([0.6, 0.5, 0.44, 0.42], extended=[0.6, 0.5, 0.3, 0.2, 0.1, 0.08])
    drop, how = convergence_drop(arm)
    assert drop == pytest.approx(0.43 - 0.09) and "extended run" in how
    assert convergence_reason(arm).startswith("pretrained had not converged")
    # a plateau in its own record does not rescue it: the extended run is the better evidence
    flat = _arm([0.43, 0.43, 0.43, 0.43], extended=[0.5, 0.4, 0.2, 0.1, 0.09, 0.09])
    assert convergence_reason(flat) is not None


def test_extended_run_at_the_same_level_converges_at_the_tolerance() -> None:
    tol = MAX_CONVERGENCE_LOSS_DROP
    at = _arm([0.5, 0.5, 0.3, 0.3], extended=[0.5, 0.5, 0.4, 0.3, 0.3 - tol + 1e-9, 0.3 - tol + 1e-9])
    assert convergence_reason(at) is None
    past = _arm([0.5, 0.5, 0.3, 0.3], extended=[0.5, 0.5, 0.4, 0.3, 0.3 - tol - 1e-3, 0.3 - tol - 1e-3])
    assert convergence_reason(past) is not None


def test_an_extended_run_at_another_rate_is_not_used_then_the_plateau_decides() -> None:
    falling = _arm([0.6, 0.6, 0.4, 0.4], extended=[0.4, 0.4, 0.39, 0.39], ext_lr=2e-4)
    drop, how = convergence_drop(falling)
    assert drop == pytest.approx(0.2) and "epoch before" in how
    assert convergence_reason(falling) is not None
    plateau = _arm([0.6, 0.6, 0.42, 0.41, 0.40, 0.40], ext_lr=2e-4)
    assert convergence_reason(plateau) is None


def test_one_epoch_without_an_extended_run_is_not_shown_converged() -> None:
    assert "cannot be shown" in convergence_reason(_arm([0.5, 0.4], per_epoch=4))


def test_both_converged_names_only_the_arm_that_did_not() -> None:
    ok = _arm([0.6, 0.6, 0.4, 0.4], extended=[0.6, 0.6, 0.4, 0.4, 0.39, 0.39], init="scratch")
    bad = _arm([0.6, 0.5, 0.44, 0.42], extended=[0.6, 0.5, 0.3, 0.2, 0.1, 0.08])
    why = both_converged()(Pair("base", "mrpc", 0, bad, ok))
    assert why and why.startswith("pretrained had not converged") and "scratch" not in why
    assert both_converged()(Pair("base", "mrpc", 0, ok, ok)) is None


def test_golden_cpu_mrpc_pretrained_arms_are_not_converged() -> None:
    """The review's case on the committed 2026-11-27 cpu analyses: every MRPC pretrained arm of the base setting
    (its extended runs at the same rate fall far below its θ1 loss) is not converged under v3."""
    from tests.golden import FIXTURES, rebuild_pairs

    _, _, pairs = rebuild_pairs(FIXTURES / "cpu")
    mrpc = [p for p in pairs if p.task == "mrpc" and p.setting == "base"]
    assert len(mrpc) == 3
    for p in mrpc:
        why = convergence_reason(p.pretrained)
        assert why is not None and "had not converged" in why and "extended run" in why, why


# -- §5 scale-aware primaries ----------------------------------------------------------------------------------------
def test_wider_optima_primaries_are_the_scale_aware_ones_and_say_what_they_control() -> None:
    from claims import CLAIMS

    comps = {c.name: c for c in CLAIMS.get("wider_optima").comparisons}
    primaries = {n for n, c in comps.items() if c.primary}
    assert primaries == {"scaled_lambda_max_learned_level", "random_width_learned_level", "basin_area_scale_aware"}
    for n in primaries:
        assert "controls" in comps[n].controls and "leaves" in comps[n].controls
    # the biased secondaries print the quantity that biases them
    from tests.claims_fixtures import make_pairs

    p = make_pairs(q=3.0)[0]
    assert "‖θ1‖ scratch/pretrained" in comps["hessian_lambda_max_theta1"].values(p)
    assert {"lr pretrained", "lr scratch"} <= set(comps["hessian_lambda_max_learned_level"].values(p))
    assert "‖δ1‖ scratch/pretrained" in comps["basin_area_paper_units"].values(p)


def test_scaled_lambda_max_is_read_at_the_matched_point_and_old_analyses_are_excluded() -> None:
    import dataclasses

    from claims import CLAIMS
    from tests.claims_fixtures import make_pairs

    comp = next(c for c in CLAIMS.get("wider_optima").comparisons if c.name == "scaled_lambda_max_learned_level")
    p = make_pairs(q=3.0)[0]
    s = p.scratch.analysis.matched_learned.scaled_hessian.eigenvalues[0]
    q = p.pretrained.analysis.matched_learned.scaled_hessian.eigenvalues[0]
    assert comp.effect(p) == pytest.approx(math.log(s / q)) and comp.effect(p) > 0
    old = dataclasses.replace(p, scratch=dataclasses.replace(p.scratch, analysis=dataclasses.replace(
        p.scratch.analysis, matched_learned=dataclasses.replace(p.scratch.analysis.matched_learned,
                                                                scaled_hessian=None), version=3)))
    r = evaluate_comparison(comp, [old])
    assert r.per_task["sst2"].n == 0 and "predates science v3" in r.excluded[0]


def test_layer_swap_cost_is_high_minus_low_on_the_pretrained_arm() -> None:
    from claims import CLAIMS
    from tests.claims_fixtures import make_pairs

    comp = next(c for c in CLAIMS.get("lower_layer_invariance").comparisons if c.name == "layer_swap_cost")
    assert comp.primary and comp.arms == ("pretrained",)
    p = make_pairs(q=3.0)[0]
    sw = p.pretrained.analysis.layer_swap_dev
    assert comp.effect(p) == pytest.approx(sw["high"].loss_increase - sw["low"].loss_increase)
    assert comp.effect(p) > comp.min_effect


# -- §6 flatness-generalisation rank association ---------------------------------------------------------------------
def _rank_pairs(xy: list[tuple[float, float]], task: str = "sst2") -> list[Pair]:
    """Pairs whose arms carry (x, y) directly: arm i of pair i//2."""
    def arm(x: float, y: float, init: str) -> SimpleNamespace:
        return SimpleNamespace(learned=True, learned_reason=lambda: "", xy=(x, y), init=init)

    return [Pair("base", task, i, arm(*xy[2 * i], "pretrained"), arm(*xy[2 * i + 1], "scratch"))
            for i in range(len(xy) // 2)]


def _rank_comp(min_effect: float = 0.3) -> Comparison:
    return Comparison("rank", "r", lambda p: math.nan, min_effect, "Spearman ρ", primary=False,
                      across_runs=lambda ev: ev.xy)


def test_rank_association_by_hand() -> None:
    """ρ and its Fisher-z interval, against a hand computation: 8 runs, ranks agree except one swap."""
    xy = [(1, 10), (2, 20), (3, 40), (4, 30), (5, 50), (6, 60), (7, 70), (8, 80)]
    st = evaluate_comparison(_rank_comp(), _rank_pairs(xy)).per_task["sst2"]
    rho = 1 - 6 * 2 / (8 * 63)  # one adjacent swap: Σd² = 2
    z, half = math.atanh(rho), 1.959963984540054 * 1.06 / math.sqrt(5)
    assert st.n == 8 and st.mean == pytest.approx(rho)
    assert (st.ci_low, st.ci_high) == (pytest.approx(math.tanh(z - half)), pytest.approx(math.tanh(z + half)))
    assert st.verdict == REPRODUCED


def test_rank_association_against_the_paper_and_without_power() -> None:
    anti = [(i, -i * 1.0) for i in range(1, 13)]
    assert evaluate_comparison(_rank_comp(), _rank_pairs(anti)).per_task["sst2"].verdict == NOT_REPRODUCED
    few = [(1, 1), (2, 2), (3, 3), (4, 4)]
    st = evaluate_comparison(_rank_comp(), _rank_pairs(few)).per_task["sst2"]
    assert st.verdict == INCONCLUSIVE and "needs" in st.note  # 4 runs: no interval
    six = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)]  # 3 seeds: even ρ = 1 ... the interval reaches far
    assert evaluate_comparison(_rank_comp(), _rank_pairs(six)).per_task["sst2"].ci_low < 0.9
    flat = [(1, 0.5)] * 6
    assert evaluate_comparison(_rank_comp(), _rank_pairs(flat)).per_task["sst2"].verdict == UNDECIDABLE


def test_rank_association_leaves_out_unlearned_runs() -> None:
    pairs = _rank_pairs([(i, i) for i in range(1, 11)])
    pairs[0] = Pair("base", "sst2", 0, SimpleNamespace(learned=False, learned_reason=lambda: "no", xy=(0, 0)),
                    pairs[0].scratch)
    r = evaluate_comparison(_rank_comp(), pairs)
    assert r.per_task["sst2"].n == 9 and r.excluded == ("sst2/seed0/pretrained: no",)
    assert {row["init"] for row in r.per_pair} == {"pretrained", "scratch"}


def test_flatness_rank_is_a_registered_secondary_of_section_6() -> None:
    from claims import CLAIMS
    from tests.claims_fixtures import make_pairs

    comp = next(c for c in CLAIMS.get("generalization_consistency").comparisons
                if c.name == "flatness_generalization_rank")
    assert not comp.primary and comp.min_effect == 0.3 and "v3" in comp.registered
    ev = make_pairs(q=3.0)[0].pretrained
    x, y = comp.across_runs(ev)
    assert x == pytest.approx(-math.log(ev.analysis.scaled_hessian.eigenvalues[0]))
    assert y == ev.metrics.evals[-1].dev_accuracy


def test_a_perfect_rank_order_gets_the_interval_of_one_swap() -> None:
    six = [(i, i) for i in range(1, 7)]
    st = evaluate_comparison(_rank_comp(), _rank_pairs(six)).per_task["sst2"]
    cap = 1 - 12 / (6 * 35)
    half = 1.959963984540054 * 1.06 / math.sqrt(3)
    assert st.mean == 1.0 and st.ci_low == pytest.approx(math.tanh(math.atanh(cap) - half))
