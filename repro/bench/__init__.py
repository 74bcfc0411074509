"""Performance benchmarks of the landscape and curvature engines (not timed tests): each writes one JSON with the
device, the torch version and every figure, measured in one run. The CLI exposes them as ``repro bench grid`` and
``repro bench curvature``."""

from repro.bench.curvature import run_curvature_bench
from repro.bench.grid import run_grid_bench

__all__ = ["run_curvature_bench", "run_grid_bench"]
