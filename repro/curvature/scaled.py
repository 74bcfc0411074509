"""The scale-aware Hessian D·H·D with D = diag(|θ|): v ↦ |θ| ⊙ H(|θ| ⊙ v) (science v3, claims §5.1).

Why: λ_max of H is not invariant to reparametrisations that leave the network's function unchanged. Scaling a weight
matrix by c and the next one by 1/c (through a ReLU, or any positively homogeneous layer) divides the first block of
H by c² and multiplies the second by c², so plain λ_max can be made as large or as small as one likes (Dinh et al.
2017). In the coordinates u = θ/|θ₀| (each weight in units of its own magnitude at the point) the Hessian is
D H D: a weight scaled by c has its row of H scaled by 1/c and its |θ| by c, and the two cancel. Its top eigenvalue
is the curvature of the loss along relative perturbations δ = |θ| ⊙ u, the quantity adaptive sharpness bounds
(Andriushchenko et al. 2023; Kwon et al. 2021 ASAM).

The operator wraps any operator whose products act on the parameters' :class:`~repro.landscape.ParamVector` s
(:class:`~repro.curvature.operators.HessianOperator`, the GGN): each product is one product of the wrapped operator,
so it costs exactly what a Hessian-vector product costs (and reuses the wrapped operator's kept graphs, see
``reuse_graph``), and Lanczos, the trace and the density estimators apply
unchanged. D is taken once, when the operator is built, from the wrapped operator's parameters at that moment (the
point the Hessian is taken at), so moving the weights afterwards does not change it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from repro.curvature.operators import HessianOperator, Operator
from repro.landscape.params import ParamVector


class ScaledHessianOperator(Operator):
    """v ↦ s ⊙ H(s ⊙ v), s = |θ| of the wrapped operator's parameters (default) or a given ``scale``.

    A parameter with θ_i = 0 has s_i = 0: its row and column of D H D are zero (a weight at exactly zero has no
    relative perturbation). Symmetric whenever H is.
    """

    def __init__(self, hessian: HessianOperator, scale: ParamVector | None = None) -> None:
        super().__init__()
        self.hessian = hessian
        params = hessian.params
        if scale is None:
            scale = ParamVector(params.names, tuple(t.detach().abs().clone() for t in params.tensors))
        elif scale.names != params.names:
            raise ValueError("the scale must be over the operator's parameters, in its order")
        self.scale = scale.to(device=hessian.device, dtype=hessian.dtype)
        self._flat_scale = self.scale.flatten()
        self.size, self.dtype, self.device = hessian.size, hessian.dtype, hessian.device

    @property
    def names(self) -> tuple[str, ...]:
        return self.hessian.names

    def close(self) -> None:
        """Release the wrapped operator's kept graphs (it is usable afterwards; its next product rebuilds them)."""
        self.hessian.close()

    def hvp(self, v: ParamVector) -> ParamVector:
        """D H D v on structured vectors."""
        sv = ParamVector(v.names, tuple(torch._foreach_mul([t.to(self.device) for t in v.tensors],
                                                            list(self.scale.tensors))))
        hv = self.hessian.hvp(sv)
        return ParamVector(hv.names, tuple(torch._foreach_mul(list(hv.tensors), list(self.scale.tensors))))

    def _matvec(self, v: Tensor) -> Tensor:
        # the wrapped operator's own product (counted there too), on the scaled vector
        return self._flat_scale * self.hessian.matvec(self._flat_scale * v)

    def _matmat(self, V: Tensor) -> Tensor:
        # the wrapped operator's batched product (k products counted there too), on the scaled rows
        return self._flat_scale * self.hessian.matmat(self._flat_scale * V)
