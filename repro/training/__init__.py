"""Training runs that record their trajectory (per-step loss, dev metrics, parameter snapshots) and resume."""

from repro.training.loop import load_data, to_device, train
from repro.training.run import EvalRecord, TrainMetrics, TrainRun, run_dir_for

__all__ = [
    "EvalRecord",
    "TrainMetrics",
    "TrainRun",
    "load_data",
    "run_dir_for",
    "to_device",
    "train",
]
