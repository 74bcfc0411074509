"""Measure one finished training run: every landscape, curvature and layer quantity the claims read.

Computed once per run, stored as ``<out>/analysis/<run>.json`` (atomically) and reused by every claim; grids are
evaluated through resumable stores under ``<out>/analysis/<run>/`` so an interrupted analysis resumes.

What is measured, all on fixed seeded subsets (``eval_train_size`` training and ``eval_dev_size`` dev examples):

* 1D curve θ0 + α(θ1 − θ0) (paper Fig. 1), training loss and dev error;
* 2D surface θ1 + αδ1 + βδ2 with δ2 = θ1′ − θ0 from the partner task's run of the same (init, seed, setting),
  rescaled to ‖δ1‖ (paper Figs. 2-3), training loss and dev error; the trajectory θ_t projected onto it;
* 1D curves along filter-normalised random directions around θ1 (Li et al. 2018), for a scale-aware width;
* Hessian top-k (Lanczos) and trace (Hutchinson) of the training loss at θ1, and Keskar's ε-sharpness;
* per-layer relative change ‖θ1−θ0‖/‖θ0‖, rollback of the low / middle / high groups to θ0, and 1D curves along δ1
  restricted to each group (paper §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from repro.config import Profile
from repro.curvature import EigenResult, HessianOperator, SharpnessResult, TraceResult, epsilon_sharpness
from repro.curvature import hutchinson_trace, lanczos
from repro.data import subset_indices
from repro.landscape import (
    CurveResult,
    ParamVector,
    SurfaceResult,
    TrajectoryProjection,
    compute_curve,
    compute_surface,
    cross_task_direction,
    filter_normalized_direction,
    optimization_direction,
    project_onto_plane,
    restrict_direction,
    set_params,
)
from repro.metrics import RollbackResult, relative_change, rollback_loss
from repro.models import DEPTH_GROUPS, load_model, parameter_groups
from repro.storage import from_json_dict, read_json, write_json
from repro.training import TrainRun, load_data

ANALYSIS_VERSION = 1


@dataclass(frozen=True)
class RunAnalysis:
    run: str
    task: str
    init: str
    seed: int
    setting: str
    num_labels: int
    partner_task: str | None
    train_loss_theta1: float  # eval mode, fixed training subset
    train_acc_theta1: float
    dev_loss_theta1: float
    dev_acc_theta1: float
    norm_theta0: float
    norm_theta1: float
    norm_delta1: float
    curve: CurveResult
    surface: SurfaceResult | None
    projection: TrajectoryProjection | None
    random_curves: tuple[CurveResult, ...]
    hessian: EigenResult
    trace: TraceResult
    sharpness: SharpnessResult
    relative_change: dict[str, float]
    rollback_train: dict[str, RollbackResult]
    rollback_dev: dict[str, RollbackResult]
    layer_curves: dict[str, CurveResult]
    version: int = ANALYSIS_VERSION


def analysis_path(out: Path, run_dir: Path, setting: str) -> Path:
    """Where the analysis of the run in ``run_dir`` under ``setting`` is stored."""
    return Path(out) / "analysis" / f"{setting}-{Path(run_dir).name}.json"


def load_analysis(path: Path) -> RunAnalysis:
    return from_json_dict(RunAnalysis, read_json(path))


def _eval_batches(split, size: int, seed: int, batch_size: int, device: torch.device):  # noqa: ANN001, ANN202
    idx = subset_indices(len(split), min(size, len(split)), seed)
    sub = split.select(idx)
    return [{k: v.to(device) for k, v in b.items()} for b in sub.batches(batch_size, sort_by_length=True)]


def analyze_run(
    run: TrainRun,
    partner: TrainRun | None,
    profile: Profile,
    setting: str,
    out: Path,
    *,
    data_dir: str | Path | None = None,
    device: torch.device | str | None = None,
) -> RunAnalysis:
    """Measure ``run`` (cached). ``partner`` is the same (init, seed, setting) trained on another task, for δ2."""
    path = analysis_path(out, run.path, setting)
    if path.exists():
        cached = read_json(path)
        if cached.get("version") == ANALYSIS_VERSION:
            return from_json_dict(RunAnalysis, cached)
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ls = profile.landscape
    cfg = run.config
    store_root = path.with_suffix("")
    task, train_split, dev_split = load_data(cfg, data_dir)
    train_b = _eval_batches(train_split, ls.eval_train_size, 11, ls.eval_batch_size, device)
    dev_b = _eval_batches(dev_split, ls.eval_dev_size, 12, ls.eval_batch_size, device)
    hess_b = _eval_batches(train_split, ls.hessian_examples, 13, ls.hessian_batch_size, device)
    sets = {"train": train_b, "dev": dev_b}

    model = load_model(cfg.model, cfg.init, task.num_labels, cfg.seed, attn_implementation="eager").to(device)
    model.eval()
    order = [n for n, _ in model.named_parameters()]

    def vec(d: dict[str, torch.Tensor]) -> ParamVector:  # model order, as ParamVector documents
        return ParamVector(tuple(order), tuple(d[n] for n in order)).to(device)

    theta0 = vec(run.theta0())
    theta1 = vec(run.theta1())
    groups = parameter_groups(model)
    d1 = optimization_direction(theta0, theta1)

    def grid_kw(name: str) -> dict:
        return {"store_dir": store_root / name}

    # 1D curve from θ0 through θ1 (and beyond)
    alphas = np.linspace(ls.curve_min, ls.curve_max, ls.curve_points)
    curve = compute_curve(model, theta0, d1, alphas, sets, **grid_kw("curve"))

    # 2D surface around θ1 in the paper's δ1 / δ2 plane, and the projected trajectory
    surface = projection = None
    if partner is not None:
        theta1p = vec(partner.theta1())
        d2 = cross_task_direction(theta0, theta1p, d1.vector)
        grid = np.linspace(-ls.surface_radius, ls.surface_radius, ls.surface_points)
        surface = compute_surface(model, theta1, d1, d2, grid, grid, sets, **grid_kw("surface"))
        traj = run.trajectory()
        snaps = [vec(p) for _, p in traj]
        projection = project_onto_plane(snaps, theta1, d1.vector, d2.vector, steps=[s for s, _ in traj])
        del snaps, theta1p

    # filter-normalised random directions around θ1 (scale-aware width)
    r_alphas = np.linspace(-ls.random_width_radius, ls.random_width_radius, ls.random_width_points)
    random_curves = []
    for k in range(ls.random_directions):
        rd = filter_normalized_direction(theta1, seed=10_000 * cfg.seed + k)
        random_curves.append(compute_curve(model, theta1, rd, r_alphas, sets, **grid_kw(f"random{k}")))

    # layer groups (§7): relative change, rollback, curves along δ1 restricted to each group
    depth = {g: groups[g] for g in DEPTH_GROUPS if groups.get(g)}
    rc_groups = {g: n for g, n in groups.items() if g.startswith("layer.") or g in depth or g == "embeddings"}
    rel = relative_change(theta0, theta1, rc_groups)
    rb_train = {g: rollback_loss(model, theta0, theta1, n, train_b, group=g) for g, n in depth.items()}
    rb_dev = {g: rollback_loss(model, theta0, theta1, n, dev_b, group=g) for g, n in depth.items()}
    l_alphas = np.linspace(-1.0, 1.0, ls.layer_surface_points)
    layer_curves = {
        g: compute_curve(model, theta1, restrict_direction(d1, n, g), l_alphas, sets, param_group=g,
                         **grid_kw(f"layer-{g}"))
        for g, n in depth.items()
    }

    # curvature at θ1
    set_params(model, theta1)
    op = HessianOperator(model, hess_b)
    eig = lanczos(op, ls.hessian_top_k, tol=ls.hessian_tol, max_iter=ls.hessian_max_iter, seed=cfg.seed).without_vectors()
    tr = hutchinson_trace(op, ls.trace_samples, seed=cfg.seed)
    sharp = epsilon_sharpness(model, hess_b, epsilon=1e-3, steps=5, seed=cfg.seed)

    i1 = int(np.argmin(np.abs(alphas - 1.0)))
    at1 = {k: v[i1] for k, v in curve.values.items()} if abs(alphas[i1] - 1.0) < 1e-9 else None
    if at1 is None:
        from repro.landscape import evaluate

        set_params(model, theta1)
        t, d = evaluate(model, train_b), evaluate(model, dev_b)
        at1 = {"train_loss": t.loss, "train_acc": t.accuracy, "dev_loss": d.loss, "dev_acc": d.accuracy}

    result = RunAnalysis(
        run=run.path.name, task=cfg.task, init=cfg.init, seed=cfg.seed, setting=setting, num_labels=task.num_labels,
        partner_task=partner.config.task if partner is not None else None,
        train_loss_theta1=float(at1["train_loss"]), train_acc_theta1=float(at1["train_acc"]),
        dev_loss_theta1=float(at1["dev_loss"]), dev_acc_theta1=float(at1["dev_acc"]),
        norm_theta0=theta0.norm(), norm_theta1=theta1.norm(), norm_delta1=d1.vector.norm(),
        curve=curve, surface=surface, projection=projection, random_curves=tuple(random_curves),
        hessian=eig, trace=tr, sharpness=sharp, relative_change=rel, rollback_train=rb_train,
        rollback_dev=rb_dev, layer_curves=layer_curves,
    )
    write_json(path, result)
    return result

