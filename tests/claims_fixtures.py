"""Synthetic evidence for the claims' verdict logic: two arms whose every measured quantity differs by a factor q.

``q > 1`` makes the pretrained arm better in the direction the paper claims (flatter, faster, lower loss, more
robust, more consistent, lower layers more stable); ``q < 1`` reverses every difference. Seeds add independent
multiplicative noise so the statistics are not degenerate.
"""

from __future__ import annotations

import math

import numpy as np

from claims.analysis import RunAnalysis
from claims.base import Pair
from claims.plan import RunEvidence
from repro.curvature import EigenResult, SharpnessResult, TraceResult
from repro.landscape import CurveResult, DirectionInfo, SurfaceResult, TrajectoryProjection
from repro.metrics import RollbackResult
from repro.training import EvalRecord, TrainMetrics

_D = DirectionInfo("custom", 1.0)


def _curve(alphas: np.ndarray, train: np.ndarray, dev_err: np.ndarray) -> CurveResult:
    t = tuple(float(x) for x in train)
    e = tuple(float(x) for x in dev_err)
    return CurveResult(tuple(float(a) for a in alphas),
                       {"train_loss": t, "train_acc": tuple(1 - x for x in e), "train_error": e,
                        "dev_loss": t, "dev_acc": tuple(1 - x for x in e), "dev_error": e}, _D, 10)


def _evidence(init: str, task: str, seed: int, q: float, learned: bool = True) -> RunEvidence:
    rng = np.random.default_rng(hash((init, task, seed)) % 2**32)
    noise = lambda: float(np.exp(rng.normal(0, 0.05)))  # noqa: E731
    good = init == "pretrained"
    s = (1.0 if good else q) * noise()  # "badness" factor of this arm
    loss_final = 0.05 * s if learned else 0.69
    # training curve: exponential decay with time constant proportional to badness
    steps = np.arange(1, 61)
    train_loss = list(math.log(2) * np.exp(-steps / (4 * s)) + loss_final)
    spe = 6
    # extended-training dev accuracy: pretrained flat, scratch falling from its best by 0.05*(q-1)
    drop = max(0.0, 0.05 * (s - 1))
    evals = [EvalRecord(0, 0.0, 0.7, 0.5)] + [
        EvalRecord(6 * k, float(k), 0.4 + 0.02 * k * (s - 1) / max(s, 1), 0.8 - drop * k / 10) for k in range(1, 11)]
    metrics = TrainMetrics("complete", 60, spe, train_loss, [1e-3] * 60, [1.0] * 60,
                           evals, [0, 20, 40, 60], 1.0, 32, 32, 2)
    g = np.linspace(-1, 1, 7)
    A, B = np.meshgrid(g, g, indexing="ij")
    sharp = s * 2.0
    tl = loss_final + 0.04 * s * (A**2 + B**2)  # pretrained basin covers most of the grid, scratch a part
    # dev error agrees with the training loss for the better arm; a bumpy, disagreeing surface for the worse one
    wiggle = (s - 1) * 0.2 * np.sin(5 * A + 3 * B + seed)
    de = 0.2 + 0.1 * (tl - tl.min()) / np.ptp(tl) + wiggle
    surface = SurfaceResult(tuple(g), tuple(g), {"train_loss": tuple(map(tuple, tl)), "dev_error": tuple(map(tuple, de)),
                                                 "train_acc": tuple(map(tuple, 1 - de)), "dev_loss": tuple(map(tuple, tl))},
                            _D, _D, 0.0, 10)
    t = np.linspace(0, 1, 5)
    zig = (s - 1) * 0.3 * np.array([0, 1, -1, 1, 0])
    projection = TrajectoryProjection(tuple(-1 + t), tuple(zig), (0.0,) * 5, (0.0,) * 5, (0, 15, 30, 45, 60))
    ca = np.linspace(-0.25, 1.5, 15)
    bump = (s - 1) * 0.1 * np.sin(12 * ca)
    curve = _curve(ca, loss_final + math.log(2) * (1 - ca) ** 2 + bump, 0.2 + 0 * ca)
    ra = np.linspace(-1, 1, 11)
    random_curves = tuple(_curve(ra, loss_final + sharp * ra**2, 0.2 + 0 * ra) for _ in range(2))
    lift = q if good else 1.0  # the lower layers of a good (pretrained) model are more invariant
    la = np.linspace(-1, 1, 5)
    layer_curves = {"low": _curve(la, loss_final + 0.02 * la**2, 0 * la),
                    "middle": _curve(la, loss_final + 0.05 * la**2, 0 * la),
                    "high": _curve(la, loss_final + 0.02 * lift * la**2, 0 * la)}
    rel = {"low": 0.01, "middle": 0.015, "high": 0.01 * lift * noise(), "embeddings": 0.005,
           "layer.0": 0.01, "layer.1": 0.012, "layer.2": 0.01 * lift}
    rb = {g_: RollbackResult(g_, loss_final, loss_final + inc, 0.9, 0.9)
          for g_, inc in (("low", 0.001), ("middle", 0.01), ("high", 0.001 + 0.05 * (lift - 1) * noise()))}
    analysis = RunAnalysis(
        run=f"{task}-{init}-seed{seed}", task=task, init=init, seed=seed, setting="base", num_labels=2,
        partner_task="other", train_loss_theta1=loss_final, train_acc_theta1=0.95, dev_loss_theta1=0.5,
        dev_acc_theta1=0.8, norm_theta0=100.0, norm_theta1=100.0, norm_delta1=1.0 * s, curve=curve, surface=surface,
        projection=projection, random_curves=random_curves,
        hessian=EigenResult((sharp * 10, sharp * 5), (1e-4, 1e-4), True, 10, 1e-3, "lanczos", 0),
        trace=TraceResult(sharp * 100, 1.0, 10, 10, "hutchinson", 0),
        sharpness=SharpnessResult(sharp, loss_final, loss_final + sharp / 100, 1e-3, 5, 6, 0),
        relative_change=rel, rollback_train=rb, rollback_dev=rb, layer_curves=layer_curves,
    )
    return RunEvidence("base", task, init, seed, f"/runs/{task}-{init}-{seed}", "complete", metrics, analysis, metrics,
                       f"/runs/of-{task}-{init}-{seed}")


def make_pairs(q: float, *, tasks: tuple[str, ...] = ("sst2", "mrpc"), seeds: int = 4,
               scratch_learned: bool = True) -> list[Pair]:
    return [Pair("base", t, s, _evidence("pretrained", t, s, q), _evidence("scratch", t, s, q, scratch_learned))
            for t in tasks for s in range(seeds)]
