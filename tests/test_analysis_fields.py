"""Every field of the per-run analysis, recomputed from the saved weights of the session's tiny plan.

``analyze_run`` turns a finished run into the numbers every claim reads: losses at θ0 and θ1, the 1D curve, the
δ1/δ2 surface, random and layer-restricted curves, rollback, relative change, the trajectory, Hessian top-k, trace,
ε-sharpness and the matched-loss curvature point. A wrong grid, a subset drawn with another (or no) seed, a curve
from the wrong base point or a stale cache gives numbers of the right shape and finiteness, so each field is checked
here against an independent recomputation: the model loaded from the run's saved θ0 / θ1 / snapshots, the loss
summed by hand over the documented seeded, stratified evaluation subsets (train seed 11, dev seed 12, Hessian
seed 13), and the grids rebuilt from the profile. No new training: the plan is the session fixture ``tiny_plan``
(tests/conftest.py); one test re-analyses one run (~2 s) under a second landscape whose dev subset is a proper
subset and whose curve grid does not contain α = 0 or 1 by itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import claims.analysis as analysis_mod
from claims.analysis import (
    ADAPTIVE_P,
    ADAPTIVE_RHO,
    ANALYSIS_VERSION,
    DENSITY_GRID,
    MATCHED_LOSS_FRACTION,
    SHARPNESS_EPSILON,
    RunAnalysis,
    _eval_batches,
    _filter_normalized_restriction,
    _matched_curvature,
    analysis_path,
    analyze_run,
    load_analysis,
)
from repro.curvature import (
    HessianOperator,
    adaptive_sharpness,
    epsilon_sharpness,
    group_curvature,
    hutchinson_trace,
    lanczos,
    spectral_density,
)
from repro.data import subset_indices
from repro.landscape import ParamVector, evaluate, filter_normalized_direction
from repro.models import DEPTH_GROUPS, load_model, parameter_groups
from repro.storage import read_json, to_json_dict, write_json
from repro.training import TrainRun, load_data
from tests.conftest import tiny_plan_profile

REL = 1e-5  # float32 forward passes over the same examples in the same order


# -- independent recomputation ---------------------------------------------------------------------------------


def _subset(split, size: int, seed: int, batch_size: int) -> list[dict[str, torch.Tensor]]:  # noqa: ANN001
    """The documented evaluation subset: ``size`` rows drawn with ``seed``, stratified by label, longest first."""
    idx = subset_indices(len(split), min(size, len(split)), seed, labels=split.labels.numpy())
    return split.select(idx).batches(batch_size, sort_by_length=True)


def _model(cfg, num_labels: int, params: dict[str, torch.Tensor]) -> torch.nn.Module:  # noqa: ANN001
    m = load_model(cfg.model, cfg.init, num_labels, cfg.seed)
    m.eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(params[n])
    return m


def _put(model: torch.nn.Module, params: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(params[n])


@torch.no_grad()
def _loss_acc(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> tuple[float, float]:
    """Example-weighted mean cross-entropy and accuracy, summed by hand."""
    total, correct, n = 0.0, 0, 0
    for b in batches:
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                       token_type_ids=b["token_type_ids"]).logits
        total += float(F.cross_entropy(logits.double(), b["labels"], reduction="sum"))
        correct += int((logits.argmax(-1) == b["labels"]).sum())
        n += int(b["labels"].shape[0])
    return total / n, correct / n


def _comb(base: dict[str, torch.Tensor], *terms: tuple[float, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out = {k: v.clone() for k, v in base.items()}
    for c, d in terms:
        for k in out:
            if k in d:
                out[k] = out[k] + c * d[k]
    return out


def _sub(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: a[k] - b[k] for k in a}


def _norm(d: dict[str, torch.Tensor], names: list[str] | None = None) -> float:
    keys = list(d) if names is None else names
    return float(torch.sqrt(sum((d[k].double() ** 2).sum() for k in keys)))


def _row_normalised(delta: dict[str, torch.Tensor], theta: dict[str, torch.Tensor], names: list[str]
                    ) -> dict[str, torch.Tensor]:
    """δ restricted to ``names``, every row of a matrix rescaled to the norm of θ's row, vectors zero."""
    out = {}
    for k, d in delta.items():
        if k in names and d.ndim >= 2:
            d2, w2 = d.reshape(d.shape[0], -1).double(), theta[k].reshape(d.shape[0], -1).double()
            dn, wn = d2.norm(dim=1, keepdim=True), w2.norm(dim=1, keepdim=True)
            rows = torch.where(dn > 1e-10, d2 * wn / dn.clamp_min(1e-10), torch.zeros_like(d2))
            out[k] = rows.reshape(d.shape).to(d.dtype)
        else:
            out[k] = torch.zeros_like(d)
    return out


def _finite_numbers(obj: object, where: str = "") -> list[str]:
    """Paths of every non-finite number in a JSON tree."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _finite_numbers(v, f"{where}.{k}")]
    if isinstance(obj, list | tuple):
        return [p for i, v in enumerate(obj) for p in _finite_numbers(v, f"{where}[{i}]")]
    if isinstance(obj, float) and not math.isfinite(obj):
        return [where]
    return []


def _partner(plan, e):  # noqa: ANN001, ANN202
    return next(x for x in plan.evidence if (x.task, x.init, x.seed, x.setting)
                == (e.analysis.partner_task, e.init, e.seed, e.setting))


def _out(e) -> Path:  # noqa: ANN001
    return Path(e.run_dir).parent.parent  # run dirs are <out>/train/<run>


def _check_analysis(a: RunAnalysis, run: TrainRun, partner: TrainRun, setting: str, ls, data_dir: Path) -> None:  # noqa: ANN001
    """Every field of ``a`` against the run's saved weights and the landscape settings ``ls``."""
    cfg = run.config
    task, train, dev = load_data(cfg, data_dir)
    C = task.num_labels
    train_b = _subset(train, ls.eval_train_size, 11, ls.eval_batch_size)
    dev_b = _subset(dev, ls.eval_dev_size, 12, ls.eval_batch_size)
    hess_b = _subset(train, ls.hessian_examples, 13, ls.hessian_batch_size)
    t0, t1 = run.theta0(), run.theta1()
    model = _model(cfg, C, t1)
    names = [n for n, _ in model.named_parameters()]
    d1 = _sub(t1, t0)

    def at(params: dict[str, torch.Tensor], batches=train_b) -> tuple[float, float]:  # noqa: ANN001
        _put(model, params)
        return _loss_acc(model, batches)

    tr0, dv0, tr1, dv1 = at(t0), at(t0, dev_b), at(t1), at(t1, dev_b)

    # identity and bookkeeping
    assert (a.run, a.task, a.init, a.seed, a.setting, a.num_labels) == (
        run.path.name, cfg.task, cfg.init, cfg.seed, setting, C)
    assert a.partner_task == partner.config.task and a.version == ANALYSIS_VERSION
    labels = dev.labels
    assert a.num_dev == len(dev)
    assert a.dev_majority_rate == pytest.approx(max(Counter(labels.tolist()).values()) / len(dev), abs=1e-12)
    assert a.norm_theta0 == pytest.approx(_norm(t0), rel=1e-9)
    assert a.norm_theta1 == pytest.approx(_norm(t1), rel=1e-9)
    assert a.norm_delta1 == pytest.approx(_norm(d1), rel=1e-6)
    assert _finite_numbers(to_json_dict(a)) == []

    # θ1 on the fixed subsets
    assert (a.train_loss_theta1, a.dev_loss_theta1) == (pytest.approx(tr1[0], rel=REL), pytest.approx(dv1[0], rel=REL))
    assert a.train_acc_theta1 == pytest.approx(tr1[1], abs=1e-12)
    assert a.dev_acc_theta1 == pytest.approx(dv1[1], abs=1e-12)

    # 1D curve θ0 + α δ1: the profile's grid plus α = 0 and 1, with θ0 and θ1 at those points
    c = a.curve
    expect = np.union1d(np.linspace(ls.curve_min, ls.curve_max, ls.curve_points), [0.0, 1.0])
    assert c.alphas == tuple(float(x) for x in expect)
    assert set(c.values) == {f"{s}_{m}" for s in ("train", "dev") for m in ("loss", "acc", "error")}
    i0, i1 = c.alphas.index(0.0), c.alphas.index(1.0)
    for i, (tr, dv) in ((i0, (tr0, dv0)), (i1, (tr1, dv1))):
        assert c.values["train_loss"][i] == pytest.approx(tr[0], rel=REL)
        assert c.values["dev_loss"][i] == pytest.approx(dv[0], rel=REL)
        assert c.values["train_acc"][i] == pytest.approx(tr[1], abs=1e-12)
        assert c.values["dev_error"][i] == pytest.approx(1.0 - dv[1], abs=1e-12)
    j = int(np.argmax(np.abs(expect)))  # the farthest point of the grid: a wrong grid or direction shows there
    assert c.values["train_loss"][j] == pytest.approx(at(_comb(t0, (expect[j], d1)))[0], rel=REL)
    assert c.direction.kind == "optimization" and c.direction.norm == pytest.approx(_norm(d1), rel=1e-6)

    # surface θ1 + α δ1 + β δ2, δ2 = θ1' − θ0 rescaled to ‖δ1‖
    s = a.surface
    grid = tuple(float(x) for x in np.linspace(-ls.surface_radius, ls.surface_radius, ls.surface_points))
    assert s.alphas == grid and s.betas == grid
    t1p = partner.theta1()
    raw2 = {k: (t1p[k] - t0[k]) if k in t1p and t1p[k].shape == t0[k].shape else torch.zeros_like(t0[k]) for k in t0}
    d2 = {k: v * (_norm(d1) / _norm(raw2)) for k, v in raw2.items()}
    ic, jc = grid.index(0.0), grid.index(0.0)
    assert s.train_loss[ic, jc] == pytest.approx(tr1[0], rel=REL)
    assert s.dev_loss[ic, jc] == pytest.approx(dv1[0], rel=REL)
    assert s.train_acc[ic, jc] == pytest.approx(tr1[1], abs=1e-12)
    r = ls.surface_radius
    corner = at(_comb(t1, (r, d1), (r, d2)))
    assert s.train_loss[-1, -1] == pytest.approx(corner[0], rel=1e-4)
    assert a.projection is not None and a.projection.steps == a.trajectory_steps

    # trajectory: every snapshot's training loss, straightness over the snapshots
    traj = run.trajectory()
    assert a.trajectory_steps == tuple(run.metrics.snapshot_steps) == tuple(st for st, _ in traj)
    assert a.trajectory_steps[0] == 0 and a.trajectory_steps[-1] == run.metrics.total_steps
    losses = [at(p)[0] for _, p in traj]
    np.testing.assert_allclose(a.trajectory_train_loss, losses, rtol=REL)
    path = sum(_norm(_sub(traj[i + 1][1], traj[i][1])) for i in range(len(traj) - 1))
    disp = _norm(_sub(traj[-1][1], traj[0][1]))
    st = a.straightness_full
    assert (st.displacement, st.path_length, st.ratio) == (
        pytest.approx(disp, rel=1e-6), pytest.approx(path, rel=1e-6), pytest.approx(disp / path, rel=1e-6))

    # matched-loss curvature: reached iff some snapshot is at or below half the chance loss
    m = a.matched
    assert m.level == pytest.approx(MATCHED_LOSS_FRACTION * math.log(C), rel=1e-12)
    assert m.reached == (min(losses) <= m.level)
    if not m.reached:
        assert (m.step_before, m.step_after, m.t, m.loss, m.hessian) == (None,) * 5
    # ... and at the learned level 0.75 ln C (issue 27): the same search at its own level
    ml = a.matched_learned
    assert ml is not None and ml.level == pytest.approx(0.75 * math.log(C), rel=1e-12) and ml.level > m.level
    assert ml.reached == (min(losses) <= ml.level)
    if ml.reached:
        first = next(i for i, v in enumerate(losses) if v <= ml.level)
        assert ml.step_after == a.trajectory_steps[first] and ml.loss <= ml.level
        assert ml.hessian is not None and ml.hessian.eigenvalues

    # random filter-normalised directions around θ1
    r_alphas = tuple(float(x) for x in np.linspace(-ls.random_width_radius, ls.random_width_radius,
                                                     ls.random_width_points))
    assert len(a.random_curves) == ls.random_directions
    order = ParamVector(tuple(names), tuple(t1[n] for n in names))
    for k, rc in enumerate(a.random_curves):
        assert rc.alphas == r_alphas and set(rc.values) == {"train_loss", "train_acc", "train_error"}
        assert rc.direction.kind == "random" and rc.direction.seed == 10_000 * cfg.seed + k
        assert rc.values["train_loss"][r_alphas.index(0.0)] == pytest.approx(tr1[0], rel=REL)
        rd = filter_normalized_direction(order, seed=10_000 * cfg.seed + k).vector.as_dict()
        assert rc.values["train_loss"][-1] == pytest.approx(at(_comb(t1, (r_alphas[-1], rd)))[0], rel=1e-4)

    # layer groups: relative change, rollback, δ1|group curves (paper units and filter-normalised)
    groups = parameter_groups(model)
    depth = {g: groups[g] for g in DEPTH_GROUPS if groups.get(g)}
    assert depth, "the tiny model has no depth groups: the layer checks would check nothing"
    rc_keys = {g for g in groups if g.startswith("layer.")} | set(depth) | {"embeddings"}
    assert set(a.relative_change) == rc_keys
    for g in rc_keys:
        assert a.relative_change[g] == pytest.approx(_norm(d1, groups[g]) / _norm(t0, groups[g]), rel=1e-6), g
    assert set(a.rollback_train) == set(a.rollback_dev) == set(a.layer_curves) == set(
        a.layer_curves_normalized) == set(depth)
    l_alphas = tuple(float(x) for x in np.linspace(-1.0, 1.0, ls.layer_surface_points))
    for g, gn in depth.items():
        mixed = {k: (t0[k] if k in gn else t1[k]) for k in t1}
        for res, batches, ref in ((a.rollback_train[g], train_b, tr1), (a.rollback_dev[g], dev_b, dv1)):
            back = at(mixed, batches)
            assert res.group == g
            assert (res.loss_theta1, res.loss_rolled_back) == (pytest.approx(ref[0], rel=REL),
                                                               pytest.approx(back[0], rel=REL))
            assert (res.accuracy_theta1, res.accuracy_rolled_back) == (pytest.approx(ref[1]), pytest.approx(back[1]))
        lc = a.layer_curves[g]
        assert lc.alphas == l_alphas and lc.param_group == g and set(lc.values) == {"train_loss", "train_acc",
                                                                                       "train_error"}
        assert lc.direction.kind == "optimization" and lc.direction.group == g
        assert lc.direction.norm == pytest.approx(_norm(d1, gn), rel=1e-6)
        assert lc.values["train_loss"][l_alphas.index(0.0)] == pytest.approx(tr1[0], rel=REL)
        # α = −1 of δ1|group puts the group back to θ0: the rollback point
        assert lc.values["train_loss"][l_alphas.index(-1.0)] == pytest.approx(a.rollback_train[g].loss_rolled_back,
                                                                               rel=1e-4)
        ln = a.layer_curves_normalized[g]
        fn = _row_normalised(d1, t1, gn)
        assert ln.alphas == r_alphas and ln.param_group == g and set(ln.values) == set(lc.values)
        assert (ln.direction.kind, ln.direction.group, ln.direction.one_dim_policy) == ("optimization", g, "zero")
        assert ln.direction.norm == pytest.approx(_norm(fn), rel=1e-5)
        assert ln.values["train_loss"][r_alphas.index(0.0)] == pytest.approx(tr1[0], rel=REL)
        assert ln.values["train_loss"][-1] == pytest.approx(at(_comb(t1, (r_alphas[-1], fn)))[0], rel=1e-4)

    # curvature at θ1 on the Hessian subset (seed 13): Lanczos, Hutchinson and ε-sharpness with the run's seed
    _put(model, t1)
    op = HessianOperator(model, hess_b, reuse_graph=len(hess_b) == 1)
    eig = lanczos(op, ls.hessian_top_k, tol=ls.hessian_tol, max_iter=ls.hessian_max_iter, seed=cfg.seed)
    assert a.hessian.seed == cfg.seed and a.hessian.tol == ls.hessian_tol
    assert len(a.hessian.eigenvalues) == ls.hessian_top_k
    np.testing.assert_allclose(a.hessian.eigenvalues, eig.eigenvalues, rtol=1e-4)
    tr = hutchinson_trace(op, ls.trace_samples, seed=cfg.seed)
    assert (a.trace.num_samples, a.trace.seed) == (ls.trace_samples, cfg.seed)
    assert a.trace.estimate == pytest.approx(tr.estimate, rel=1e-4, abs=1e-6)
    sh = epsilon_sharpness(model, hess_b, epsilon=SHARPNESS_EPSILON, steps=5, seed=cfg.seed, offset=0.0)
    assert (a.sharpness.epsilon, a.sharpness.steps, a.sharpness.seed) == (SHARPNESS_EPSILON, 5, cfg.seed)
    assert a.sharpness.base_loss == pytest.approx(sh.base_loss, rel=REL)
    assert a.sharpness.max_loss == pytest.approx(sh.max_loss, rel=REL)
    assert a.sharpness.sharpness == pytest.approx(sh.sharpness, rel=1e-3, abs=1e-6)

    # issue 19's instruments at θ1, each with the run's seed on the Hessian subset and the profile's sizes
    _put(model, t1)  # a fresh operator: the ε-sharpness steps above moved the weights under the reused graph
    den = spectral_density(HessianOperator(model, hess_b, reuse_graph=len(hess_b) == 1), num_probes=ls.density_probes, num_steps=ls.density_steps, seed=cfg.seed,
                           grid_size=DENSITY_GRID)
    assert a.density is not None and (a.density.num_probes, a.density.num_steps, a.density.seed) == (
        ls.density_probes, ls.density_steps, cfg.seed)
    assert len(a.density.grid) == len(den.grid) >= DENSITY_GRID
    assert a.density.trace == pytest.approx(den.trace, rel=1e-3, abs=1e-6)
    np.testing.assert_allclose(a.density.nodes[0], den.nodes[0], rtol=1e-3, atol=1e-6)
    _put(model, t1)
    gcv = group_curvature(model, hess_b, depth, tol=ls.hessian_tol, max_iter=ls.group_curvature_iters,
                          trace_samples=ls.group_trace_samples, seed=cfg.seed)
    assert a.group_curvature is not None and [g.name for g in a.group_curvature.groups] == list(depth)
    for g in depth:
        assert a.group_curvature.get(g).num_params == sum(t1[n].numel() for n in depth[g]), g
        assert a.group_curvature.get(g).lambda_max == pytest.approx(gcv.get(g).lambda_max, rel=1e-3, abs=1e-6), g
    _put(model, t1)
    ad = adaptive_sharpness(model, hess_b, rho=ADAPTIVE_RHO, p=ADAPTIVE_P, steps=ls.adaptive_sharpness_steps,
                            seed=cfg.seed)
    assert a.adaptive_sharpness is not None and (a.adaptive_sharpness.rho, a.adaptive_sharpness.p) == (
        ADAPTIVE_RHO, ADAPTIVE_P)
    assert a.adaptive_sharpness.base_loss == pytest.approx(tr1_h := ad.base_loss, rel=REL) and tr1_h > 0
    assert a.adaptive_sharpness.sharpness == pytest.approx(ad.sharpness, rel=1e-3, abs=1e-6)

    _check_science_v3(a, run, ls, model, names, t1, partner.theta1(), traj, losses, depth, train_b, dev_b, hess_b,
                      tr1, dv1)


def _scaled_lambda_max(model: torch.nn.Module, point: dict[str, torch.Tensor], hess_b, ls, seed: int) -> float:  # noqa: ANN001
    """λ_max of diag(|θ|) H diag(|θ|) at ``point`` from a plain Hessian operator and |θ| taken by hand."""
    from repro.curvature import LambdaOperator

    _put(model, point)
    h = HessianOperator(model, hess_b, reuse_graph=len(hess_b) == 1)
    scale = torch.cat([point[n].detach().abs().flatten() for n in h.names])
    op = LambdaOperator(lambda v: scale * h.matvec(scale * v), size=h.size, dtype=h.dtype)
    return lanczos(op, 1, tol=ls.hessian_tol, max_iter=ls.hessian_max_iter, seed=seed).eigenvalues[0]


def _check_width(w, loss_at, level: float, ls, tol: float = 1e-5) -> None:  # noqa: ANN001
    """A width by bisection against the loss summed by hand: per side, every ladder point before the crossing's
    bracket is inside (L < level), the final bracket [d − h, d + h] (h = radius/ladder/2^(steps+1)) has L < level
    at its inner end and L ≥ level at its outer end; a censored side is the radius with every ladder point inside;
    the evaluations are the ladder points walked plus the halvings."""
    radius, ladder, steps = ls.random_width_radius, ls.width_ladder, ls.width_bisection_steps
    assert w.level == pytest.approx(level, rel=REL) and w.radius == radius and w.width == w.left + w.right
    rungs = [radius * k / ladder for k in range(1, ladder + 1)]
    h = radius / ladder / 2 ** (steps + 1)
    evals = 0
    for sign, d, censored in ((1.0, w.right, w.censored_right), (-1.0, w.left, w.censored_left)):
        if censored:
            assert d == radius and all(loss_at(sign * r) < level + tol for r in rungs)
            evals += ladder
            continue
        k = int(math.ceil((d + h) * ladder / radius - 1e-9))  # the rung that first crossed
        assert 1 <= k <= ladder and rungs[k - 1] - radius / ladder - 1e-12 <= d - h and d + h <= rungs[k - 1] + 1e-12
        assert all(loss_at(sign * r) < level + tol for r in rungs[: k - 1])
        assert loss_at(sign * (d - h)) < level + tol and loss_at(sign * (d + h)) >= level - tol
        evals += k + steps
    assert w.evaluations == evals


def _check_science_v3(a: RunAnalysis, run: TrainRun, ls, model, names, t1, t1p, traj, losses, depth,  # noqa: ANN001
                      train_b, dev_b, hess_b, tr1, dv1) -> None:
    """Version 4's fields (science v3, issue 36): scaled λ_max at θ1 and at the learned-level point, the widths by
    bisection around both, the learning rate and ‖θ‖ at each matched point, and the layer swap with the partner."""
    from claims.analysis import WIDTH_EPS
    from claims.effects import FLAT_EPS

    assert WIDTH_EPS == FLAT_EPS
    seed = run.config.seed

    def loss_along(centre: dict[str, torch.Tensor], d: dict[str, torch.Tensor]):  # noqa: ANN202
        return lambda t: _loss_acc_at(model, _comb(centre, (t, d)), train_b)

    # scaled λ_max at θ1: the Hessian batches, tolerance, budget and seed of ``hessian``
    assert a.scaled_hessian is not None and len(a.scaled_hessian.eigenvalues) == 1
    assert (a.scaled_hessian.seed, a.scaled_hessian.tol) == (seed, ls.hessian_tol)
    assert a.scaled_hessian.num_matvecs <= ls.hessian_max_iter + 1
    assert a.scaled_hessian.eigenvalues[0] == pytest.approx(_scaled_lambda_max(model, t1, hess_b, ls, seed), rel=1e-4)

    # widths by bisection around θ1 along the random directions of ``random_curves`` and the layer-group directions
    # of ``layer_curves_normalized``, level L(θ1) + 0.1 on the training subset
    order = ParamVector(tuple(names), tuple(t1[n] for n in names))
    assert a.random_widths_bisection is not None and len(a.random_widths_bisection) == ls.random_directions
    for k, w in enumerate(a.random_widths_bisection):
        rd = filter_normalized_direction(order, seed=10_000 * seed + k).vector.as_dict()
        _check_width(w, loss_along(t1, rd), tr1[0] + 0.1, ls)
    assert a.layer_widths_bisection is not None and set(a.layer_widths_bisection) == set(depth)
    d1 = _sub(t1, run.theta0())
    for g, gn in depth.items():
        _check_width(a.layer_widths_bisection[g], loss_along(t1, _row_normalised(d1, t1, gn)), tr1[0] + 0.1, ls)

    # the matched points: learning rate interpolated in the per-step schedule (rates[i]: the update from step i),
    # ‖θ‖ there; the scale-aware primaries at the learned level only
    # (the tiny plan's runs do not reach the learned level: test_matched_point_carries_... checks a reached point)
    rates = run.metrics.learning_rate
    assert rates, "the run recorded no learning rates: the interpolation would check nothing"
    for m, scale_aware in ((a.matched, False), (a.matched_learned, True)):
        _check_matched_v3(m, scale_aware, dict(traj), rates, model, names, train_b, hess_b, ls, seed)

    # layer swap: θ1 with each depth group from the partner task's θ1′, dev loss and accuracy on the dev subset
    assert a.layer_swap_dev is not None and set(a.layer_swap_dev) == set(depth)
    for g, gn in depth.items():
        r = a.layer_swap_dev[g]
        swapped = {k: (t1p[k] if k in gn else t1[k]) for k in t1}
        _put(model, swapped)
        sl, sa = _loss_acc(model, dev_b)
        assert r.group == g
        assert (r.loss_theta1, r.loss_swapped) == (pytest.approx(dv1[0], rel=REL), pytest.approx(sl, rel=REL))
        assert (r.acc_theta1, r.acc_swapped) == (pytest.approx(dv1[1], abs=1e-12), pytest.approx(sa, abs=1e-12))
    assert any(a.layer_swap_dev[g].loss_swapped != a.layer_swap_dev[g].loss_theta1 for g in depth)


def _check_matched_v3(m, scale_aware: bool, snaps, rates, model, names, train_b, hess_b, ls, seed: int) -> None:  # noqa: ANN001
    """A matched point's version-4 fields: the learning rate interpolated in the per-step schedule (``rates[i]``:
    the rate of the update taken from step i), ‖θ‖ there; with ``scale_aware`` the scaled λ_max and the widths by
    bisection along the random directions filter-normalised to the point, level L(point) + 0.1; all None where the
    level was not reached."""
    if not m.reached:
        assert (m.learning_rate, m.norm_theta, m.scaled_hessian, m.random_widths) == (None,) * 4
        return
    point = _comb(snaps[m.step_before], (m.t, _sub(snaps[m.step_after], snaps[m.step_before])))
    assert m.loss == pytest.approx(_loss_acc_at(model, point, train_b), rel=REL)
    assert m.norm_theta == pytest.approx(_norm(point), rel=1e-6)
    x = m.step_before + m.t * (m.step_after - m.step_before)
    i = min(int(math.floor(x)), len(rates) - 1)
    lr = rates[i] if i == len(rates) - 1 else rates[i] + (x - i) * (rates[i + 1] - rates[i])
    assert m.learning_rate == pytest.approx(lr, rel=1e-12, abs=1e-15)
    if not scale_aware:
        assert (m.scaled_hessian, m.random_widths) == (None, None)
        return
    assert m.scaled_hessian is not None and m.scaled_hessian.seed == seed and len(m.scaled_hessian.eigenvalues) == 1
    assert (m.scaled_hessian.tol, m.hessian.tol) == (ls.hessian_tol, ls.hessian_tol)
    assert m.scaled_hessian.eigenvalues[0] == pytest.approx(_scaled_lambda_max(model, point, hess_b, ls, seed),
                                                            rel=1e-4)
    pv = ParamVector(tuple(names), tuple(point[n] for n in names))
    assert m.random_widths is not None and len(m.random_widths) == ls.random_directions
    for k, w in enumerate(m.random_widths):
        rd = filter_normalized_direction(pv, seed=10_000 * seed + k).vector.as_dict()
        _check_width(w, lambda t, rd=rd: _loss_acc_at(model, _comb(point, (t, rd)), train_b), m.loss + 0.1, ls)


def _loss_acc_at(model: torch.nn.Module, params: dict[str, torch.Tensor], batches) -> float:  # noqa: ANN001
    _put(model, params)
    return _loss_acc(model, batches)[0]


# -- the tests -------------------------------------------------------------------------------------------------


def test_stored_analyses_match_every_field_recomputed_from_the_saved_weights(tiny_plan, tiny_glue) -> None:  # noqa: ANN001
    """The stored analysis of one arm of each init (and each task), field by field, against the recomputation of
    ``_check_analysis`` (two of the four arms: each takes ~1.5 s)."""
    ls = tiny_plan_profile().landscape
    arms = [e for e in tiny_plan.evidence if (e.task, e.init) in {("sst2", "pretrained"), ("mrpc", "scratch")}]
    assert len(arms) == 2
    for e in arms:
        run, partner = TrainRun.load(Path(e.run_dir)), TrainRun.load(Path(_partner(tiny_plan, e).run_dir))
        _check_analysis(e.analysis, run, partner, e.setting, ls, tiny_glue)


def test_a_stale_analysis_is_recomputed_on_the_default_device_with_the_landscape_asked_for(
        tiny_plan, tiny_glue, tmp_path: Path) -> None:  # noqa: ANN001
    """An analysis file of another version is not reused: the run is measured again (``device=None``: the default
    device, the CPU here) and stored. The landscape differs from the plan's: a curve grid without 0 and 1 (the
    union must add them), a dev subset smaller than the dev split (so its seed matters). The Hessian subset and θ1
    are the plan's, so Hessian, trace and sharpness equal the plan's analysis."""
    e = next(x for x in tiny_plan.evidence if (x.task, x.init) == ("sst2", "pretrained"))
    run, partner = TrainRun.load(Path(e.run_dir)), TrainRun.load(Path(_partner(tiny_plan, e).run_dir))
    prof = tiny_plan_profile()
    # random_width_radius 64: the tiny model's loss stays within 0.1 of L(θ1) out to the plan's radius 1 (and 8), so
    # there every width by bisection is censored; out to 64 some cross, and the bisection's bracket is checked
    ls = dataclasses.replace(prof.landscape, curve_min=-0.5, curve_max=1.5, curve_points=3, eval_dev_size=12,
                             random_width_radius=64.0)
    assert len(load_data(run.config, tiny_glue)[2]) > ls.eval_dev_size
    prof = dataclasses.replace(prof, landscape=ls)
    path = analysis_path(tmp_path, run.path, e.setting)
    stale = to_json_dict(dataclasses.replace(e.analysis, train_loss_theta1=123.0))
    stale["version"] = ANALYSIS_VERSION - 1
    write_json(path, stale)
    a = analyze_run(run, partner, prof, e.setting, tmp_path, data_dir=tiny_glue, device=None)
    assert a.train_loss_theta1 != 123.0 and a.curve.alphas == (-0.5, 0.0, 0.5, 1.0, 1.5)
    assert read_json(path)["version"] == ANALYSIS_VERSION and load_analysis(path) == a
    _check_analysis(a, run, partner, e.setting, ls, tiny_glue)
    assert (a.hessian, a.trace, a.sharpness) == (e.analysis.hessian, e.analysis.trace, e.analysis.sharpness)
    widths = [*a.random_widths_bisection, *a.layer_widths_bisection.values()]
    assert any(not w.censored_left for w in widths) or any(not w.censored_right for w in widths)
    assert a.train_loss_theta1 == pytest.approx(e.analysis.train_loss_theta1, rel=1e-9)


def test_a_cached_analysis_without_an_instrument_the_profile_asks_for_is_measured_again(
        tiny_plan, tiny_glue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A current-version analysis made before the profile turned on the density is not reused without it; one that
    has every instrument the profile asks for is (issue 19's instruments are optional fields)."""
    e = next(x for x in tiny_plan.evidence if (x.task, x.init) == ("sst2", "pretrained"))
    run, partner = TrainRun.load(Path(e.run_dir)), TrainRun.load(Path(_partner(tiny_plan, e).run_dir))
    prof = tiny_plan_profile()
    assert prof.landscape.density_probes > 0
    path = analysis_path(tmp_path, run.path, e.setting)
    write_json(path, dataclasses.replace(e.analysis, density=None, train_loss_theta1=123.0))
    a = analyze_run(run, partner, prof, e.setting, tmp_path, data_dir=tiny_glue, device="cpu")
    assert a.density is not None and a.train_loss_theta1 != 123.0
    # off in the profile: the cached analysis without a density is what comes back
    off = dataclasses.replace(prof, landscape=dataclasses.replace(prof.landscape, density_probes=0))
    write_json(path, dataclasses.replace(e.analysis, density=None, train_loss_theta1=123.0))
    monkeypatch.setattr(analysis_mod, "load_data", lambda *a, **k: pytest.fail("measured again"))
    assert analyze_run(run, partner, off, e.setting, tmp_path, data_dir=tiny_glue).train_loss_theta1 == 123.0


def test_a_second_call_returns_the_stored_analysis_without_measuring_again(tiny_plan, tiny_glue,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan analysed every run once; analysing again must read ``<out>/analysis/<setting>-<run>.json`` (equal
    to the first result, file untouched) and load no data or model."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("analyze_run measured again instead of returning the stored analysis")

    monkeypatch.setattr(analysis_mod, "load_data", forbidden)
    monkeypatch.setattr(analysis_mod, "load_model", forbidden)
    profile = tiny_plan_profile()
    for e in tiny_plan.evidence:
        path = analysis_path(_out(e), Path(e.run_dir), e.setting)
        before = path.read_bytes()
        run, partner = TrainRun.load(Path(e.run_dir)), TrainRun.load(Path(_partner(tiny_plan, e).run_dir))
        again = analyze_run(run, partner, profile, e.setting, _out(e), data_dir=tiny_glue, device="cpu")
        assert isinstance(again, RunAnalysis) and again == e.analysis
        assert path.read_bytes() == before


def test_the_same_run_and_partner_under_another_setting_is_not_measured_again(
        tiny_plan, tiny_glue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Two settings that share a run and its partner (the workstation profile's scratch arm) share one measurement:
    the second setting gets the first's numbers under its own name, loading no data or model (issue 43). Another
    partner, an older analysis, or one without the partner's name is measured."""
    e = next(x for x in tiny_plan.evidence if (x.task, x.init) == ("sst2", "pretrained"))
    run, partner = TrainRun.load(Path(e.run_dir)), TrainRun.load(Path(_partner(tiny_plan, e).run_dir))
    assert e.analysis.partner_run == partner.path.name  # recorded by the measurement
    prof = tiny_plan_profile()
    write_json(analysis_path(tmp_path, run.path, "base"), e.analysis)
    calls: list[str] = []
    monkeypatch.setattr(analysis_mod, "_measure", lambda *a, **k: calls.append(a[3]) or e.analysis)
    twin = analyze_run(run, partner, prof, "low", tmp_path, data_dir=tiny_glue, device="cpu")
    assert calls == [] and twin == dataclasses.replace(e.analysis, setting="low")
    assert read_json(analysis_path(tmp_path, run.path, "low"))["setting"] == "low"
    # not the same measurement: without the partner (no surface), or a stored analysis that predates the record
    analyze_run(run, None, prof, "other", tmp_path, data_dir=tiny_glue, device="cpu")
    write_json(analysis_path(tmp_path, run.path, "base"), dataclasses.replace(e.analysis, partner_run=None))
    analysis_path(tmp_path, run.path, "low").unlink(missing_ok=True)
    analyze_run(run, partner, prof, "low", tmp_path, data_dir=tiny_glue, device="cpu")
    old = to_json_dict(e.analysis)
    old["version"] = ANALYSIS_VERSION - 1
    write_json(analysis_path(tmp_path, run.path, "base"), old)
    analysis_path(tmp_path, run.path, "low").unlink(missing_ok=True)
    analyze_run(run, partner, prof, "low", tmp_path, data_dir=tiny_glue, device="cpu")
    assert calls == ["other", "low", "low"]


def _examples(batches: list[dict[str, torch.Tensor]]) -> Counter:
    return Counter((tuple(ids[: int(m.sum())].tolist()), int(y)) for b in batches
                   for ids, m, y in zip(b["input_ids"], b["attention_mask"], b["labels"], strict=True))


def test_evaluation_subsets_are_seeded_stratified_and_sorted_longest_first(tiny_plan, tiny_glue) -> None:  # noqa: ANN001
    """``_eval_batches``: the same seed gives the same examples (another seed others), each class gets its
    largest-remainder share of the subset, and batches go longest first, each trimmed to its longest row (least
    padding). A size above the split takes it whole."""
    e = next(x for x in tiny_plan.evidence if x.task == "sst2")
    _, train, _ = load_data(TrainRun.load(Path(e.run_dir)).config, tiny_glue)
    cpu = torch.device("cpu")
    n, size = len(train), 13
    got = _eval_batches(train, size, 11, 5, cpu)
    assert [len(b["labels"]) for b in got] == [5, 5, 3]
    # the examples: the seeded stratified subset (which here differs from an unstratified draw)
    idx = subset_indices(n, size, 11, labels=train.labels.numpy())
    assert idx != subset_indices(n, size, 11)
    assert _examples(got) == _examples(train.select(idx).batches(size))
    # stratified: largest-remainder quotas of the split's class counts
    counts = Counter(train.labels.tolist())
    quota = {c: k * size / n for c, k in counts.items()}
    take = {c: math.floor(q) for c, q in quota.items()}
    for c in sorted(quota, key=lambda c: -(quota[c] - take[c]))[: size - sum(take.values())]:
        take[c] += 1
    assert Counter(y for _, y in _examples(got).elements()) == Counter(take)
    # deterministic, and the seed matters
    again = _eval_batches(train, size, 11, 5, cpu)
    assert all(torch.equal(x[k], y[k]) for x, y in zip(got, again, strict=True) for k in x)
    assert _examples(_eval_batches(train, size, 12, 5, cpu)) != _examples(got)
    # longest first, each batch as wide as its longest row
    lengths = [int(x) for b in got for x in b["attention_mask"].sum(1)]
    in_index_order = [int(train.lengths[i]) for i in idx]
    assert in_index_order != sorted(in_index_order, reverse=True), "already sorted: the check would be vacuous"
    assert lengths == sorted(in_index_order, reverse=True)
    assert all(b["input_ids"].shape[1] == int(b["attention_mask"].sum(1).max()) for b in got)
    assert all(v.device == cpu for b in got for v in b.values())
    assert sum(_examples(_eval_batches(train, 10 * n, 11, 64, cpu)).values()) == n


def test_filter_normalised_restriction_keeps_the_group_rows_at_theta1_row_norms() -> None:
    """δ1|group filter-normalised to θ1 (claims §7): zero outside the group and on 1-D parameters, each matrix row
    along δ1's row with θ1's row norm (a zero row of δ1 stays zero), provenance of an optimization direction."""
    g = torch.Generator().manual_seed(5)
    names = ("a.weight", "a.bias", "b.weight", "c.weight")
    shapes = ((3, 4), (3,), (2, 5), (4, 2))
    d = {n: torch.randn(s, generator=g, dtype=torch.float64) for n, s in zip(names, shapes, strict=True)}
    d["a.weight"][1] = 0.0
    th = {n: torch.randn(s, generator=g, dtype=torch.float64) * 3 for n, s in zip(names, shapes, strict=True)}
    pv = lambda x: ParamVector(names, tuple(x[n] for n in names))  # noqa: E731
    from repro.landscape import Direction, DirectionInfo

    d1 = Direction(pv(d), DirectionInfo("optimization", pv(d).norm()))
    out = _filter_normalized_restriction(d1, ["a.weight", "a.bias", "c.weight"], pv(th), "low")
    v = out.vector.as_dict()
    assert out.vector.names == names
    assert torch.equal(v["b.weight"], torch.zeros(2, 5, dtype=torch.float64))
    assert torch.equal(v["a.bias"], torch.zeros(3, dtype=torch.float64))
    for n in ("a.weight", "c.weight"):
        for i in range(shapes[names.index(n)][0]):
            row, ref, w = v[n][i], d[n][i], th[n][i]
            if float(ref.norm()) == 0.0:
                assert torch.equal(row, torch.zeros_like(row))
            else:
                assert float(row.norm()) == pytest.approx(float(w.norm()), rel=1e-12)
                assert float(row @ ref) == pytest.approx(float(row.norm() * ref.norm()), rel=1e-12)
    info = out.info
    assert (info.kind, info.group, info.one_dim_policy) == ("optimization", "low", "zero")
    assert info.norm == pytest.approx(float(torch.sqrt(sum((t**2).sum() for t in v.values()))), rel=1e-12)
    assert info.seed is None and info.rescaled_to is None and info.excluded_params == () and "θ1" in info.note


def _sst2_pretrained(tiny_plan, tiny_glue):  # noqa: ANN001, ANN202
    """The tiny plan's SST-2 pretrained run at θ1 with the matched-point tests' fixed subsets: (run, config, task,
    16 training examples, 8 Hessian examples, model, parameter names, θ0 and θ1 as ParamVectors)."""
    e = next(x for x in tiny_plan.evidence if (x.task, x.init) == ("sst2", "pretrained"))
    run = TrainRun.load(Path(e.run_dir))
    cfg = run.config
    task, train, _ = load_data(cfg, tiny_glue)
    model = _model(cfg, task.num_labels, run.theta1())
    names = [n for n, _ in model.named_parameters()]
    v0, v1 = (ParamVector(tuple(names), tuple(p[n] for n in names)) for p in (run.theta0(), run.theta1()))
    return run, cfg, task, _subset(train, 16, 11, 16), _subset(train, 8, 13, 8), model, names, v0, v1


def test_matched_curvature_is_the_first_crossing_bisected_between_its_snapshots(tiny_plan, tiny_glue) -> None:  # noqa: ANN001
    """On a real model: the first snapshot at or below the level brackets the point with the one before it;
    bisection (8 halvings of [0, 1]) keeps L(a + lo(b − a)) > level ≥ L(a + hi(b − a)) and reports t = hi, the
    loss there and λ_max (Lanczos) there. The expected t is an independent bisection on a hand-summed loss. A level
    met at the first snapshot gives t = 0 there; a level never met gives no point at all; a loss equal to the level
    counts as reached."""
    run, cfg, task, train_b, hess_b, model, names, v0, v1 = _sst2_pretrained(tiny_plan, tiny_glue)

    def L(point: ParamVector) -> float:
        _put(model, point.as_dict())
        return _loss_acc(model, train_b)[0]

    def lam(point: ParamVector) -> float:
        _put(model, point.as_dict())
        return lanczos(HessianOperator(model, hess_b, reuse_graph=True), 1, tol=1e-3, max_iter=3, seed=7).eigenvalues[0]

    (LA, A), (LB, B) = sorted(((L(v0), v0), (L(v1), v1)), key=lambda x: -x[0])
    assert LA - LB > 1e-4, "θ0 and θ1 have the same loss: no level lies between them"
    ls = SimpleNamespace(hessian_tol=1e-3, hessian_max_iter=3)
    level = 0.5 * (LA + LB)
    seg = B - A
    lo, hi = 0.0, 1.0  # the oracle's own bisection
    for _ in range(8):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if L(A.clone().axpy_(mid, seg)) <= level else (mid, hi)
    assert 0.0 < hi < 1.0, "the crossing is at an end of the segment: the bisection would not be exercised"

    # the first crossing is between the 1st and 2nd snapshot (a later one, from 7 to 9, is ignored)
    m = _matched_curvature(model, [A, B, B, A, B], [0, 2, 5, 7, 9], [LA, LB, LB, LA, LB], train_b, hess_b, level,
                           ls, 7)
    assert (m.level, m.reached, m.step_before, m.step_after) == (level, True, 0, 2)
    assert m.t == hi
    assert m.loss == pytest.approx(L(A.clone().axpy_(hi, seg)), rel=REL) and m.loss <= level
    assert m.hessian.eigenvalues[0] == pytest.approx(lam(A.clone().axpy_(hi, seg)), rel=1e-4)
    assert (m.hessian.seed, m.hessian.tol, len(m.hessian.eigenvalues)) == (7, 1e-3, 1)
    # met at the first snapshot: t = 0 there, no bisection
    m0 = _matched_curvature(model, [B, A], [3, 8], [LB, LA], train_b, hess_b, LB + 1e-3, ls, 7)
    assert (m0.reached, m0.step_before, m0.step_after, m0.t, m0.loss) == (True, 3, 3, 0.0, LB)
    assert m0.hessian.eigenvalues[0] == pytest.approx(lam(B), rel=1e-4)
    # the segment never reaches the level before its end: t = 1 and the snapshot's own loss
    m1 = _matched_curvature(model, [A, A], [0, 4], [LA, level - 0.25], train_b, hess_b, level, ls, 7)
    assert (m1.reached, m1.step_before, m1.step_after, m1.t, m1.loss) == (True, 0, 4, 1.0, level - 0.25)
    # a loss equal to the level reaches it: a flat segment at the level is reached at the first halving point
    _put(model, B.as_dict())
    at_b = float(evaluate(model, train_b).loss)
    mf = _matched_curvature(model, [A, B, B], [0, 1, 6], [LA, LA, at_b], train_b, hess_b, at_b, ls, 7)
    assert (mf.reached, mf.step_before, mf.step_after, mf.t, mf.loss) == (True, 1, 6, 2.0**-8, at_b)
    # never met
    assert _matched_curvature(model, [A, B], [0, 9], [LA, LB], train_b, hess_b, LB - 1.0, ls, 7) == \
        analysis_mod.MatchedCurvature(LB - 1.0, False)


def test_matched_point_carries_its_learning_rate_norm_scaled_lambda_max_and_widths(tiny_plan, tiny_glue) -> None:  # noqa: ANN001
    """Version 4 at a matched point that is reached (the tiny plan's runs never reach 0.75 ln C, so the level is put
    between θ0's and θ1's losses, as in the test above): ``scale_aware`` adds the scaled λ_max (same operator
    batches, tolerance, budget and seed) and the widths by bisection along the random directions filter-normalised
    to the point; every matched point carries the learning rate interpolated in a made-up schedule at the
    fractional step of the point (between steps 2 and 6: not an integer) and its ‖θ‖. Without ``scale_aware`` only
    the learning rate and the norm; without a schedule no learning rate."""
    run, cfg, task, train_b, hess_b, model, names, v0, v1 = _sst2_pretrained(tiny_plan, tiny_glue)
    (LA, A), (LB, B) = sorted(((_loss_acc_at(model, v0.as_dict(), train_b), v0),
                               (_loss_acc_at(model, v1.as_dict(), train_b), v1)), key=lambda x: -x[0])
    level = 0.5 * (LA + LB)
    ls = SimpleNamespace(hessian_tol=1e-3, hessian_max_iter=3, random_directions=2, random_width_radius=8.0,
                         width_ladder=4, width_bisection_steps=5)
    rates = [1e-3 * (1 - i / 10) for i in range(10)]
    m = _matched_curvature(model, [A, A, B], [0, 2, 6], [LA, LA, LB], train_b, hess_b, level, ls, 7,
                           learning_rates=rates, scale_aware=True)
    assert m.reached and (m.step_before, m.step_after) == (2, 6) and 0 < m.t < 1
    assert 2 + 4 * m.t != int(2 + 4 * m.t), "the point is at a whole step: the interpolation would not be exercised"
    snaps = {0: A.as_dict(), 2: A.as_dict(), 6: B.as_dict()}
    _check_matched_v3(m, True, snaps, rates, model, names, train_b, hess_b, ls, 7)
    assert m.random_widths is not None  # a side that crosses (its bracket is checked), however flat the tiny model
    assert any(not w.censored_left for w in m.random_widths) or any(not w.censored_right for w in m.random_widths)
    plain = _matched_curvature(model, [A, A, B], [0, 2, 6], [LA, LA, LB], train_b, hess_b, level, ls, 7,
                               learning_rates=rates)
    _check_matched_v3(plain, False, snaps, rates, model, names, train_b, hess_b, ls, 7)
    assert (plain.t, plain.loss, plain.hessian) == (m.t, m.loss, m.hessian)
    # the schedule clamps at θ1 (no update is taken from the last step): a point at step 12 > 9 has the last rate
    late = _matched_curvature(model, [A, B], [12, 20], [LB, LB], train_b, hess_b, level, ls, 7, learning_rates=rates)
    assert (late.t, late.learning_rate) == (0.0, rates[-1])
    assert _matched_curvature(model, [A, B], [0, 4], [LA, LB], train_b, hess_b, level, ls, 7).learning_rate is None


def test_analyses_of_versions_2_and_3_load_with_every_version_4_field_none() -> None:
    """The committed golden analyses of versions 2 and 3 (the cpu run) load under version 4's dataclasses: the new
    fields default to None (a saved run is judged with the measures it predates excluded, never with made-up
    values); the tiny run, remade under version 4, has them all."""
    paths = sorted((Path(__file__).parent / "fixtures" / "golden").glob("*/analysis/*.json"))
    versions = Counter()
    for p in paths:
        a = load_analysis(p)
        versions[a.version] += 1
        if a.version == 4:
            assert a.scaled_hessian is not None and a.random_widths_bisection and a.layer_widths_bisection
            assert a.layer_swap_dev is not None and a.matched_learned.learning_rate is not None
            continue
        assert (a.scaled_hessian, a.random_widths_bisection, a.layer_widths_bisection, a.layer_swap_dev) == (None,) * 4
        for m in (a.matched, a.matched_learned):
            if m is not None:
                assert (m.learning_rate, m.norm_theta, m.scaled_hessian, m.random_widths) == (None,) * 4
    assert versions[2] + versions[3] > 0 and versions[4] > 0 and set(versions) <= {2, 3, 4} and ANALYSIS_VERSION == 4
