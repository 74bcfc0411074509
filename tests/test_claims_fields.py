"""The claims' small measurements, preconditions and evaluation records, field by field, against hand oracles.

tests/test_claims.py checks that whole claims come out right on synthetic evidence whose answer is known; this
file pins the pieces those verdicts are built from where a whole-claim test cannot see them: the boundaries of
the verdict rule and of every gate (an equality on either side of ``<`` / ``≤`` decides whether a pair counts),
the exact binomial precondition against a hand-summed tail, what each effect helper reads from the evidence
(computed here by hand on tiny hand-made evidence, never with the helper's own code), and every field of a
comparison's and a claim's result, including the exclusion reasons the report prints.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from claims import CLAIMS
from claims import effects as fx
from claims.base import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    Comparison,
    Pair,
    decide,
    generalization_p_value,
    t_interval,
)
from claims.evaluate import _num, evaluate_claim, evaluate_comparison
from claims.generalization_consistency import _agree
from claims.preconditions import any_generalized, both_generalized, generalization_reason
from repro.curvature import EigenResult, TraceResult
from repro.metrics import Straightness
from repro.training import EvalRecord
from tests.claims_fixtures import make_pairs

T_975 = {2: 4.302652729749462, 3: 3.1824463052837078, 6: 2.4469118511449786}  # Student-t 0.975 quantiles by d.f.


def _binom_tail(k: int, n: int, q: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, q), summed exactly in rationals (the oracle for the exact binomial test)."""
    qq = Fraction(q)
    return float(sum(math.comb(n, i) * qq**i * (1 - qq) ** (n - i) for i in range(k, n + 1)))


# ---------------------------------------------------------------------------------------------- statistics (base)

def test_generalization_p_value_is_the_one_sided_binomial_tail_above_the_majority_rate() -> None:
    """The precondition's p-value is P(X ≥ k | majority rate): checked against an exact rational sum at a majority
    rate that is not 1/2 (a test against the wrong rate would pass at 1/2), at n = 1 (one example is still a test),
    and at the edges where the test is undefined (no examples, no accuracy) or can never reject (rate 1)."""
    for acc, n, q in [(0.8, 10, 0.7), (0.6, 400, 0.5), (0.58, 50, 0.45), (1.0, 1, 0.5), (0.0, 7, 0.3)]:
        k = round(acc * n)
        assert generalization_p_value(acc, n, q) == pytest.approx(_binom_tail(k, n, q), rel=1e-9), (acc, n, q)
    assert generalization_p_value(1.0, 1, 0.5) == pytest.approx(0.5, rel=1e-12)
    assert math.isnan(generalization_p_value(0.9, 0, 0.5))  # no dev examples: no test
    assert math.isnan(generalization_p_value(float("nan"), 100, 0.5))
    assert generalization_p_value(1.0, 10, 1.0) == 1.0  # a majority rate of 1 cannot be beaten


def test_verdict_rule_boundaries_interval_strictly_above_zero_mean_at_least_the_threshold() -> None:
    """decide(): reproduced needs ci_low > 0 (an interval touching 0 does not exclude 0) and mean ≥ min_effect
    (reaching the threshold is enough); not reproduced needs ci_high < min_effect (an interval reaching the
    threshold does not exclude it); an interval with a non-finite end decides nothing."""
    assert decide(0.5, 0.1, 0.9, 0.5) == REPRODUCED  # mean exactly at the threshold
    assert decide(1.0, 0.0, 2.0, 0.5) == INCONCLUSIVE  # interval touches 0
    assert decide(0.3, -0.1, 0.5, 0.5) == INCONCLUSIVE  # interval ends exactly at the threshold
    assert decide(0.3, -0.1, 0.4999, 0.5) == NOT_REPRODUCED
    assert decide(1.0, 0.5, float("inf"), 0.1) == INCONCLUSIVE
    assert decide(-1.0, float("-inf"), 0.0, 0.1) == INCONCLUSIVE
    assert decide(1.0, float("nan"), 2.0, 0.1) == INCONCLUSIVE


def test_t_interval_is_computed_in_float64_whatever_the_input_dtype() -> None:
    """Effects arriving as float32 (e.g. from a tensor) must give the float64 interval of the same values: float32
    accumulation loses the digits an interval of small effects around a large mean needs."""
    x32 = np.array([16777216.0, 1.0, 1.0], dtype=np.float32)  # 2^24 + 1 is not a float32
    x = [16777216.0, 1.0, 1.0]
    m = math.fsum(x) / 3
    half = T_975[2] * statistics.stdev(x) / math.sqrt(3)
    lo, hi = t_interval(x32)
    assert lo == pytest.approx(m - half, rel=1e-12) and hi == pytest.approx(m + half, rel=1e-12)
    r = np.random.default_rng(0).uniform(0.1, 0.7, size=(4, 1000)).astype(np.float32)
    lo2, hi2 = t_interval(r)
    lo64, hi64 = t_interval(r.astype(np.float64))
    assert lo2.dtype == np.float64 and np.array_equal(lo2, lo64) and np.array_equal(hi2, hi64)


# --------------------------------------------------------------------------------------------- effect helpers

def test_log_ratio_is_defined_only_for_two_positive_values_after_flooring() -> None:
    """A log ratio with a zero or negative side is undefined (nan, the pair is excluded), never an exception or
    ±inf; the floor makes a quantity that reached ~0 comparable."""
    assert fx.log_ratio(math.e**2, math.e) == pytest.approx(1.0, rel=1e-12)
    for num, den in [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (-1.0, 2.0), (2.0, -1.0)]:
        assert math.isnan(fx.log_ratio(num, den)), (num, den)
    assert fx.log_ratio(0.0, 1.0, floor=1e-4) == pytest.approx(math.log(1e-4), rel=1e-12)


def _hess_ev(eigs: tuple[float, ...], residuals: tuple[float, ...], tol: float, **matched: object) -> SimpleNamespace:
    eig = EigenResult(eigs, residuals, False, 10, tol, "lanczos", 0)
    m = SimpleNamespace(level=0.35, reached=True, loss=0.35, hessian=eig)
    m.__dict__.update(matched)
    return SimpleNamespace(init="pretrained", analysis=SimpleNamespace(hessian=eig, matched=m))


def test_lambda_max_residual_gate_at_its_boundary_and_at_zero_curvature() -> None:
    """‖Hv − λv‖ ≤ tol·|λ| accepts equality (2^-4 / 2^6 = 2^-10 exactly); at λ = 0 the residual is read as absolute
    (tol·1), not halved; a rejection names the arm and the quantity so the exclusion says which run to redo."""
    assert fx.lambda_max(_hess_ev((64.0, 1.0), (2.0**-4, 9.0), 2.0**-10)) == 64.0
    assert fx.lambda_max(_hess_ev((0.0,), (0.5e-3,), 1e-3)) == 0.0
    with pytest.raises(ValueError, match="not converged") as err:
        fx.lambda_max(_hess_ev((0.0,), (1.5e-3,), 1e-3))  # 1.5e-3 > 1e-3 (it would pass if divided by 2)
    assert "pretrained" in str(err.value) and "θ1" in str(err.value)
    with pytest.raises(ValueError, match="not converged") as err:
        fx.matched_lambda_max(_hess_ev((40.0,), (1.0,), 1e-3))
    assert "pretrained" in str(err.value) and "matched" in str(err.value)


def test_matched_quantities_exist_only_where_the_trajectory_reached_the_matched_loss() -> None:
    """λ_max and the loss at the matched level are read only when the level was reached *and* recorded: a
    stray Hessian or loss on a run that never got there must not be used."""
    assert fx.matched_lambda_max(_hess_ev((40.0,), (1e-4,), 1e-3)) == 40.0
    for matched in ({"reached": False}, {"hessian": None}):
        with pytest.raises(ValueError, match="never reached"):
            fx.matched_lambda_max(_hess_ev((40.0,), (1e-4,), 1e-3, **matched))
    assert fx.matched_loss(_hess_ev((1.0,), (0.0,), 1e-3, loss=0.3)) == 0.3
    for matched in ({"reached": False}, {"loss": None}, {"reached": False, "loss": None}):
        assert math.isnan(fx.matched_loss(_hess_ev((1.0,), (0.0,), 1e-3, **matched))), matched


def test_trace_is_used_only_when_positive_with_standard_error_at_most_a_tenth_of_it() -> None:
    """Hutchinson traces: SE exactly 10% of a trace below 1 is accepted; a zero trace (and a larger SE) is not."""
    def ev(est: float, se: float) -> SimpleNamespace:
        return SimpleNamespace(init="scratch", analysis=SimpleNamespace(trace=TraceResult(est, se, 10, 10, "h", 0)))

    assert fx.trace(ev(0.5, 0.05)) == 0.5  # 0.1 * 0.5 == 0.05 exactly
    for est, se in [(0.0, 0.0), (-1.0, 0.0), (1.0, 0.11)]:
        with pytest.raises(ValueError, match="more probes"):
            fx.trace(ev(est, se))


def test_smoothed_is_the_trailing_running_mean_over_the_window() -> None:
    """Hand values: window 2 over (1, 2, 4, 7) is (1, 1.5, 3, 5.5); window 1 (or less) is the curve itself; a
    window longer than the curve is the running mean from the start. Integer losses are averaged, not truncated."""
    assert fx.smoothed([1, 2, 4, 7], 2).tolist() == [1.0, 1.5, 3.0, 5.5]
    assert fx.smoothed([1.0, 2.0, 4.0, 7.0], 1).tolist() == [1.0, 2.0, 4.0, 7.0]
    assert fx.smoothed([1.0, 2.0, 4.0, 7.0], 0).tolist() == [1.0, 2.0, 4.0, 7.0]
    assert fx.smoothed([1.0, 2.0, 4.0, 7.0], 10) == pytest.approx([1.0, 1.5, 7 / 3, 3.5], rel=1e-15)


def _metrics_ev(train_loss: list[float], steps_per_epoch: int, num_labels: int = 2) -> SimpleNamespace:
    return SimpleNamespace(metrics=SimpleNamespace(train_loss=train_loss, steps_per_epoch=steps_per_epoch,
                                                   num_labels=num_labels, total_steps=len(train_loss)))


def test_steps_to_level_first_step_whose_epoch_average_reaches_the_level_else_censored() -> None:
    """Level 0.5·ln 2 = 0.347; the 2-step running means of (0.7, 0.6, 0.3, 0.2, 0.1) are (0.7, 0.65, 0.45, 0.25,
    0.15): first at most the level at step 4. A run that never gets there counts as total steps + 1 (5 + 1), and a
    loss exactly at the level counts as reaching it."""
    losses = [0.7, 0.6, 0.3, 0.2, 0.1]
    assert fx.steps_to_level(_metrics_ev(losses, 2), 0.5) == 4.0
    assert fx.steps_to_level(_metrics_ev(losses, 1), 0.5) == 3.0
    assert fx.steps_to_level(_metrics_ev(losses, 2), 0.1) == 6.0
    level = 0.5 * math.log(2)
    assert fx.steps_to_level(_metrics_ev([level, 1.0, 1.0], 1), 0.5) == 1.0


def test_train_loss_auc_is_the_float64_mean_per_step_of_any_nonempty_run() -> None:
    """Hand means; a one-step run has an AUC (its loss); an empty one has none; float32 losses are averaged in
    float64."""
    assert fx.train_loss_auc(_metrics_ev([0.5, 0.25], 1)) == 0.375
    assert fx.train_loss_auc(_metrics_ev([0.3], 1)) == 0.3
    with pytest.raises(ValueError, match="(?i)training steps"):
        fx.train_loss_auc(_metrics_ev([], 1))
    vals = [np.float32(v) for v in np.random.default_rng(0).uniform(0.1, 0.7, 1000)]
    assert fx.train_loss_auc(_metrics_ev(vals, 1)) == pytest.approx(math.fsum(map(float, vals)) / 1000, rel=1e-13)


def test_straightness_helpers_hand_values_and_missing_evidence_named() -> None:
    """Full-space straightness is the recorded ratio; the projected path (0,0)→(1,1)→(2,0) has displacement 2 over
    length 2√2. Missing evidence raises with the reason the exclusion will print (not a bare 'None')."""
    full = SimpleNamespace(init="pretrained", analysis=SimpleNamespace(straightness_full=Straightness(1.0, 2.0, 0.5)))
    assert fx.full_straightness(full) == 0.5
    proj = SimpleNamespace(alphas=(0.0, 1.0, 2.0), betas=(0.0, 1.0, 0.0))
    assert fx.path_straightness(SimpleNamespace(analysis=SimpleNamespace(projection=proj))) == \
        pytest.approx(1 / math.sqrt(2), rel=1e-12)
    with pytest.raises(ValueError, match="(?i)snapshots"):
        fx.full_straightness(SimpleNamespace(analysis=SimpleNamespace(straightness_full=None)))
    with pytest.raises(ValueError, match="(?i)projection"):
        fx.path_straightness(SimpleNamespace(analysis=SimpleNamespace(projection=None)))
    no_surface = SimpleNamespace(init="pretrained", analysis=SimpleNamespace(surface=None))
    for fn in (fx.basin, _agree):
        with pytest.raises(ValueError, match="(?i)2d surface"):
            fn(no_surface)


def test_curve_monotonicity_keeps_grid_points_within_rounding_of_both_ends() -> None:
    """Points at α = −1e-9 and 1 + 1e-9 are θ0 and θ1 up to rounding and belong to the segment: the kept losses
    (1, 3, 2) have total-variation ratio |2 − 1| / (2 + 1) = 1/3; dropping either end would give 1."""
    c = SimpleNamespace(alphas=(-0.5, -1e-9, 0.5, 1 + 1e-9, 1.5), values={"train_loss": (0.0, 1.0, 3.0, 2.0, 9.0)})
    assert fx.curve_monotonicity(SimpleNamespace(analysis=SimpleNamespace(curve=c))) == pytest.approx(1 / 3)


def test_depth_correlation_is_spearman_over_layers_and_needs_five() -> None:
    """Relative changes (0.1, 0.3, 0.2, 0.5, 0.4) over layers 0-4 rank (1, 3, 2, 5, 4): Σd² = 4, ρ = 1 − 6·4/(5·24)
    = 0.8. Non-layer keys are ignored; four layers are too few."""
    rc = {"layer.0": 0.1, "layer.1": 0.3, "layer.2": 0.2, "layer.3": 0.5, "layer.4": 0.4, "low": 9.0,
          "embeddings": -9.0}
    assert fx.depth_correlation(SimpleNamespace(analysis=SimpleNamespace(relative_change=rc))) == \
        pytest.approx(0.8, rel=1e-12)
    del rc["layer.4"]
    with pytest.raises(ValueError, match="too few"):
        fx.depth_correlation(SimpleNamespace(analysis=SimpleNamespace(relative_change=rc)))


def test_overfit_drop_reads_every_evaluation_after_initialisation_only() -> None:
    """Step 0 (the initial model) is not part of training: with it set to the best accuracy and lowest loss, the
    drop must still come from steps 1-3: best 0.8 − last 0.6 = 0.2 and last 0.6 − lowest 0.3 = 0.3."""
    evals = [EvalRecord(0, 0.0, 0.1, 0.9), EvalRecord(1, 0.1, 0.5, 0.8), EvalRecord(2, 0.2, 0.3, 0.7),
             EvalRecord(3, 0.3, 0.6, 0.6)]
    drop, rise = fx.overfit_drop(SimpleNamespace(evals=evals))
    assert drop == pytest.approx(0.2, abs=1e-12) and rise == pytest.approx(0.3, abs=1e-12)
    with pytest.raises(ValueError, match="(?i)dev evaluations"):
        fx.overfit_drop(SimpleNamespace(evals=evals[:1]))


# --------------------------------------------------------------------------------------------- preconditions

def _gen_ev(final_acc: float | None, extended: list[tuple[int, float]] | None, *, n: int = 400,
            majority: float = 0.5, init: str = "pretrained") -> SimpleNamespace:
    evals = [] if final_acc is None else [EvalRecord(0, 0.0, 0.7, majority), EvalRecord(60, 1.0, 0.4, final_acc)]
    overfit = None if extended is None else SimpleNamespace(evals=[EvalRecord(s, 0.0, 0.4, a) for s, a in extended])
    return SimpleNamespace(init=init, analysis=SimpleNamespace(dev_majority_rate=majority),
                           metrics=SimpleNamespace(evals=evals, num_dev=n), overfit=overfit)


def test_generalization_precondition_final_and_best_extended_with_bonferroni() -> None:
    """Final point: the last evaluation, one test at α = 0.05 (the default point). Best of the extended run: the
    best evaluation after step 0 (a step-1 evaluation counts), tested at α / (number of evaluations). A p-value
    exactly at the level does not reject. Every way the evidence can be missing is named in the reason."""
    # 0.6 on 400 at rate 0.5: p ≈ 4e-5, generalised; 0.52: p ≈ 0.22, not.
    assert _binom_tail(240, 400, 0.5) < 1e-4 < 0.2 < _binom_tail(208, 400, 0.5) < 0.3
    assert generalization_reason(_gen_ev(0.6, None)) is None
    assert generalization_reason(_gen_ev(0.6, None), "final") is None
    r = generalization_reason(_gen_ev(0.52, None))
    assert r is not None and "final dev accuracy 0.520" in r
    # the best extended evaluation is at step 1; step 0 (init) never counts even when it is the best
    assert generalization_reason(_gen_ev(0.5, [(0, 0.99), (1, 0.6), (2, 0.52)]), "best_extended") is None
    # Bonferroni: 0.545 on 400 has p ≈ 0.04: generalised alone, not as the best of 2 (level 0.025)
    p = _binom_tail(218, 400, 0.5)
    assert 0.025 < p < 0.05
    assert generalization_reason(_gen_ev(0.5, [(1, 0.545)]), "best_extended") is None
    r = generalization_reason(_gen_ev(0.5, [(1, 0.545), (2, 0.5)]), "best_extended")
    assert r is not None and "best of 2 extended-training" in r
    # p exactly at the level: one example, majority rate 0.05, correct -> p = 0.05 exactly, not < 0.05
    assert generalization_p_value(1.0, 1, 0.05) == 0.05
    assert generalization_reason(_gen_ev(1.0, None, n=1, majority=0.05)) is not None
    # missing evidence, each with its own reason
    assert "dev evaluations" in generalization_reason(_gen_ev(None, None)).lower()
    assert "extended-training run" in generalization_reason(_gen_ev(0.6, None), "best_extended").lower()
    assert "in extended training" in generalization_reason(_gen_ev(0.6, [(0, 0.9)]), "best_extended").lower()
    assert "'bogus'" in generalization_reason(_gen_ev(0.6, None), "bogus")
    assert "no analysis" in generalization_reason(SimpleNamespace(init="scratch", analysis=None))


def test_pair_preconditions_read_each_arm_at_the_requested_point() -> None:
    """both_generalized / any_generalized default to the final evaluation, and apply the requested point to *both*
    arms: an arm that generalised only during extended training counts under best_extended, not under final."""
    gen_final = _gen_ev(0.6, None)
    pair = Pair("base", "sst2", 0, gen_final, _gen_ev(0.6, None, init="scratch"))
    assert both_generalized()(pair) is None and any_generalized()(pair) is None
    only_extended = _gen_ev(0.5, [(1, 0.6)])
    never = _gen_ev(0.5, [(1, 0.5)], init="scratch")
    never_pre = _gen_ev(0.5, [(1, 0.5)])
    only_extended_scr = _gen_ev(0.5, [(1, 0.6)], init="scratch")
    for p in (Pair("base", "sst2", 0, only_extended, never), Pair("base", "sst2", 0, never_pre, only_extended_scr)):
        assert any_generalized("best_extended")(p) is None
        r = any_generalized("final")(p)
        assert r is not None and r.startswith("neither arm generalised")
        r = both_generalized("best_extended")(p)
        assert r is not None and "did not generalise: best of 1 extended-training" in r


# --------------------------------------------------------------------------------------------- evaluation records

def _stat_by_hand(e: list[float], min_effect: float) -> dict:
    n, m = len(e), math.fsum(e) / len(e)
    sd = statistics.stdev(e)
    half = T_975[n - 1] * sd / math.sqrt(n)
    return {"n": n, "mean": m, "sd": sd, "ci_low": m - half, "ci_high": m + half, "positive": sum(v > 0 for v in e),
            "effects": tuple(e), "verdict": decide(m, m - half, m + half, min_effect)}


def _check_stat(s, want: dict) -> None:  # noqa: ANN001
    for k, v in want.items():
        got = getattr(s, k)
        if isinstance(v, float):
            assert got == pytest.approx(v, rel=1e-9, abs=1e-12), (k, got, v)
        elif k == "effects":
            assert got == pytest.approx(v, rel=1e-15), (k, got, v)
        else:
            assert got == v, (k, got, v)


def test_evaluate_comparison_every_field_exclusions_in_order_and_later_pairs_still_counted() -> None:
    """A hand-made comparison over 3 + 5 pairs: one pair whose arms both failed to learn, one failing two extra
    preconditions, one whose effect raises, one with a non-finite effect (each excluded with all its reasons,
    joined by "; "), and valid pairs *after* every exclusion (an exclusion must skip one pair, not end the loop).
    The pooled and per-task statistics are computed by hand from the effects that remain."""
    pairs = make_pairs(q=3.0, tasks=("sst2", "mrpc"), seeds=5)
    sst2 = [p for p in pairs if p.task == "sst2"]
    mrpc = [p for p in pairs if p.task == "mrpc"][:3]
    dead = dataclasses.replace(sst2[1], pretrained=dataclasses.replace(sst2[1].pretrained, status="diverged"),
                               scratch=dataclasses.replace(sst2[1].scratch, status="failed"))
    pairs = [sst2[0], dead, *sst2[2:], *mrpc]
    effect = {("sst2", 0): 0.5, ("sst2", 3): "raise", ("sst2", 4): float("nan"),
              ("mrpc", 0): 0.2, ("mrpc", 1): 0.4, ("mrpc", 2): 0.9}
    extra = [("sst2", s, 0.25 * s) for s in range(5, 8)]  # three more valid sst2 pairs after the exclusions
    for t, s, e in extra:
        pairs.append(dataclasses.replace(sst2[0], seed=s))
        effect[(t, s)] = e

    def eff(p: Pair) -> float:
        v = effect[(p.task, p.seed)]
        if v == "raise":
            raise ValueError("no such thing")
        return v

    def req_a(p: Pair) -> str | None:
        return "needs A" if (p.task, p.seed) == ("sst2", 2) else None

    def req_b(p: Pair) -> str | None:
        return "needs B" if (p.task, p.seed) == ("sst2", 2) else None

    comp = Comparison("hand", "a hand-made comparison", eff, 0.1, "difference", primary=False,
                      values=lambda p: {"pretrained": float(p.seed), "scratch": -float(p.seed)},
                      requires=(req_a, req_b))
    r = evaluate_comparison(comp, pairs)
    assert (r.name, r.description, r.primary, r.min_effect, r.effect_unit) == \
        ("hand", "a hand-made comparison", False, 0.1, "difference")
    assert r.excluded == (
        f"sst2/seed1: {dead.pretrained.learned_reason()}; {dead.scratch.learned_reason()}",
        "sst2/seed2: needs A; needs B",
        "sst2/seed3: effect undefined (no such thing)",
        "sst2/seed4: effect not finite",
    )
    assert "pretrained run diverged" in r.excluded[0] and "scratch run failed" in r.excluded[0]
    kept = [("sst2", 0, 0.5), ("mrpc", 0, 0.2), ("mrpc", 1, 0.4), ("mrpc", 2, 0.9), *extra]
    assert r.per_pair == tuple({"task": t, "seed": s, "effect": e, "pretrained": float(s), "scratch": -float(s)}
                               for t, s, e in kept)
    assert list(r.per_task) == ["sst2", "mrpc"]
    s_sst2 = [0.5, 1.25, 1.5, 1.75]
    s_mrpc = [0.2, 0.4, 0.9]
    _check_stat(r.per_task["sst2"], _stat_by_hand(s_sst2, 0.1))
    _check_stat(r.per_task["mrpc"], _stat_by_hand(s_mrpc, 0.1))
    assert (r.per_task["sst2"].verdict, r.per_task["mrpc"].verdict) == (REPRODUCED, INCONCLUSIVE)
    pooled = _stat_by_hand([e for _, _, e in kept], 0.1)  # in the order the pairs came
    assert pooled["verdict"] == REPRODUCED  # the pooled interval alone would say reproduced ...
    pooled["verdict"] = INCONCLUSIVE  # ... but a comparison must hold in every task
    _check_stat(r.overall, pooled)


def _with_overfit_dirs(pairs: list[Pair], pretrained: str | None, scratch: str | None) -> list[Pair]:
    def move(ev, new):  # noqa: ANN001, ANN202
        return ev if new is None else dataclasses.replace(ev, overfit_run_dir=f"/runs/{new}-{ev.task}-{ev.seed}")
    return [dataclasses.replace(p, pretrained=move(p.pretrained, pretrained), scratch=move(p.scratch, scratch))
            for p in pairs]


def test_extended_runs_claim_counts_each_distinct_set_of_extended_runs_once() -> None:
    """§5.3 reads only the extended-training runs. "long" reuses base's runs (same directories) and is reported
    with base's verdict but not counted; "lr" has its own pretrained runs and "wd" its own scratch runs, so each
    is a separate test and counts -- even after a setting that was not counted. lr's evidence is reversed, so the
    claim fails overall only if lr is counted."""
    claim = CLAIMS.get("overfitting_robustness")
    assert claim.extended_runs_only
    base = make_pairs(q=3.0, setting="base")
    long = make_pairs(q=1 / 3, setting="long")
    lr = _with_overfit_dirs(make_pairs(q=1 / 3, setting="lr"), "lr", None)
    wd = _with_overfit_dirs(make_pairs(q=3.0, setting="wd"), None, "wd")
    r = evaluate_claim(claim, base + long + lr + wd)
    assert [s.setting for s in r.settings] == ["base", "long", "lr", "wd"]
    assert [s.verdict for s in r.settings] == [REPRODUCED, REPRODUCED, NOT_REPRODUCED, REPRODUCED]
    assert r.settings[1].comparisons == () and r.settings[1].per_task == r.settings[0].per_task
    assert "same extended-training runs as setting base" in r.settings[1].reason
    assert all(len(s.comparisons) == 2 for s in (r.settings[0], r.settings[2], r.settings[3]))
    assert r.verdict == NOT_REPRODUCED
    assert r.per_task == {"sst2": NOT_REPRODUCED, "mrpc": NOT_REPRODUCED}
    assert (r.id, r.section, r.statement) == (claim.id, claim.section, claim.statement)
    assert r.thresholds == claim.thresholds() and r.rationale == claim.rationale and len(r.rationale) > 100


def test_evaluate_claim_with_no_pairs_is_inconclusive_and_says_nothing_was_evaluated() -> None:
    claim = CLAIMS.get("wider_optima")
    r = evaluate_claim(claim, [])
    assert r.verdict == INCONCLUSIVE and r.settings == () and r.per_task == {}
    assert r.reason.lower().startswith("no setting was evaluated")
    assert r.rationale == claim.rationale


def test_report_numbers_render_non_finite_values_as_not_available() -> None:
    """An undefined mean or interval end is printed as 'n/a', never as a signed 'nan'/'inf' that reads as a
    number."""
    assert _num(0.12345) == "+0.123" and _num(-2.0) == "-2"
    for x in (float("nan"), float("inf"), float("-inf")):
        assert _num(x).lower() == "n/a"
