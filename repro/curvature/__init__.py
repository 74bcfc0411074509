"""Curvature: Hessian-vector products as operators; Lanczos / power iteration; Hutchinson trace; ε-sharpness."""

from repro.curvature.interop import as_linear_operator
from repro.curvature.density import DensityResult, spectral_density
from repro.curvature.groups import GroupCurvature, GroupCurvatureResult, group_curvature
from repro.curvature.ggn import EmpiricalFisherOperator, GGNOperator
from repro.curvature.eigen import EigenResult, lanczos, power_iteration
from repro.curvature.operators import HessianOperator, LambdaOperator, Operator, loss_and_grad
from repro.curvature.scaled import ScaledHessianOperator
from repro.curvature.sharpness import AdaptiveSharpnessResult, SharpnessResult, adaptive_sharpness, epsilon_sharpness
from repro.curvature.trace import TraceResult, hutchinson_trace, hutchpp_trace

__all__ = [
    "DensityResult", "AdaptiveSharpnessResult", "EigenResult", "adaptive_sharpness", "EmpiricalFisherOperator", "GGNOperator", "GroupCurvature", "GroupCurvatureResult", "group_curvature", "spectral_density", "as_linear_operator", "HessianOperator", "LambdaOperator", "Operator", "ScaledHessianOperator", "SharpnessResult", "TraceResult",
    "epsilon_sharpness", "hutchinson_trace", "hutchpp_trace", "lanczos", "loss_and_grad", "power_iteration",
]
