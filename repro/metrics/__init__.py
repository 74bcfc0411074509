"""Scalar summaries of landscapes, trajectories and parameter changes; the claims compute their numbers here."""

from repro.metrics.agreement import SurfaceAgreement, surface_agreement
from repro.metrics.flatness import (
    BasinArea,
    BisectionWidth,
    FlatnessWidth,
    basin_area,
    basin_mask,
    bisection_width,
    flatness_width,
)
from repro.metrics.layers import (
    LayerSwapResult,
    RollbackResult,
    layer_swap_loss,
    relative_change,
    rollback_loss,
    swap_group,
)
from repro.metrics.paths import Monotonicity, Straightness, monotonicity, roughness, trajectory_straightness

__all__ = [
    "BasinArea", "BisectionWidth", "FlatnessWidth", "LayerSwapResult", "Monotonicity", "RollbackResult",
    "Straightness", "SurfaceAgreement", "basin_area", "basin_mask", "bisection_width", "flatness_width", "layer_swap_loss",
    "monotonicity", "relative_change", "rollback_loss", "roughness", "surface_agreement", "swap_group",
    "trajectory_straightness",
]
