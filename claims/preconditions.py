"""Preconditions on pairs of runs, beyond "the arms learned": did the arms generalise at all?

A claim about generalisation (§5.3 robustness to overfitting, §6 generalisation and surface consistency) says
nothing about a model whose dev accuracy never left the majority-class rate: its "drop" runs from the majority
plateau to a memorising model, and its dev-error surface is flat noise. An arm *generalised* when its dev accuracy
beats the majority-class rate of the same dev set by a one-sided exact binomial test at
:data:`claims.base.GENERALIZATION_ALPHA`; when the best of several evaluations is used, the level is divided by
their number (Bonferroni), since the best of k noisy accuracies beats the majority rate more often than one does.
"""

from __future__ import annotations

from collections.abc import Callable

from claims.base import GENERALIZATION_ALPHA, Pair, generalization_p_value

Precondition = Callable[[Pair], "str | None"]


def _dev_accuracies(ev, point: str) -> tuple[float, int]:  # noqa: ANN001
    """(accuracy, number of evaluations it is the best of) at ``point``: final or best (extended training)."""
    if point == "final":
        if not ev.metrics.evals:
            raise ValueError("no dev evaluations")
        return ev.metrics.evals[-1].dev_accuracy, 1
    if point == "best_extended":
        if ev.overfit is None:
            raise ValueError("no extended-training run")
        accs = [e.dev_accuracy for e in ev.overfit.evals if e.step > 0]
        if not accs:
            raise ValueError("no dev evaluations in extended training")
        return max(accs), len(accs)
    raise ValueError(f"unknown point {point!r}")


def generalization_reason(ev, point: str = "final") -> str | None:  # noqa: ANN001
    """None when the arm generalised at ``point``, else why not."""
    a = ev.analysis
    if a is None:
        return f"{ev.init} run has no analysis"
    try:
        acc, k = _dev_accuracies(ev, point)
    except ValueError as e:
        return f"{ev.init}: {e}"
    n = ev.metrics.num_dev
    p = generalization_p_value(acc, n, a.dev_majority_rate)
    level = GENERALIZATION_ALPHA / k
    if p < level:
        return None
    what = "final" if point == "final" else f"best of {k} extended-training"
    return (f"{ev.init} did not generalise: {what} dev accuracy {acc:.3f} vs majority rate {a.dev_majority_rate:.3f} "
            f"on {n} examples (binomial p = {p:.3g} ≥ {level:.3g})")


def both_generalized(point: str = "final") -> Precondition:
    def check(pair: Pair) -> str | None:
        reasons = [r for r in (generalization_reason(pair.pretrained, point),
                               generalization_reason(pair.scratch, point)) if r]
        return "; ".join(reasons) or None

    check.__doc__ = f"both arms generalised ({point})"
    return check


def any_generalized(point: str = "final") -> Precondition:
    def check(pair: Pair) -> str | None:
        reasons = [generalization_reason(pair.pretrained, point), generalization_reason(pair.scratch, point)]
        if any(r is None for r in reasons):
            return None
        return "neither arm generalised: " + "; ".join(r for r in reasons if r)

    check.__doc__ = f"at least one arm generalised ({point})"
    return check
