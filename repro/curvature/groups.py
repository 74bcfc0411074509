"""Curvature of parameter groups: λ_max and trace of each group's Hessian *block* (paper §7's low / middle / high
thirds, the embeddings, the head, single layers, or any list of names).

A block is the Hessian of the loss w.r.t. the group's parameters with every other parameter held fixed -- the
diagonal block H_GG of the full Hessian, not the curvature of the full Hessian along the group's directions combined
with anything else. :class:`~repro.curvature.operators.HessianOperator` over the group's names is exactly that
operator (the other parameters do not require grad while it runs), so each group costs its own products: the
eigensolver's (Lanczos steps + one explicit residual product) plus the trace's (``trace_samples``), reported per
group so a claim can budget them. Why per block: a layer's curvature measured through the full Hessian mixes in the
other layers' (larger) eigenvalues; PyHessian's users ask for the per-layer numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from repro.curvature.eigen import lanczos
from repro.curvature.operators import HessianOperator
from repro.curvature.trace import hutchinson_trace, hutchpp_trace
from repro.landscape.evaluate import Batch, LossFn, classification_loss


@dataclass(frozen=True)
class GroupCurvature:
    """One group's block: its top eigenvalue (``which``) with the explicit residual ‖Hv − λv‖ (unit v) and the
    Lanczos convergence flag, its trace with standard error, and the products each cost."""

    name: str
    num_params: int
    lambda_max: float
    residual: float
    converged: bool
    eigen_matvecs: int
    trace: float
    trace_stderr: float
    trace_samples: int
    trace_matvecs: int

    @property
    def num_matvecs(self) -> int:
        return self.eigen_matvecs + self.trace_matvecs


@dataclass(frozen=True)
class GroupCurvatureResult:
    groups: tuple[GroupCurvature, ...]
    tol: float
    max_iter: int
    which: str
    trace_method: str
    trace_samples: int
    method: str  # the Hessian-vector product: "autograd" or "finite_difference"
    seed: int
    num_matvecs: int

    def get(self, name: str) -> GroupCurvature:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no group {name!r}; the groups are {[g.name for g in self.groups]}")


def resolve_groups(model: nn.Module, groups: Mapping[str, Sequence[str]] | Sequence[str]) -> dict[str, list[str]]:
    """Named groups of parameter names: a mapping is taken as given; a list of group names is looked up in
    :func:`repro.models.groups.parameter_groups` (``low``, ``middle``, ``high``, ``embeddings``, ``head``,
    ``layer.<i>``, ...). Unknown or empty groups are errors that say which."""
    if isinstance(groups, Mapping):
        out = {str(k): list(v) for k, v in groups.items()}
    else:
        if isinstance(groups, str):
            raise TypeError(f"groups must be a list of group names or a mapping, got the string {groups!r}; "
                            f"write [{groups!r}]")
        from repro.models.groups import parameter_groups

        known = parameter_groups(model)
        missing = [g for g in groups if g not in known]
        if missing:
            raise ValueError(f"unknown parameter group(s) {missing}; this model has {sorted(known)}")
        out = {g: known[g] for g in groups}
    if not out:
        raise ValueError("no groups given")
    names = {n for n, _ in model.named_parameters()}
    for g, members in out.items():
        if not members:
            raise ValueError(f"group {g!r} has no parameters (a model with fewer than 3 layers has an empty middle "
                             "third); leave it out")
        unknown = [n for n in members if n not in names]
        if unknown:
            raise ValueError(f"group {g!r} names unknown parameter(s) {unknown[:5]}")
    return out


def group_curvature(
    model: nn.Module,
    batches: Sequence[Batch],
    groups: Mapping[str, Sequence[str]] | Sequence[str],
    *,
    loss_fn: LossFn = classification_loss,
    tol: float = 1e-3,
    max_iter: int = 50,
    which: str = "LA",
    trace_samples: int = 20,
    trace_method: str = "hutchinson",
    seed: int = 0,
    reuse_graph: bool | str | None = None,
    graph_memory_budget: int | None = None,
    method: str = "autograd",
    fd_step: float | None = None,
) -> GroupCurvatureResult:
    """λ_max (Lanczos, ``which="LA"``: largest algebraic, the sharpest ascent; ``"LM"``: largest magnitude) and
    trace (``trace_method="hutchinson"`` with ``trace_samples`` probes, or ``"hutch++"`` with that many products)
    of each group's Hessian block of the example-weighted mean loss over ``batches``.

    Cost per group: Lanczos steps + 1 residual product (≤ ``max_iter`` + 1) plus ``trace_samples`` products, each
    product a double backward over ``batches``. The first-order graphs are kept between a group's products as
    :class:`~repro.curvature.operators.HessianOperator`'s ``reuse_graph`` says (default ``"auto"``: every batch's
    graph while they fit ``graph_memory_budget``; nothing for ``method="finite_difference"``) and released before
    the next group's are built.
    """
    if trace_method not in ("hutchinson", "hutch++"):
        raise ValueError(f"trace_method must be 'hutchinson' or 'hutch++', got {trace_method!r}")
    resolved = resolve_groups(model, groups)
    batches = list(batches)
    if reuse_graph is None:
        reuse_graph = "auto" if method == "autograd" else False
    out = []
    for name, members in resolved.items():
        with HessianOperator(model, batches, members, loss_fn, reuse_graph=reuse_graph,
                             graph_memory_budget=graph_memory_budget, method=method, fd_step=fd_step) as op:
            eig = lanczos(op, 1, tol=tol, max_iter=max_iter, seed=seed, which=which)
            tr = (hutchinson_trace(op, trace_samples, seed=seed) if trace_method == "hutchinson"
                  else hutchpp_trace(op, trace_samples, seed=seed))
        out.append(GroupCurvature(name, op.size, eig.eigenvalues[0], eig.residuals[0], eig.converged,
                                  eig.num_matvecs, tr.estimate, tr.stderr, tr.num_samples, tr.num_matvecs))
    return GroupCurvatureResult(tuple(out), float(tol), int(max_iter), which, trace_method, int(trace_samples),
                                method, int(seed), sum(g.num_matvecs for g in out))
