"""Measure one finished training run: every landscape, curvature and layer quantity the claims read.

Computed once per run, stored as ``<out>/analysis/<run>.json`` (atomically) and reused by every claim; grids are
evaluated through resumable stores under ``<out>/analysis/<run>/`` so an interrupted analysis resumes.

What is measured, all on fixed seeded subsets (``eval_train_size`` training and ``eval_dev_size`` dev examples):

* 1D curve θ0 + α(θ1 − θ0) (paper Fig. 1), training loss and dev error;
* 2D surface θ1 + αδ1 + βδ2 with δ2 = θ1′ − θ0 from the partner task's run of the same (init, seed, setting),
  rescaled to ‖δ1‖ (paper Figs. 2-3), training loss and dev error; the trajectory θ_t projected onto it;
* 1D curves along filter-normalised random directions around θ1 (Li et al. 2018), for a scale-aware width
  (training loss only, as for the layer-group curves below: the widths and their figures read nothing else);
* Hessian top-k (Lanczos) and trace (Hutchinson) of the training loss at θ1 and, where the profile asks for them,
  its eigenvalue density (SLQ), λ_max and trace of each depth group's Hessian block, and adaptive sharpness in an ℓ2
  ball scaled by |θ| (Andriushchenko et al. 2023); Keskar's ε-sharpness in the box
  |δ_i| ≤ ε|θ_i| (relative to each weight, so the box stays local: the ``+1`` of Keskar's ε(|θ|+1) dominates when
  weights are ~0.03, as in BERT);
* curvature at a *matched training loss*: near zero cross-entropy the Hessian scales with p(1 − p), so λ_max at θ1
  mostly says how far the loss was driven down. We therefore also measure λ_max at the first point of the
  trajectory where the training loss (same fixed subset) falls to ``MATCHED_LEARNED_FRACTION`` × ln C (the learned
  precondition's level, reached by every learned arm) and to ``MATCHED_LOSS_FRACTION`` × ln C -- each the same
  level for both arms -- found by bisection on the segment between the two snapshots that bracket it;
* the trajectory in full parameter space: training loss at every snapshot and the straightness (displacement / path
  length) of θ_0, θ_t1, ..., θ_1 over the snapshots (the same count and even spacing in steps for both arms);
* per-layer relative change ‖θ1−θ0‖/‖θ0‖, rollback of the low / middle / high groups to θ0, 1D curves along δ1
  restricted to each group (paper §7, in the paper's units of ‖δ1|group‖), and 1D curves along the same restricted
  direction *filter-normalised* to θ1 (each row rescaled to the norm of the matching row of θ1, 1-D parameters
  zero), whose width is independent of how far the group moved -- which is what relative change measures;
* science v3's instruments (issue 36, claims/REGISTRATION_V3.md; analysis version 4): λ_max of the scale-aware
  Hessian diag(|θ|) H diag(|θ|) at θ1 and at the learned-level point (invariant to rescaling a weight by c and the
  next by 1/c, which moves plain λ_max at will); widths by bisection (the first crossing of L_ref + 0.1 on each side,
  found by a ladder and bisection out to ``random_width_radius``, censored where none) along the random and the
  normalised layer-group directions around θ1 and along the random directions filter-normalised to the learned-level
  point; the learning rate and ‖θ‖ at each matched point (what biases curvature there); and the cross-task layer
  swap: θ1 with each depth group replaced by the partner task's fine-tuned θ1′, dev loss and accuracy.

The Hessian operator keeps each batch's first-order graph between products for the whole solve, over every batch
of the Hessian examples while their measured memory fits (``reuse_graph="auto"``; PyHessian does this for a single
batch), and releases them when the instruments at a point are done: the same numbers, and a product without its
forward and first backward -- about 40 % cheaper on the CPU (standard profile, minilm-l6: 5.7 instead of 9.4
no-grad-forward equivalents, ``repro bench curvature``'s ``reuse``). Evaluation subsets are stratified by label
(a 32-example Hessian batch of SST-2 once had 26 positives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from claims.base import LEARNED_FRACTION_OF_CHANCE
from repro.config import Profile
from repro.curvature import (
    AdaptiveSharpnessResult,
    DensityResult,
    EigenResult,
    GroupCurvatureResult,
    HessianOperator,
    ScaledHessianOperator,
    SharpnessResult,
    TraceResult,
    adaptive_sharpness,
    epsilon_sharpness,
    group_curvature,
    hutchinson_trace,
    lanczos,
    spectral_density,
)
from repro.data import subset_indices
from repro.landscape import (
    CurveResult,
    Direction,
    DirectionInfo,
    ParamVector,
    SurfaceResult,
    TrajectoryProjection,
    compute_curve,
    compute_surface,
    grid_bf16_evaluation,
    cross_task_direction,
    evaluate,
    filter_normalize,
    filter_normalized_direction,
    optimization_direction,
    project_onto_plane,
    restrict_direction,
    set_params,
)
from repro.metrics import (
    BisectionWidth,
    LayerSwapResult,
    RollbackResult,
    Straightness,
    bisection_width,
    layer_swap_loss,
    relative_change,
    rollback_loss,
    trajectory_straightness,
)
from repro.models import DEPTH_GROUPS, attention_implementation, load_model, parameter_groups
from repro.storage import from_json_dict, read_json, write_json
from repro.training import TrainRun, load_data

# 3: λ_max at the learned level (matched_learned), issue 27. 4: science v3's instruments (issue 36,
# claims/REGISTRATION_V3.md): scaled λ_max (diag(|θ|) H diag(|θ|)) at θ1 and at the learned level, widths by
# bisection around θ1 (random and layer-group directions) and around the learned-level point, the learning rate and
# ‖θ‖ at each matched point, and the cross-task layer swap on the dev subset. Version-3 analyses still load (the new
# fields default to None) and are judged with the measures they predate excluded.
ANALYSIS_VERSION = 4
# Matched-loss curvature levels, as fractions of the chance-level loss ln C. The primary (issue 27, registered
# 2026-12-04 before any standard run) is the learned precondition's own level, 0.75 ln C: every arm that passes the
# learned precondition has reached it by θ1 on the same fixed subset, so λ_max there is defined for every pair a
# comparison uses (0.5 ln C was never reached by MRPC's pretrained runs in the 2026-11-27 cpu run: 6/6 pairs
# undefined). Half the chance loss (set in 3b532e2, after the first cpu run) is kept as a secondary level, further
# from the start where it is reached.
MATCHED_LOSS_FRACTION = 0.5
MATCHED_LEARNED_FRACTION = LEARNED_FRACTION_OF_CHANCE
# Attention for every no-grad evaluation of an analysis (curves, surfaces, widths, rollback, swap, trajectory losses):
# the fused kernel, 1.36x faster than eager on 2 CPU cores with losses equal to 6e-8 (bench/results/grid-cpu.json,
# issue 42); eager inside each Hessian solve (no double backward through SDPA). Registered before the next verdict
# run (claims/REGISTRATION_V3.md, "Recipe changes after v3"); analyses made with eager grids differ only by rounding
# and stay valid (no new ANALYSIS_VERSION).
GRID_ATTENTION = "sdpa"
# ε of the relative ε-sharpness box |δ_i| ≤ ε|θ_i| (Keskar et al. use 1e-3 with ε(|θ_i| + 1)).
SHARPNESS_EPSILON = 1e-3
# Adaptive sharpness (Andriushchenko et al. 2023; issue 19, registered 2026-12-04 before any run reads it): the ℓ2
# ball ‖δ ⊙ |θ|⁻¹‖₂ ≤ ρ. The ℓ∞ version with ρ = 1e-3 is exactly the relative ε-sharpness box above, so the ℓ2 ball
# is the new evidence; ρ = 0.05 bounds the perturbation by 5% of the weights' own magnitudes in the ℓ2 sense.
ADAPTIVE_RHO = 0.05
ADAPTIVE_P = 2.0
# ε of the widths by bisection: L_ref + 0.1 nats, the same ε as the grid widths and basins (claims.effects.FLAT_EPS,
# duplicated rather than imported: claims.effects reads analyses, and the analysis must not depend on how they are
# judged; tests/test_analysis_fields.py checks that the two agree).
WIDTH_EPS = 0.1
DENSITY_GRID = 200  # least grid points of the stored SLQ density (more where σ/4 needs them; the report draws it)
_BISECTION_STEPS = 8


@dataclass(frozen=True)
class MatchedCurvature:
    """λ_max at the first trajectory point whose training loss reaches ``level`` (None where it never does)."""

    level: float
    reached: bool
    step_before: int | None = None  # the bracketing snapshots' steps
    step_after: int | None = None
    t: float | None = None  # position between them (0 = step_before, 1 = step_after)
    loss: float | None = None  # training loss at the matched point
    hessian: EigenResult | None = None
    # science v3 (version 4; None before): the quantities that bias a comparison at this point, printed beside it
    # (REGISTRATION_V3 §5) -- the learning rate at the point, interpolated in the run's per-step schedule, and ‖θ‖
    learning_rate: float | None = None
    norm_theta: float | None = None
    # ... and, at the learned level only, the scale-aware primaries: λ_max of diag(|θ|) H diag(|θ|) (same batches,
    # tolerance and iteration budget as ``hessian``) and the widths by bisection along the filter-normalised random
    # directions (filter-normalised to this point, centred at it, level = ``loss`` + WIDTH_EPS)
    scaled_hessian: EigenResult | None = None
    random_widths: tuple[BisectionWidth, ...] | None = None


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
    layer_curves_normalized: dict[str, CurveResult]  # along filter-normalised δ1|group, training loss only
    trajectory_steps: tuple[int, ...]  # snapshot steps (θ0 first, θ1 last)
    trajectory_train_loss: tuple[float, ...]  # training loss at each snapshot, same fixed subset
    straightness_full: Straightness | None  # over the snapshots in full parameter space
    matched: MatchedCurvature
    dev_majority_rate: float  # majority-class rate of the dev split the training run evaluated on
    num_dev: int
    version: int = ANALYSIS_VERSION
    matched_learned: MatchedCurvature | None = None  # λ_max at 0.75 ln C (None in analyses before version 3)
    # issue 19's instruments at θ1, each None when the profile leaves it off (LandscapeSettings)
    density: DensityResult | None = None  # SLQ eigenvalue density of the training-loss Hessian
    group_curvature: GroupCurvatureResult | None = None  # λ_max and trace of each depth group's Hessian block
    adaptive_sharpness: AdaptiveSharpnessResult | None = None
    # science v3's instruments (version 4; None in older analyses, and layer_swap_dev without a partner run)
    scaled_hessian: EigenResult | None = None  # λ_max of diag(|θ1|) H diag(|θ1|), the Hessian batches of ``hessian``
    # widths by bisection around θ1 (level L(θ1) + WIDTH_EPS on the fixed training subset, out to random_width_radius)
    random_widths_bisection: tuple[BisectionWidth, ...] | None = None  # the directions of ``random_curves``
    layer_widths_bisection: dict[str, BisectionWidth] | None = None  # those of ``layer_curves_normalized``
    # θ1 with each depth group replaced by the partner task's θ1′ (same init, seed, setting): dev loss and accuracy
    layer_swap_dev: dict[str, LayerSwapResult] | None = None
    # the partner run's directory name (None without one, and in analyses written before it was recorded): an
    # analysis of the same run with the same partner under another setting is the same measurement (issue 43)
    partner_run: str | None = None


def analysis_path(out: Path, run_dir: Path, setting: str) -> Path:
    """Where the analysis of the run in ``run_dir`` under ``setting`` is stored."""
    return Path(out) / "analysis" / f"{setting}-{Path(run_dir).name}.json"


def load_analysis(path: Path) -> RunAnalysis:
    return from_json_dict(RunAnalysis, read_json(path))


def _missing_instruments(cached: dict, ls) -> list[str]:  # noqa: ANN001
    """The optional instruments (issue 19) that the profile asks for and a cached analysis lacks: such an analysis
    was made before the profile turned them on, and is measured again rather than reported without them."""
    wanted = {"density": ls.density_probes > 0 and ls.density_steps > 0,
              "group_curvature": ls.group_curvature_iters > 0, "adaptive_sharpness": ls.adaptive_sharpness_steps > 0}
    return [k for k, on in wanted.items() if on and cached.get(k) is None]


def _eval_batches(split, size: int, seed: int, batch_size: int, device: torch.device):  # noqa: ANN001, ANN202
    idx = subset_indices(len(split), min(size, len(split)), seed, labels=split.labels.cpu().numpy())
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
        if cached.get("version") == ANALYSIS_VERSION and not _missing_instruments(cached, profile.landscape):
            return from_json_dict(RunAnalysis, cached)
    twin = _twin_analysis(out, run, partner, profile, setting)
    if twin is not None:
        write_json(path, twin)
        return from_json_dict(RunAnalysis, twin)
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # the grids only; Hessians and gradients never autocast
    with grid_bf16_evaluation(cpu=profile.landscape.cpu_grid_bf16, cuda=profile.landscape.cuda_grid_bf16):
        return _measure(run, partner, profile, setting, path, data_dir, device)


def _twin_analysis(out: Path, run: TrainRun, partner: TrainRun | None, profile: Profile, setting: str) -> dict | None:
    """The current analysis of the same run with the same partner run under another setting, relabelled to
    ``setting``; None when there is none. Two settings can share a run (the workstation profile's scratch arm has one
    rate in both), and the analysis reads nothing of the setting but its name: measuring it again would cost a
    whole analysis for the same numbers."""
    want = partner.path.name if partner is not None else None
    for other in sorted((Path(out) / "analysis").glob(f"*-{run.path.name}.json")):
        data = read_json(other)
        if (data.get("run") == run.path.name and data.get("setting") != setting and data.get("partner_run") == want
                and data.get("version") == ANALYSIS_VERSION and not _missing_instruments(data, profile.landscape)
                and (want is not None or data.get("partner_task") is None)):
            return {**data, "setting": setting}
    return None


def _measure(run: TrainRun, partner: TrainRun | None, profile: Profile, setting: str, path: Path,
             data_dir: str | Path | None, device: torch.device) -> RunAnalysis:
    """Every measurement of :func:`analyze_run`, written to ``path``. The model runs with the fused attention
    kernel (:data:`GRID_ATTENTION`) and switches to eager attention for each Hessian solve (double backward)."""
    ls = profile.landscape
    cfg = run.config
    store_root = path.with_suffix("")
    task, train_split, dev_split = load_data(cfg, data_dir)
    train_b = _eval_batches(train_split, ls.eval_train_size, 11, ls.eval_batch_size, device)
    dev_b = _eval_batches(dev_split, ls.eval_dev_size, 12, ls.eval_batch_size, device)
    hess_b = _eval_batches(train_split, ls.hessian_examples, 13, ls.hessian_batch_size, device)
    sets = {"train": train_b, "dev": dev_b}

    model = load_model(cfg.model, cfg.init, task.num_labels, cfg.seed, attn_implementation=GRID_ATTENTION).to(device)
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

    # 1D curve from θ0 through θ1 (and beyond); α = 0 (θ0) and α = 1 (θ1) are always evaluated
    alphas = np.union1d(np.linspace(ls.curve_min, ls.curve_max, ls.curve_points), [0.0, 1.0])
    curve = compute_curve(model, theta0, d1, alphas, sets, **grid_kw("curve"))

    # 2D surface around θ1 in the paper's δ1 / δ2 plane, and the projected trajectory
    surface = projection = swap = None
    depth = {g: groups[g] for g in DEPTH_GROUPS if groups.get(g)}
    traj = run.trajectory()
    steps = [s for s, _ in traj]
    snaps = [vec(p) for _, p in traj]
    del traj
    if partner is not None:
        theta1p = vec(partner.theta1())
        d2 = cross_task_direction(theta0, theta1p, d1.vector)
        grid = np.linspace(-ls.surface_radius, ls.surface_radius, ls.surface_points)
        surface = compute_surface(model, theta1, d1, d2, grid, grid, sets, **grid_kw("surface"))
        projection = project_onto_plane(snaps, theta1, d1.vector, d2.vector, steps=steps)
        # §7 layer swap (REGISTRATION_V3 §6): each depth group of the encoder from the partner task's θ1′, on this
        # task's dev subset (the head is this task's own: the label counts may differ)
        swap = {g: layer_swap_loss(model, theta1, theta1p, n, dev_b, group=g) for g, n in depth.items()}
        del theta1p
    straight = trajectory_straightness(snaps) if len(snaps) >= 2 else None
    traj_loss = []
    for p in snaps:
        set_params(model, p)
        traj_loss.append(float(evaluate(model, train_b).loss))
    rates = run.metrics.learning_rate
    matched = _matched_curvature(model, snaps, steps, traj_loss, train_b, hess_b,
                                 MATCHED_LOSS_FRACTION * float(np.log(task.num_labels)), ls, cfg.seed,
                                 learning_rates=rates)
    matched_learned = _matched_curvature(model, snaps, steps, traj_loss, train_b, hess_b,
                                         MATCHED_LEARNED_FRACTION * float(np.log(task.num_labels)), ls, cfg.seed,
                                         learning_rates=rates, scale_aware=True)
    del snaps

    # filter-normalised random directions around θ1 (scale-aware width)
    r_alphas = np.linspace(-ls.random_width_radius, ls.random_width_radius, ls.random_width_points)
    train_only = {"train": train_b}  # widths and their plots read the training loss only: no dev pass per point
    # ... and the widths by bisection along the same directions (REGISTRATION_V3 §2), from L(θ1) on the same subset
    set_params(model, theta1)
    width_level = float(evaluate(model, train_b).loss) + WIDTH_EPS
    random_curves: list[CurveResult] = []
    random_widths: list[BisectionWidth] = []
    for k in range(ls.random_directions):
        rd = filter_normalized_direction(theta1, seed=_random_seed(cfg.seed, k))
        random_curves.append(compute_curve(model, theta1, rd, r_alphas, train_only, **grid_kw(f"random{k}")))
        random_widths.extend(_bisection_widths(model, theta1, [rd.vector], train_b, width_level, ls))

    # layer groups (§7): relative change, rollback, curves along δ1 restricted to each group
    rc_groups = {g: n for g, n in groups.items() if g.startswith("layer.") or g in depth or g == "embeddings"}
    rel = relative_change(theta0, theta1, rc_groups)
    rb_train = {g: rollback_loss(model, theta0, theta1, n, train_b, group=g) for g, n in depth.items()}
    rb_dev = {g: rollback_loss(model, theta0, theta1, n, dev_b, group=g) for g, n in depth.items()}
    l_alphas = np.linspace(-1.0, 1.0, ls.layer_surface_points)
    layer_curves = {
        g: compute_curve(model, theta1, restrict_direction(d1, n, g), l_alphas, train_only, param_group=g,
                         **grid_kw(f"layer-{g}"))
        for g, n in depth.items()
    }
    layer_curves_norm = {  # on the random directions' grid: the same filter-normalised scale
        g: compute_curve(model, theta1, _filter_normalized_restriction(d1, n, theta1, g), r_alphas,
                         train_only, param_group=g, **grid_kw(f"layer-norm-{g}"))
        for g, n in depth.items()
    }
    layer_widths = {  # the same filter-normalised restrictions, widths by bisection out to the same radius
        g: _bisection_widths(model, theta1, [_filter_normalized_restriction(d1, n, theta1, g).vector], train_b,
                             width_level, ls)[0]
        for g, n in depth.items()
    }

    # curvature at θ1, with eager attention (double backward; the gradient-only sharpness measures too, so that
    # they stay what they were before the grids switched to the fused kernel)
    with attention_implementation(model, "eager"):
        curvature = _curvature_at_theta1(model, theta1, hess_b, depth, ls, cfg.seed)
    eig, scaled, tr, density, groups_curv, adaptive, sharp = curvature
    i1 = int(np.argmin(np.abs(alphas - 1.0)))
    at1 = {k: v[i1] for k, v in curve.values.items()}
    labels = dev_split.labels.cpu()
    majority = float(torch.bincount(labels, minlength=task.num_labels).max()) / max(1, len(labels))

    result = RunAnalysis(
        run=run.path.name, task=cfg.task, init=cfg.init, seed=cfg.seed, setting=setting, num_labels=task.num_labels,
        partner_task=partner.config.task if partner is not None else None,
        train_loss_theta1=float(at1["train_loss"]), train_acc_theta1=float(at1["train_acc"]),
        dev_loss_theta1=float(at1["dev_loss"]), dev_acc_theta1=float(at1["dev_acc"]),
        norm_theta0=theta0.norm(), norm_theta1=theta1.norm(), norm_delta1=d1.vector.norm(),
        curve=curve, surface=surface, projection=projection, random_curves=tuple(random_curves),
        hessian=eig, trace=tr, sharpness=sharp, relative_change=rel, rollback_train=rb_train,
        rollback_dev=rb_dev, layer_curves=layer_curves, layer_curves_normalized=layer_curves_norm,
        trajectory_steps=tuple(int(x) for x in steps), trajectory_train_loss=tuple(traj_loss),
        straightness_full=straight, matched=matched, dev_majority_rate=majority, num_dev=len(dev_split),
        matched_learned=matched_learned, density=density, group_curvature=groups_curv, adaptive_sharpness=adaptive,
        scaled_hessian=scaled, random_widths_bisection=tuple(random_widths), layer_widths_bisection=layer_widths,
        layer_swap_dev=swap,
        partner_run=partner.path.name if partner is not None else None,
    )
    write_json(path, result)
    return result


def _curvature_at_theta1(model: torch.nn.Module, theta1: ParamVector, hess_b, depth: dict, ls, seed: int):  # noqa: ANN001, ANN202
    """Hessian top-k, scaled λ_max, trace, density, depth-group curvature, adaptive and ε-sharpness at θ1."""
    set_params(model, theta1)
    density = None
    with HessianOperator(model, hess_b, reuse_graph="auto") as op:  # graphs kept for every product, then released
        eig = lanczos(op, ls.hessian_top_k, tol=ls.hessian_tol, max_iter=ls.hessian_max_iter,
                      seed=seed).without_vectors()
        scaled = lanczos(ScaledHessianOperator(op), 1, tol=ls.hessian_tol, max_iter=ls.hessian_max_iter,
                         seed=seed).without_vectors()
        tr = hutchinson_trace(op, ls.trace_samples, seed=seed)
        if ls.density_probes > 0 and ls.density_steps > 0:
            density = spectral_density(op, num_probes=ls.density_probes, num_steps=ls.density_steps, seed=seed,
                                       grid_size=DENSITY_GRID)
    groups_curv = None
    if ls.group_curvature_iters > 0 and depth:
        set_params(model, theta1)
        groups_curv = group_curvature(model, hess_b, depth, tol=ls.hessian_tol, max_iter=ls.group_curvature_iters,
                                      trace_samples=max(1, ls.group_trace_samples), seed=seed)
    adaptive = None
    if ls.adaptive_sharpness_steps > 0:
        set_params(model, theta1)
        adaptive = adaptive_sharpness(model, hess_b, rho=ADAPTIVE_RHO, p=ADAPTIVE_P,
                                      steps=ls.adaptive_sharpness_steps, seed=seed)
    set_params(model, theta1)
    sharp = epsilon_sharpness(model, hess_b, epsilon=SHARPNESS_EPSILON, steps=5, seed=seed, offset=0.0)
    return eig, scaled, tr, density, groups_curv, adaptive, sharp


def _filter_normalized_restriction(d1, names, theta1: ParamVector, group: str):  # noqa: ANN001, ANN202
    """δ1 restricted to ``names``, filter-normalised to θ1 (claims §7's scale-free layer direction)."""
    v = filter_normalize(d1.vector, theta1, names)
    return Direction(v, DirectionInfo("optimization", v.norm(), group=group, one_dim_policy="zero",
                                      note="δ1 restricted to the group, filter-normalised to θ1"))


def _random_seed(seed: int, k: int) -> int:
    """The seed of the k-th filter-normalised random direction of a run of seed ``seed`` (around θ1 and around the
    learned-level point alike: the same Gaussian draw, filter-normalised to each point)."""
    return 10_000 * seed + k


def _bisection_widths(model: torch.nn.Module, centre: ParamVector, directions: Sequence[ParamVector],
                      batches: Sequence[dict[str, torch.Tensor]], level: float, ls) -> tuple[BisectionWidth, ...]:  # noqa: ANN001
    """The width by bisection (:func:`repro.metrics.bisection_width`) of {L < level} around ``centre`` along each
    direction, out to the profile's ``random_width_radius`` with its ladder and bisection steps; each loss is the
    example-weighted mean over ``batches`` at centre + t·d, written from the centre (:func:`set_params`, no drift).
    The model is left at the centre."""

    def width(d: ParamVector) -> BisectionWidth:
        def loss_at(t: float) -> float:
            set_params(model, centre, [(t, d)])
            return float(evaluate(model, batches).loss)

        return bisection_width(loss_at, level=level, radius=ls.random_width_radius, ladder=ls.width_ladder,
                               steps=ls.width_bisection_steps)

    try:
        return tuple(width(d) for d in directions)
    finally:
        set_params(model, centre)


def _learning_rate_at(rates: Sequence[float] | None, step: float) -> float | None:
    """The learning rate at the point reached after ``step`` optimizer steps (fractional between two snapshots):
    ``rates[i]`` is the rate of update i + 1, the one taken *from* the parameters after i steps, so the rate at step
    x is ``rates`` linearly interpolated at index x (clamped to the last rate at θ1, from which no update is taken).
    None where the run recorded no rates. Why: the instantaneous step size biases curvature at a matched loss (edge of
    stability: λ_max settles near 2/η), so it is printed beside it (REGISTRATION_V3 §5)."""
    if not rates:
        return None
    return float(np.interp(float(step), np.arange(len(rates), dtype=np.float64), np.asarray(rates, np.float64)))


def _matched_curvature(model, snaps, steps, losses, train_b, hess_b, level: float, ls, seed: int, *,  # noqa: ANN001, ANN202
                       learning_rates: Sequence[float] | None = None, scale_aware: bool = False):
    """λ_max where the trajectory first reaches training loss ``level`` (see the module docstring), with the
    learning rate (from ``learning_rates``, the run's per-step schedule) and ‖θ‖ there; ``scale_aware`` adds science
    v3's primaries at the point: scaled λ_max on the same Hessian operator and the widths by bisection along the
    profile's random directions filter-normalised to the point (the learned level's point only: they cost as much as
    the rest of the point together)."""
    hit = next((i for i, v in enumerate(losses) if v <= level), None)
    if hit is None:
        return MatchedCurvature(level, False)
    if hit == 0:
        point, t, loss, before = snaps[0], 0.0, losses[0], steps[0]
    else:
        a, b = snaps[hit - 1], snaps[hit]
        lo, hi = 0.0, 1.0  # L(a + lo (b − a)) > level ≥ L(a + hi (b − a))
        loss = losses[hit]
        seg = b - a
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            set_params(model, a, [(mid, seg)])
            v = float(evaluate(model, train_b).loss)
            if v <= level:
                hi, loss = mid, v
            else:
                lo = mid
        t, before = hi, steps[hit - 1]
        point = a.clone().axpy_(hi, seg)
    set_params(model, point)
    scaled = widths = None
    with attention_implementation(model, "eager"), HessianOperator(model, hess_b, reuse_graph="auto") as op:
        # one set of kept graphs for both solves; eager attention for the double backward
        eig = lanczos(op, 1, tol=ls.hessian_tol, max_iter=ls.hessian_max_iter, seed=seed).without_vectors()
        if scale_aware:
            scaled = lanczos(ScaledHessianOperator(op), 1, tol=ls.hessian_tol, max_iter=ls.hessian_max_iter,
                             seed=seed).without_vectors()
    after = int(steps[hit])
    lr = _learning_rate_at(learning_rates, before + t * (after - before))
    if scale_aware:
        dirs = [filter_normalized_direction(point, seed=_random_seed(seed, k)).vector
                for k in range(ls.random_directions)]
        widths = _bisection_widths(model, point, dirs, train_b, float(loss) + WIDTH_EPS, ls)
    return MatchedCurvature(level, True, int(before), after, float(t), float(loss), eig, learning_rate=lr,
                            norm_theta=point.norm(), scaled_hessian=scaled, random_widths=widths)
