"""Synthetic evidence for the claims' verdict logic, built so that "reversed" truly reverses every effect.

Each arm is drawn as either the *good* arm (what the paper says a fine-tuned model looks like: flat, fast, low
loss, straight path, robust, consistent surfaces, stable lower layers) or the *bad* arm, whose every measured
quantity is worse by a factor ``strength`` (or the equivalent additive gap). ``make_pairs(q)`` with ``q > 1`` makes
the pretrained arm good and the scratch arm bad with strength ``q``; ``q < 1`` swaps the two profiles (strength
``1/q``), so every comparison's effect changes sign -- including the layer comparisons, which read the pretrained arm
only and are reversed in the bad profile (high layers stable, low layers moving).

Seeds add small independent multiplicative noise, drawn from a generator keyed by a stable CRC of the arm's name
(never ``hash()`` of a string, which changes with PYTHONHASHSEED).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from claims.analysis import MatchedCurvature, RunAnalysis
from claims.base import Pair
from claims.evidence import RunEvidence
from repro.curvature import (
    AdaptiveSharpnessResult,
    EigenResult,
    GroupCurvature,
    GroupCurvatureResult,
    SharpnessResult,
    TraceResult,
)
from repro.landscape import (
    CurveResult,
    DirectionInfo,
    SurfaceResult,
    TrajectoryProjection,
)
from repro.metrics import BisectionWidth, LayerSwapResult, RollbackResult, Straightness
from repro.training import EvalRecord, TrainMetrics

_D = DirectionInfo("custom", 1.0)
NUM_DEV = 400
MAJORITY = 0.5


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _width(w: float, radius: float = 2.0) -> BisectionWidth:
    """A measured (uncensored) symmetric bisection width ``w``."""
    return BisectionWidth(w, w / 2, w / 2, False, False, 0.62, radius, 20)


def _curve(alphas: np.ndarray, train: np.ndarray, dev_err: np.ndarray | None = None) -> CurveResult:
    t = tuple(float(x) for x in train)
    e = tuple(float(x) for x in (dev_err if dev_err is not None else 0.2 + 0 * alphas))
    return CurveResult(tuple(float(a) for a in alphas),
                       {"train_loss": t, "train_acc": tuple(1 - x for x in e), "train_error": e,
                        "dev_loss": t, "dev_acc": tuple(1 - x for x in e), "dev_error": e}, _D, 10)


def _evidence(init: str, task: str, seed: int, good: bool, k: float, *, learned: bool = True,
              generalized: bool = True, setting: str = "base") -> RunEvidence:
    rng = _rng(init, task, seed, setting)

    def noise() -> float:
        return float(np.exp(rng.normal(0, 0.03)))

    b = 1.0 if good else k  # multiplicative badness of this arm
    loss_final = (0.02 if good else 0.02 + 0.1 * (k - 1)) * noise() if learned else 0.69
    # training curve: exponential decay, time constant ∝ badness
    steps = np.arange(1, 61)
    # time constant long enough that the step counts to the learned level resolve the seeds (claims v3: a spread
    # below one step is rounding and would be undecidable)
    # (a generator of its own, so that the draws below are the same as before these were added)
    spread = _rng("spread", init, task, seed, setting)
    train_loss = list(math.log(2) * np.exp(-steps / (20 * b * noise() * float(np.exp(spread.normal(0, 0.4)))))
                      + loss_final)
    # extended training: the good arm's dev accuracy stays at its best, the bad arm's falls from it
    best = 0.85 if generalized else MAJORITY
    # the seeds' spread of the fall well above one dev example (1/NUM_DEV; claims v3: a spread below it is rounding)
    fall = 0.0 if good else 0.03 * (k - 1) * float(np.exp(spread.normal(0, 0.3)))
    rise = 0.0 if good else 0.1 * (k - 1)
    evals = [EvalRecord(0, 0.0, 0.7, MAJORITY)] + [
        EvalRecord(6 * i, float(i), 0.4 + rise * max(0, i - 5) / 5 * noise(),
                   best - (fall * max(0, i - 5) / 5 * noise() if generalized else 0.0)) for i in range(1, 11)]
    final_acc = (0.85 if good else 0.85 - 0.05 * (k - 1)) * noise() if generalized else MAJORITY
    base_evals = [EvalRecord(0, 0.0, 0.7, MAJORITY), EvalRecord(60, 10.0, 0.4, final_acc)]
    metrics = TrainMetrics("complete", 60, 6, train_loss, [1e-3] * 60, [1.0] * 60, base_evals, [0, 20, 40, 60], 1.0,
                           256, NUM_DEV, 2)
    overfit = TrainMetrics("complete", 60, 6, train_loss, [1e-3] * 60, [1.0] * 60, evals, [0, 60], 1.0, 256,
                           NUM_DEV, 2)

    g = np.linspace(-1, 1, 21)  # fine enough that the seeds' noise moves the basin's area (else it is constant)
    A, B = np.meshgrid(g, g, indexing="ij")
    curv = 0.15 * b * b * noise()  # basin radius sqrt(0.1 / curv): 0.82 (good) inside the grid
    tl = loss_final + curv * (A**2 + B**2)
    # dev error: a monotone function of the training loss for the good arm; the bad arm's dev-error minimum sits
    # away from the training-loss minimum (lower correlation, a gap and a distance between the minima)
    shift = 0.0 if good else 0.5 + 0.1 * rng.normal()  # the bad arm's minima apart by a seed-dependent distance
    de = (0.2 + 0.05 * (tl - tl.min()) / np.ptp(tl) if good
          else 0.2 + 0.15 * ((A - shift) ** 2 + B**2))  # the bad arm's dev-error bowl sits at (shift, 0)
    de = de + 1e-4 * rng.normal(size=de.shape)  # break ties
    surface = SurfaceResult(tuple(g), tuple(g), {"train_loss": tuple(map(tuple, tl)),
                                                 "dev_error": tuple(map(tuple, de)),
                                                 "train_acc": tuple(map(tuple, 1 - de)),
                                                 "dev_loss": tuple(map(tuple, tl))}, _D, _D, 0.0, 10)
    t = np.linspace(0, 1, 5)
    zig = (0.0 if good else 0.3 * (k - 1) * noise()) * np.array([0, 1, -1, 1, 0])
    projection = TrajectoryProjection(tuple(-1 + t), tuple(zig), (0.0,) * 5, (0.0,) * 5, (0, 15, 30, 45, 60))
    straight = (0.8 if good else 0.8 - 0.15 * (k - 1)) * noise()
    ca = np.union1d(np.linspace(-0.25, 1.5, 15), [0.0, 1.0])
    # the bad arm's curve is bumpy before θ1; both arms' curves rise past θ1 (converged: claims.preconditions)
    bump = 0.0 if good else 0.1 * (k - 1) * np.sin(12 * ca) * (ca < 1)
    curve = _curve(ca, loss_final + math.log(2) * (1 - ca) ** 2 + bump)
    ra = np.linspace(-1, 1, 11)
    random_curves = tuple(_curve(ra, loss_final + 0.15 * b * b * noise() * ra**2) for _ in range(2))
    lam = 10.0 * b * noise()

    # lower layers: the good profile has stable, flat lower layers; the bad profile the reverse
    lo_f, hi_f = (1.0, k) if good else (k, 1.0)
    la = np.linspace(-1, 1, 5)
    layer_curves = {"low": _curve(la, loss_final + 0.02 * lo_f * la**2),
                    "middle": _curve(la, loss_final + 0.02 * la**2),
                    "high": _curve(la, loss_final + 0.02 * hi_f * noise() * la**2)}
    layer_norm = {"low": _curve(ra, loss_final + 0.15 * lo_f**2 * ra**2),
                  "middle": _curve(ra, loss_final + 0.3 * ra**2),
                  "high": _curve(ra, loss_final + 0.15 * hi_f**2 * noise() * ra**2)}
    per_layer = np.linspace(lo_f, hi_f, 6) * 0.01 * np.exp(rng.normal(0, 0.15, 6))  # neighbours swap sometimes
    rel = {"low": 0.01 * lo_f, "middle": 0.01 * (lo_f + hi_f) / 2, "high": 0.01 * hi_f * noise(),
           "embeddings": 0.005, **{f"layer.{i}": float(v) for i, v in enumerate(per_layer)}}
    rb = {g_: RollbackResult(g_, loss_final, loss_final + inc, 0.9, 0.9)
          for g_, inc in (("low", 0.05 * (lo_f - 1) + 0.001), ("middle", 0.01),
                          ("high", (0.05 * (hi_f - 1) + 0.001) * noise()))}
    analysis = RunAnalysis(
        run=f"{task}-{init}-seed{seed}", task=task, init=init, seed=seed, setting=setting, num_labels=2,
        partner_task="other", train_loss_theta1=loss_final, train_acc_theta1=0.95, dev_loss_theta1=0.5,
        dev_acc_theta1=final_acc, norm_theta0=100.0, norm_theta1=100.0, norm_delta1=1.0, curve=curve,
        surface=surface, projection=projection, random_curves=random_curves,
        hessian=EigenResult((lam, lam / 2), (1e-4, 1e-4), True, 10, 1e-3, "lanczos", 0),
        trace=TraceResult(100 * b * noise(), 1.0 * b, 10, 10, "hutchinson", 0),
        sharpness=SharpnessResult(1.0 * b * noise(), loss_final, loss_final + b / 100, 1e-3, 5, 6, 0),
        relative_change=rel, rollback_train=rb, rollback_dev=rb, layer_curves=layer_curves,
        layer_curves_normalized=layer_norm, trajectory_steps=(0, 20, 40, 60),
        trajectory_train_loss=(0.69, 0.3, 0.1, loss_final),
        straightness_full=Straightness(1.0, 1.0 / straight, straight),
        matched=MatchedCurvature(0.35, True, 0, 20, 0.5, 0.35,
                                 EigenResult((2 * lam,), (1e-4,), True, 10, 1e-3, "lanczos", 0)),
        dev_majority_rate=MAJORITY, num_dev=NUM_DEV,
        matched_learned=MatchedCurvature(
            0.52, True, 0, 20, 0.3, 0.52, EigenResult((1.5 * lam,), (1e-4,), True, 10, 1e-3, "lanczos", 0),
            learning_rate=1e-3, norm_theta=100.0,
            scaled_hessian=EigenResult((0.01 * lam * noise(),), (1e-6,), True, 10, 1e-3, "lanczos", 0),
            random_widths=tuple(_width(0.8 / b * noise()) for _ in range(2))),
        scaled_hessian=EigenResult((0.02 * lam * noise(),), (1e-6,), True, 10, 1e-3, "lanczos", 0),
        layer_swap_dev={g_: LayerSwapResult(g_, 0.5, 0.5 + inc, 0.8, 0.8 - inc / 10)
                        for g_, inc in (("low", 0.04 * (lo_f - 1) + 0.002), ("middle", 0.02),
                                        ("high", (0.04 * (hi_f - 1) + 0.002) * noise()))},
        adaptive_sharpness=AdaptiveSharpnessResult(
            sharpness=0.02 * b * noise(), base_loss=loss_final, max_loss=loss_final + 0.02 * b, rho=0.05, p=2.0,
            steps=5, restarts=1, step_size=0.5, num_gradients=6, perturbation_norm=0.05, offset=0.0, seed=0),
        group_curvature=GroupCurvatureResult(
            groups=tuple(GroupCurvature(g_, 1000, 5.0 * f_, 1e-5, True, 9, 50.0 * f_, 1.0, 2, 2)
                         for g_, f_ in (("low", lo_f), ("middle", (lo_f + hi_f) / 2), ("high", hi_f * noise()))),
            tol=1e-3, max_iter=8, which="LA", trace_method="hutchinson", trace_samples=2, method="autograd", seed=0,
            num_matvecs=33),
    )
    return RunEvidence(setting, task, init, seed, f"/runs/{task}-{init}-{seed}", "complete", metrics, analysis,
                       overfit, f"/runs/of-{task}-{init}-{seed}")


def make_pairs(q: float, *, tasks: tuple[str, ...] = ("sst2", "mrpc"), seeds: int = 4,
               scratch_learned: bool = True, scratch_generalized: bool = True,
               pretrained_generalized: bool = True, setting: str = "base") -> list[Pair]:
    """Pairs whose pretrained arm is the good one when ``q > 1`` and the bad one when ``q < 1``."""
    k = q if q >= 1 else 1 / q
    pre_good = q >= 1
    return [Pair(setting, t, s,
                 _evidence("pretrained", t, s, pre_good, k, generalized=pretrained_generalized, setting=setting),
                 _evidence("scratch", t, s, not pre_good, k, learned=scratch_learned,
                           generalized=scratch_generalized, setting=setting))
            for t in tasks for s in range(seeds)]
