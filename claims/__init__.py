"""The paper's five claims as registered checks (one module each; each comparison's ``registered`` says when its
measure and threshold were registered, relative to the runs whose results had been seen).

Importing this package registers every claim in :data:`CLAIMS`, in the paper's order.
"""

from claims.base import CLAIMS, Claim, ClaimResult, Comparison

from claims import wider_optima  # noqa: E402,F401  (registration order = paper order)
from claims import easier_optimization  # noqa: E402,F401
from claims import overfitting_robustness  # noqa: E402,F401
from claims import generalization_consistency  # noqa: E402,F401
from claims import lower_layer_invariance  # noqa: E402,F401

__all__ = ["CLAIMS", "Claim", "ClaimResult", "Comparison"]
