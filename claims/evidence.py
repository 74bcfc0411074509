"""What the claims know about each arm of each (setting, task, seed), and how arms are paired.

A :class:`RunEvidence` is everything one arm contributes: its training record, its analysis, its extended-training
record, and what failed for it. Whether the arm *learned* is decided here (a scientific precondition of every
comparison, ``claims.base.LEARNED_FRACTION_OF_CHANCE``), and :func:`pairs_of` pairs the pretrained and scratch arms
of the same task, seed and setting -- the unit every comparison's paired effect is computed on. The pipeline
(:mod:`repro.pipeline.plan`) assembles the evidence from disk; nothing here runs anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from repro.config import Profile
from repro.training import TrainMetrics

from claims.analysis import RunAnalysis
from claims.base import LEARNED_FRACTION_OF_CHANCE, Pair


@dataclass(frozen=True)
class RunEvidence:
    """What the claims know about one arm of one (setting, task, seed)."""

    setting: str
    task: str
    init: str
    seed: int
    run_dir: str
    status: str  # complete / diverged / failed (training raised; metrics is an empty placeholder then)
    metrics: TrainMetrics
    analysis: RunAnalysis | None
    overfit: TrainMetrics | None
    overfit_run_dir: str | None
    analysis_error: str = ""  # why there is no analysis of a completed run
    overfit_error: str = ""  # why the extended-training run is missing
    # the configured (peak) learning rates of this run and of its extended-training run: the v3 convergence rule
    # reads the extended run only when it trained at this run's rate (claims.preconditions.convergence_reason)
    learning_rate: float | None = None
    overfit_learning_rate: float | None = None

    @property
    def chance_loss(self) -> float:
        return math.log(self.metrics.num_labels)

    @property
    def learned(self) -> bool:
        return (self.status == "complete" and self.analysis is not None
                and self.analysis.train_loss_theta1 <= LEARNED_FRACTION_OF_CHANCE * self.chance_loss)

    @property
    def error(self) -> str:
        """Everything that failed for this arm ('' when nothing did)."""
        parts = []
        if self.status != "complete":
            parts.append(f"training {self.status}: {self.metrics.message}")
        if self.analysis_error:
            parts.append(f"analysis failed: {self.analysis_error}")
        if self.overfit_error:
            parts.append(f"extended training failed: {self.overfit_error}")
        return "; ".join(parts)

    def learned_reason(self) -> str:
        if self.status != "complete":
            return f"{self.init} run {self.status}: {self.metrics.message}"
        if self.analysis is None:
            if self.analysis_error:
                return f"{self.init} run analysis failed: {self.analysis_error}"
            return f"{self.init} run has no analysis"
        return (f"{self.init} training loss at θ1 {self.analysis.train_loss_theta1:.3f} > "
                f"{LEARNED_FRACTION_OF_CHANCE} × ln({self.metrics.num_labels}) = "
                f"{LEARNED_FRACTION_OF_CHANCE * self.chance_loss:.3f}")


def pairs_of(profile: Profile, evidence: Sequence[RunEvidence]) -> tuple[Pair, ...]:
    by_key = {(e.setting, e.task, e.seed, e.init): e for e in evidence}
    return tuple(
        Pair(s.name, t, seed, by_key[s.name, t, seed, "pretrained"], by_key[s.name, t, seed, "scratch"])
        for s in profile.settings for t in profile.tasks for seed in profile.seeds
        if (s.name, t, seed, "pretrained") in by_key and (s.name, t, seed, "scratch") in by_key
    )
