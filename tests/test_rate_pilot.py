"""scripts/rate_pilot.py's registered selection rule (issue 43), by the cases that define it: a rate qualifies only
if every pilot run at it learned (over every task and seed); among those the highest mean dev accuracy wins; no rate
qualifies -> none (the arm cannot be used at that size). Plus the binomial reading of dev accuracy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("rate_pilot", Path(__file__).resolve().parents[1] / "scripts" /
                                               "rate_pilot.py")
rate_pilot = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(rate_pilot)


def _rec(task: str, init: str, lr: float, seed: int, learned: bool, dev: float) -> dict:
    return {"task": task, "init": init, "learning_rate": lr, "seed": seed, "learned": learned, "dev_accuracy": dev,
            "dev_p_above_majority": 0.01 if dev > 0.6 else 0.5, "train_loss_theta1": 0.1 if learned else 0.69}


def test_a_rate_with_one_seed_that_did_not_learn_never_qualifies_however_good_the_others() -> None:
    recs = [_rec("sst2", "scratch", 5e-4, s, s != 2, 0.9) for s in range(3)]
    recs += [_rec("sst2", "scratch", 1e-4, s, True, 0.6) for s in range(3)]
    chosen = rate_pilot.summarize(recs)["chosen"]["scratch"]
    assert chosen["learning_rate"] == 1e-4


def test_every_task_counts_a_rate_that_fails_on_one_task_is_out() -> None:
    recs = [_rec(t, "pretrained", 5e-5, s, t == "sst2", 0.8) for t in ("sst2", "mrpc") for s in range(3)]
    recs += [_rec(t, "pretrained", 2e-5, s, True, 0.7) for t in ("sst2", "mrpc") for s in range(3)]
    s = rate_pilot.summarize(recs)
    assert s["chosen"]["pretrained"]["learning_rate"] == 2e-5
    assert s["by_task"]["mrpc/pretrained"]["5e-05"]["learned"] == 0
    assert s["by_task"]["sst2/pretrained"]["5e-05"]["learned"] == 3


def test_among_qualifying_rates_the_highest_mean_dev_accuracy_wins() -> None:
    recs = [_rec("sst2", "scratch", lr, s, True, dev) for lr, dev in ((1e-4, 0.70), (3e-4, 0.75), (5e-4, 0.72))
            for s in range(3)]
    assert rate_pilot.summarize(recs)["chosen"]["scratch"]["learning_rate"] == 3e-4


def test_no_qualifying_rate_gives_none_with_the_reason() -> None:
    recs = [_rec("rte", "scratch", lr, s, s == 0, 0.5) for lr in (1e-4, 3e-4) for s in range(3)]
    chosen = rate_pilot.summarize(recs)["chosen"]["scratch"]
    assert chosen["learning_rate"] is None and "no rate" in chosen["why"]


def test_binomial_p_reads_accuracy_against_the_majority_rate() -> None:
    assert rate_pilot.binomial_p(300, 408, 0.684) < 0.02  # 0.735 on MRPC's 408 dev examples
    assert rate_pilot.binomial_p(282, 408, 0.684) > 0.3  # 0.691: the standard pilot's scratch MRPC arm
    assert rate_pilot.binomial_p(279, 408, 0.684) == pytest.approx(0.53, abs=0.01)  # at the majority rate: about even


def test_a_rate_not_piloted_on_a_kept_task_never_qualifies() -> None:
    """A rate left out on one task (another task had ruled it out) has no evidence there: the rule cannot choose
    it, however well it did where it ran."""
    recs = [_rec("sst2", "scratch", lr, s, True, dev) for lr, dev in ((1e-4, 0.70), (3e-4, 0.80)) for s in range(3)]
    recs += [_rec("mrpc", "scratch", 1e-4, s, True, 0.65) for s in range(3)]
    out = rate_pilot.summarize(recs)
    assert out["chosen"]["scratch"]["learning_rate"] == 1e-4
    assert out["by_arm"]["scratch"]["0.0003"]["tasks"] == ["sst2"]
    only = [r for r in recs if r["learning_rate"] == 3e-4]
    assert rate_pilot.summarize(only + recs[-3:])["chosen"]["scratch"]["learning_rate"] is None


def test_combining_per_task_pilots_applies_the_rule_over_every_kept_task(tmp_path: Path) -> None:
    """Two per-task pilot files of one recipe, combined: the choice reads both tasks (a rate the second task never
    ran is out); --tasks keeps a subset; pilots of different recipes are refused."""
    import json

    prof = {"name": "p", "tasks": ["sst2"], "pilot": "", "pretrained": {"learning_rate": 5e-5, "epochs": 5},
            "scratch": {"learning_rate": 5e-4, "epochs": 5}, "train_size": 2000}

    def write(name: str, tasks: list[str], runs: list[dict], **changes: object) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({"profile": "p", "resolved_profile": {**prof, "tasks": tasks, **changes},
                                    "tasks": tasks, "grids": {}, "overrides": [], "device": "cpu", "threads": 2,
                                    "elapsed_seconds": 10.0, "runs": runs}))
        return path

    a = write("a.json", ["sst2"], [_rec("sst2", "scratch", lr, s, True, d) for lr, d in ((1e-4, .7), (3e-4, .8))
                                   for s in range(3)])
    b = write("b.json", ["mrpc"], [_rec("mrpc", "scratch", 1e-4, s, True, .6) for s in range(3)])
    both = rate_pilot.combine([a, b])
    assert both["tasks"] == ["mrpc", "sst2"] and len(both["runs"]) == 9 and both["elapsed_seconds"] == 20.0
    assert both["summary"]["chosen"]["scratch"]["learning_rate"] == 1e-4
    assert rate_pilot.combine([a, b], keep=["sst2"])["summary"]["chosen"]["scratch"]["learning_rate"] == 3e-4
    c = write("c.json", ["mrpc"], [], train_size=1000)
    with pytest.raises(SystemExit, match="different recipes"):
        rate_pilot.combine([a, c])
