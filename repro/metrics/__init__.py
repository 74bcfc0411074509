"""Scalar summaries of landscapes, trajectories and parameter changes; the claims compute their numbers here."""

from repro.metrics.agreement import SurfaceAgreement, surface_agreement
from repro.metrics.flatness import BasinArea, FlatnessWidth, basin_area, flatness_width
from repro.metrics.layers import RollbackResult, relative_change, rollback_loss
from repro.metrics.paths import Monotonicity, Straightness, monotonicity, roughness, trajectory_straightness

__all__ = [
    "BasinArea", "FlatnessWidth", "Monotonicity", "RollbackResult", "Straightness", "SurfaceAgreement",
    "basin_area", "flatness_width", "monotonicity", "relative_change", "rollback_loss", "roughness",
    "surface_agreement", "trajectory_straightness",
]
