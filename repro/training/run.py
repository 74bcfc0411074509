"""Run directories: one per resolved training config, keyed by its hash, reused when the same config runs again.

Layout of ``<out>/train/<task>-<init>-seed<seed>-<hash>/``::

    config.json          TrainConfig + provenance
    metrics.json         per-step train loss, per-evaluation dev metrics, status ("complete" / "diverged")
    theta0.safetensors   starting point, float32
    theta1.safetensors   end point, float32
    snapshots/step_XXXXXXX.safetensors   θ_t − θ0 in float16 (see snapshots.py)
    checkpoint.pt        resumable state while the run is in progress: every checkpoint_every steps, every
                         60 s of training and on SIGINT/SIGTERM (deleted when the run completes or diverges)
    diverged.safetensors parameters at the step whose loss was not finite (diverged runs only)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.config import TrainConfig
from repro.storage import config_hash, read_json
from repro.training.snapshots import ParamDict, load_delta_snapshot, load_params


def run_dir_for(out: Path, cfg: TrainConfig) -> Path:
    return Path(out) / "train" / f"{cfg.task}-{cfg.init}-seed{cfg.seed}-{config_hash(cfg)}"


@dataclass(frozen=True)
class EvalRecord:
    step: int
    epoch: float
    dev_loss: float
    dev_accuracy: float
    train_loss_epoch: float | None = None  # mean training loss over the optimizer steps since the last record


@dataclass(frozen=True)
class TrainMetrics:
    """Everything measured during a run (the landscape is measured afterwards, from the saved parameters)."""

    status: str  # "complete" or "diverged"
    total_steps: int
    steps_per_epoch: int
    train_loss: list[float]  # per optimizer step (mean over the batch, dropout on)
    learning_rate: list[float]
    grad_norm: list[float]
    evals: list[EvalRecord]
    snapshot_steps: list[int]
    wall_seconds: float
    num_train: int
    num_dev: int
    num_labels: int
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainRun:
    """A finished (or diverged) run on disk; parameters load lazily."""

    path: Path
    config: TrainConfig
    metrics: TrainMetrics

    @classmethod
    def load(cls, path: Path) -> TrainRun:
        from repro.storage import from_json_dict

        cfg = TrainConfig.from_json(read_json(path / "config.json")["config"])
        metrics = from_json_dict(TrainMetrics, read_json(path / "metrics.json"))
        return cls(Path(path), cfg, metrics)

    def theta0(self) -> ParamDict:
        return load_params(self.path / "theta0.safetensors")

    def theta1(self) -> ParamDict:
        return load_params(self.path / "theta1.safetensors")

    def snapshot_paths(self) -> list[tuple[int, Path]]:
        return [(s, self.path / "snapshots" / f"step_{s:07d}.safetensors") for s in self.metrics.snapshot_steps]

    def trajectory(self) -> list[tuple[int, ParamDict]]:
        """θ_t for every kept snapshot step (θ0 first, θ1 last, the latter exact)."""
        theta0 = self.theta0()
        out: list[tuple[int, ParamDict]] = []
        for step, p in self.snapshot_paths():
            if step == 0:
                out.append((0, theta0))
            elif step == self.metrics.total_steps:
                out.append((step, self.theta1()))
            else:
                out.append((step, load_delta_snapshot(p, theta0)))
        return out
