"""Training-record figures: training loss per epoch for both arms (paper §5.2, Fig. 4) and dev accuracy during
extended training (§5.3, where the paper finds the scratch arm overfits while the pretrained arm holds up).

They read only :class:`repro.training.run.TrainMetrics`, which does not know its arm, so callers pass
:class:`TrainingRecord` s that carry the (task, init, seed) beside the loaded metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from repro.plots.style import (
    EPOCH,
    arm_color,
    arm_label,
    ordered_tasks,
    placeholder,
    wrapped_panels,
)

MAJORITY_COLOR = "#222222"


@dataclass(frozen=True)
class TrainingRecord:
    """One run's training metrics with its arm; ``extended`` is the longer (§5.3) run of the same config, if any."""

    task: str
    init: str
    seed: int
    metrics: Any | None  # repro.training.run.TrainMetrics
    extended: Any | None = None


def _epoch_points(m: Any, key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(e.epoch, getattr(e, key)) for e in m.evals if getattr(e, key) is not None]
    if not pts:
        return np.empty(0), np.empty(0)
    x, y = zip(*pts)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def plot_training_loss(records: Sequence[TrainingRecord]) -> Figure:
    """Per task: each seed's per-epoch mean training loss (thin, gid ``train_epoch:<init>:<task>:<seed>``) and the
    mean over seeds of each arm (bold, gid ``train_mean:<init>:<task>``) against epochs, both arms overlaid."""
    tasks = ordered_tasks(records) or ["(no runs)"]
    fig, (panels,) = wrapped_panels(len(tasks), width=4.6, height=3.4)
    for c, task in enumerate(tasks):
        ax = panels[c]
        runs = [r for r in records if r.task == task and r.metrics is not None]
        if not runs:
            placeholder(ax, "no training records")
            continue
        labelled: set[str] = set()
        for init in dict.fromkeys(r.init for r in runs):
            color = arm_color(init)
            curves = []
            for r in (r for r in runs if r.init == init):
                x, y = _epoch_points(r.metrics, "train_loss_epoch")
                if x.size:
                    ax.plot(x, y, color=color, lw=0.8, alpha=0.5, marker=".", ms=3,
                            gid=f"train_epoch:{init}:{task}:{r.seed}")
                    curves.append((tuple(x), y))
            if curves and len({c[0] for c in curves}) == 1:
                ax.plot(curves[0][0], np.mean([c[1] for c in curves], axis=0), color=color, lw=2.4, marker="o",
                        ms=4, gid=f"train_mean:{init}:{task}",
                        label=f"{arm_label(init)} (mean of {len(curves)} seeds; thin: each seed)")
                labelled.add(init)
            elif curves:
                ax.plot([], [], color=color, label=arm_label(init))
                labelled.add(init)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel(EPOCH)
        ax.set_ylabel("training loss (nats)")
        ax.grid(alpha=0.3)
        if labelled:
            ax.legend(fontsize=8)
    return fig


def plot_extended_dev_accuracy(records: Sequence[TrainingRecord],
                               majority_rates: Mapping[str, float] | None = None) -> Figure:
    """Per task: dev accuracy through the extended training run (gid ``dev_acc:…``), with the end of the standard
    schedule marked, both arms overlaid. Runs without an extended run are skipped; a task with none gets a note.

    ``majority_rates`` (task → the dev split's majority-class rate, as saved in the runs' analyses,
    ``RunAnalysis.dev_majority_rate``) draws that rate as a dotted line (gid ``majority:<task>``): an arm on it
    predicts one class, i.e. is at chance, and its "overfitting" says nothing. Training metrics do not record the
    rate and the figure never reads the data files, so a task without a saved rate gets no line."""
    majority_rates = majority_rates or {}
    tasks = ordered_tasks(records) or ["(no runs)"]
    fig, (panels,) = wrapped_panels(len(tasks), width=4.6, height=3.4)
    for c, task in enumerate(tasks):
        ax = panels[c]
        runs = [r for r in records if r.task == task and r.extended is not None]
        if not runs:
            placeholder(ax, "no extended-training runs")
            continue
        labelled: set[str] = set()
        ends: set[float] = set()
        for r in runs:
            x, y = _epoch_points(r.extended, "dev_accuracy")
            if x.size:
                ax.plot(x, y, color=arm_color(r.init), marker="o", ms=3, lw=1.6,
                        gid=f"dev_acc:{r.init}:{task}:{r.seed}",
                        label=None if r.init in labelled else arm_label(r.init))
                labelled.add(r.init)
            if r.metrics is not None and r.metrics.steps_per_epoch:
                ends.add(round(r.metrics.total_steps / r.metrics.steps_per_epoch, 6))
        for i, e in enumerate(sorted(ends)):
            ax.axvline(e, color="#888888", ls="--", lw=1, label="end of standard training" if i == 0 else None)
        rate = majority_rates.get(task)
        if isinstance(rate, (int, float)) and np.isfinite(rate):
            ax.axhline(float(rate), color=MAJORITY_COLOR, ls=":", lw=1.4, gid=f"majority:{task}",
                       label=f"majority rate {float(rate):.3f} (chance)")
        ax.set_title(task, fontsize=10)
        ax.set_xlabel(EPOCH)
        ax.set_ylabel("dev accuracy (fraction)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
