"""The terminal summary and progress of `repro claims`: intervals that cannot be computed say why (never "nan"),
excluded pairs are listed with their reasons, progress is weighted by cost and shows on any terminal, and the
plan's jobs are dealt deterministically."""

from __future__ import annotations

import dataclasses

import io
import os
from dataclasses import replace

import pytest

from claims.base import CLAIMS, INCONCLUSIVE, REPRODUCED, Stat
from claims.evaluate import evaluate_claim
from repro.pipeline.jobs import analysis_cost, deal, parse_shard, plan_jobs, train_cost
from repro.pipeline.progress import CostProgress
from repro.pipeline.runner import format_stat, format_summary
from repro.results import ClaimsReport, RunSummary
from repro import provenance
from repro.config import get_profile
from repro.errors import ReproError
from tests.claims_fixtures import make_pairs


def _stat(n: int, mean: float, lo: float, hi: float) -> Stat:
    return Stat(n=n, mean=mean, sd=float("nan"), ci_low=lo, ci_high=hi, positive=n, verdict=INCONCLUSIVE)


def test_interval_of_too_few_pairs_says_why() -> None:
    nan = float("nan")
    one = format_stat(_stat(1, 0.25, nan, nan), 0.1)
    assert "95% CI n/a (fewer than 2 valid pairs)" in one and "nan" not in one.lower() and "+0.25" in one
    none = format_stat(_stat(0, nan, nan, nan), 0.1)
    assert "no valid pair" in none and "nan" not in none.lower()
    two = format_stat(replace(_stat(3, 0.3, 0.1, 0.5), verdict=REPRODUCED), 0.1)
    assert two == "reproduced: n=3, mean +0.3, 95% CI [+0.1, +0.5], needs ≥ +0.1"


def _report(pairs, runs=()) -> ClaimsReport:  # noqa: ANN001
    results = tuple(evaluate_claim(CLAIMS.get(n), pairs) for n in CLAIMS.names())
    prov = provenance.Provenance("now", "3", {}, "rev", False, "cpu", 1)
    return ClaimsReport({}, prov, "test", ("sst2", "mrpc"), (0, 1), ("base",), "not_all_reproduced", results,
                        tuple(runs), {}, 0.75)


def test_summary_lists_excluded_pairs_with_reasons_and_failed_runs() -> None:
    pairs = make_pairs(2.0, seeds=2, scratch_learned=False)
    failed = RunSummary("base", "sst2", "scratch", 0, "train/x", None, "failed", False, None, float("nan"), 0, 0.0,
                        None, error="training failed: RuntimeError: boom")
    text = format_summary(_report(pairs, [failed]))
    assert "nan" not in text.lower()
    assert "pair(s) excluded:" in text
    assert "sst2/seed0:" in text and "scratch training loss at θ1" in text  # the exclusion reason itself
    assert "run(s) with failures" in text and "base sst2 scratch seed 0: training failed: RuntimeError: boom" in text
    # a claim whose exclusions repeat an earlier claim's says so instead of listing them again
    assert "pair(s) excluded, as for" in text


def test_progress_without_a_terminal_logs_cost_weighted_lines() -> None:
    stream = io.StringIO()
    bar = CostProgress(100.0, "claims t", stream=stream, counts={"train": 1, "analysis": 1})
    bar.begin("train", "big", 90.0)
    bar.end()
    bar.begin("analysis", "small", 10.0)
    bar.end()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[claims t] 1 training run (1 normal) and 1 analysis to do")
    assert "weighted by the expected cost of each job" in lines[0]
    assert "done  normal training run big" in lines[2]
    assert "runs 1/1 trained, analyses 0/1, 90.0% of the work" in lines[2]
    assert "analyses 1/1, 100.0% of the work" in lines[-1]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_without_window_size_still_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("repro.pipeline.progress.shutil.get_terminal_size", lambda fallback=None: os.terminal_size((0, 0)))
    stream = _Tty()
    bar = CostProgress(10.0, "claims t", stream=stream, counts={"analysis": 1})
    bar.begin("analysis", "a", 10.0)
    bar.end()
    bar.close()
    out = stream.getvalue()
    assert "claims t" in out and "100%" in out


def test_disabled_progress_prints_nothing() -> None:
    stream = io.StringIO()
    bar = CostProgress(10.0, "x", stream=stream, enabled=False, counts={"analysis": 1})
    bar.begin("analysis", "a", 10.0)
    bar.in_job(0.5)
    bar.end()
    bar.close()
    assert stream.getvalue() == ""


def test_jobs_are_dealt_deterministically_and_completely() -> None:
    prof = get_profile("cpu-2026-11")
    train, analyses = plan_jobs(prof, "test")
    n_cells = len(prof.settings) * len(prof.seeds) * len(prof.tasks) * 2
    assert len(analyses) == n_cells
    assert len({j.key for j in train}) == len(train) < 2 * n_cells  # the settings share their §5.3 runs
    for jobs in (train, analyses):
        shares = [deal(jobs, i, 3) for i in range(3)]
        assert sorted(j.key for s in shares for j in s) == sorted(j.key for j in jobs)
        assert shares == [deal(tuple(reversed(jobs)), i, 3) for i in range(3)]  # independent of input order
        costs = [sum(j.cost for j in s) for s in shares]
        assert max(costs) - min(costs) <= max(j.cost for j in jobs)  # round robin on sorted costs
    one = prof.train_config("sst2", "pretrained", 0)
    steps = -(-one.train_size // one.hyper.batch_size) * one.hyper.epochs  # optimizer steps of the run
    assert train_cost(one) == steps == 160  # 256 examples / batch 8 × 5 epochs
    assert analysis_cost(prof) > analysis_cost(prof, with_surface=False) > 0


@pytest.mark.parametrize("text", ["1", "2/2", "-1/2", "a/b", "0/0"])
def test_bad_shard_is_one_clear_error(text: str) -> None:
    with pytest.raises(ReproError, match="--shard"):
        parse_shard(text)


def test_shard_parses() -> None:
    assert parse_shard("1/4") == (1, 4)


def test_analysis_cost_is_the_documented_forward_count() -> None:
    """``analysis_cost`` written out from its docstring: grid points × evaluation examples, Hessian products (Lanczos,
    Hutchinson, SLQ density, three depth groups' λ_max and trace) × HVP_FORWARDS per example, ε- and adaptive
    sharpness gradients at 3 forward-equivalents, in steps of the pretrained arm (3 forwards per example of a
    batch). Each knob moves the cost by its own share, so a dropped or mis-weighted term shows."""
    from repro.pipeline.jobs import SHARPNESS_STEPS

    HVP_FORWARDS = 5.0  # the plan's costs use the assumed value whatever the machine (analysis_cost)

    prof = get_profile("standard")
    ls = prof.landscape
    points = ls.curve_points + ls.surface_points ** 2 + ls.random_directions * ls.random_width_points \
        + 3 * ls.layer_surface_points
    products = ls.hessian_max_iter + ls.trace_samples + ls.density_probes * ls.density_steps \
        + 3 * (ls.group_curvature_iters + 1 + ls.group_trace_samples)
    forwards = points * (ls.eval_train_size + ls.eval_dev_size) + products * ls.hessian_examples * HVP_FORWARDS \
        + (SHARPNESS_STEPS + ls.adaptive_sharpness_steps + 1) * ls.hessian_examples * 3
    # science v3 (issue 36): scaled λ_max at θ1 and at the learned level; widths by bisection along the random
    # directions at both points and the 3 depth groups at θ1, both sides, ladder + halvings each; the layer swap of
    # the 3 groups (θ1 and swapped) on the dev subset, with the partner run only
    v3_common = 2 * ls.hessian_max_iter * ls.hessian_examples * HVP_FORWARDS \
        + (2 * ls.random_directions + 3) * 2 * (ls.width_ladder + ls.width_bisection_steps) * ls.eval_train_size
    v3_swap = 3 * 2 * ls.eval_dev_size
    assert (ls.width_ladder, ls.width_bisection_steps) == (8, 8) and v3_common > 0
    unit = 3.0 * prof.pretrained.batch_size
    assert analysis_cost(prof, science_v3=False) == pytest.approx(forwards / unit, rel=1e-12)
    assert analysis_cost(prof) == pytest.approx((forwards + v3_common + v3_swap) / unit, rel=1e-12)
    no_surface = forwards - ls.surface_points ** 2 * (ls.eval_train_size + ls.eval_dev_size)
    assert analysis_cost(prof, with_surface=False, science_v3=False) == pytest.approx(no_surface / unit)
    assert analysis_cost(prof, with_surface=False) == pytest.approx((no_surface + v3_common) / unit, rel=1e-12)
    fewer = dataclasses.replace(prof, landscape=dataclasses.replace(ls, width_ladder=3, width_bisection_steps=2))
    assert analysis_cost(prof) - analysis_cost(fewer) == pytest.approx(
        (2 * ls.random_directions + 3) * 2 * (16 - 5) * ls.eval_train_size / unit, rel=1e-12)
    off = dataclasses.replace(prof, landscape=dataclasses.replace(ls, density_probes=0, group_curvature_iters=0,
                                                                   adaptive_sharpness_steps=0))
    saved = (ls.density_probes * ls.density_steps + 3 * (ls.group_curvature_iters + 1 + ls.group_trace_samples)) \
        * ls.hessian_examples * HVP_FORWARDS + (ls.adaptive_sharpness_steps + 1) * ls.hessian_examples * 3
    assert analysis_cost(prof) - analysis_cost(off) == pytest.approx(saved / (3.0 * prof.pretrained.batch_size))
