"""Parameter-space directions and loss landscapes (curves, surfaces, trajectory projections)."""

from repro.landscape.directions import (
    ONE_DIM_POLICY,
    POLICY_TEXT,
    Direction,
    DirectionInfo,
    cross_task_direction,
    filter_normalize,
    filter_normalized_direction,
    optimization_direction,
    orthogonalize,
    pca_directions,
    restrict_direction,
)
from repro.landscape.evaluate import (
    GridEvaluator,
    PointMetrics,
    classification_logits,
    classification_loss,
    cpu_bf16_evaluation,
    grid_bf16_evaluation,
    evaluate,
    temporarily_set,
)
from repro.landscape.grid import (
    CurveResult,
    GridStore,
    SurfaceResult,
    compute_curve,
    compute_surface,
    evaluate_grid,
    is_complete,
    merge_shards,
    merge_surfaces,
    surface_coords,
)
from repro.landscape.params import ParamVector, get_params, model_params, param_names, set_params
from repro.landscape.trajectory import TrajectoryProjection, project_onto_plane

__all__ = [
    "ONE_DIM_POLICY", "POLICY_TEXT", "CurveResult", "Direction", "DirectionInfo", "GridEvaluator", "GridStore",
    "ParamVector", "PointMetrics", "SurfaceResult", "TrajectoryProjection", "classification_logits",
    "classification_loss", "compute_curve", "cpu_bf16_evaluation", "grid_bf16_evaluation", "compute_surface", "cross_task_direction", "evaluate", "evaluate_grid",
    "filter_normalize", "filter_normalized_direction", "get_params", "is_complete", "merge_shards",
    "merge_surfaces", "model_params", "optimization_direction", "orthogonalize", "param_names", "pca_directions",
    "project_onto_plane", "restrict_direction", "set_params", "surface_coords", "temporarily_set",
]
