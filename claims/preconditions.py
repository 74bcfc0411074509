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
    check.kind, check.point, check.arms = "generalization", point, "both"  # read by claims.decidability
    return check


def any_generalized(point: str = "final") -> Precondition:
    def check(pair: Pair) -> str | None:
        reasons = [generalization_reason(pair.pretrained, point), generalization_reason(pair.scratch, point)]
        if any(r is None for r in reasons):
            return None
        return "neither arm generalised: " + "; ".join(r for r in reasons if r)

    check.__doc__ = f"at least one arm generalised ({point})"
    check.kind, check.point, check.arms = "generalization", point, "any"
    return check


# Convergence precondition, science v3 (issue 36; claims/REGISTRATION_V3.md §3, registered before any run was
# judged by it). The final training loss and the straightness of the path compare where two runs *stopped*; when
# one arm stopped long before its optimum they compare stages of training, not the optima the paper talks about.
# The rule of issue 27 (the loss along θ0 → θ1 still falling past θ1) passed update-limited arms -- MRPC's pretrained
# arms in the 2026-11-27 cpu run, whose own extended runs at the same rate fell from 0.42-0.45 to 0.07-0.11 -- and
# changed with the grid's ``curve_max``. v3 asks the training record instead: an arm has converged when more
# training at its own recipe does not lower its training loss by more than MAX_CONVERGENCE_LOSS_DROP nats --
#   (a) its extended-training run at the same learning rate, where one exists: the mean per-step training loss of
#       that run's last epoch is at least the arm's own last-epoch mean minus the tolerance;
#   (b) otherwise, a plateau: the arm's last-epoch mean is at least the previous epoch's mean minus the tolerance
#       (an arm with one epoch cannot show one, and is not converged).
# Both compare per-step training losses (dropout on) with each other, and no grid setting enters. The tolerance is
# the final-loss comparison's minimum gap (claims.easier_optimization.MIN_LOSS_GAP): a larger fall means the arm's
# final loss is not its converged level by more than the difference that comparison counts.
MAX_CONVERGENCE_LOSS_DROP = 0.05


def epoch_mean_losses(metrics) -> list[float]:  # noqa: ANN001
    """Mean per-step training loss of each epoch of a training record (the last epoch may be partial)."""
    per = max(1, int(metrics.steps_per_epoch))
    x = list(metrics.train_loss)
    return [sum(x[i:i + per]) / len(x[i:i + per]) for i in range(0, len(x), per)]


def _same_rate(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def convergence_drop(ev) -> tuple[float, str]:  # noqa: ANN001
    """(how much more training lowered the last-epoch mean training loss, how that was measured): rule (a) against
    the extended run at the same rate when there is one, else rule (b), the plateau over the last two epochs."""
    own = epoch_mean_losses(ev.metrics)
    if not own:
        raise ValueError("no training steps recorded")
    over = getattr(ev, "overfit", None)
    if over is not None and over.train_loss and _same_rate(getattr(ev, "learning_rate", None),
                                                          getattr(ev, "overfit_learning_rate", None)):
        ext = epoch_mean_losses(over)
        return own[-1] - ext[-1], (f"its extended run at the same rate ends at {ext[-1]:.3f} against its own "
                                   f"last epoch's {own[-1]:.3f}")
    if len(own) < 2:
        raise ValueError("one epoch and no extended run at the same rate: a plateau cannot be shown")
    return own[-2] - own[-1], f"its last epoch's mean loss {own[-1]:.3f} against the epoch before's {own[-2]:.3f}"


def convergence_reason(ev) -> str | None:  # noqa: ANN001
    """None when the arm converged (see MAX_CONVERGENCE_LOSS_DROP), else why not."""
    if getattr(ev, "status", "complete") != "complete":
        return f"{ev.init} run {ev.status}"
    try:
        drop, how = convergence_drop(ev)
    except ValueError as e:
        return f"{ev.init} not shown to have converged: {e}"
    if drop <= MAX_CONVERGENCE_LOSS_DROP:
        return None
    return (f"{ev.init} had not converged: more training lowers its loss by {drop:.3f} nats "
            f"(> {MAX_CONVERGENCE_LOSS_DROP}; {how})")


def both_converged() -> Precondition:
    def check(pair: Pair) -> str | None:
        reasons = [r for r in (convergence_reason(pair.pretrained), convergence_reason(pair.scratch)) if r]
        return "; ".join(reasons) or None

    check.__doc__ = "both arms converged (more training at their recipe does not lower the loss; science v3)"
    check.kind, check.point, check.arms = "convergence", "final", "both"
    return check
