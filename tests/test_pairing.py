"""The experiment plan on a real (tiny) run: which arm is which, and which run δ2 comes from.

Every claim compares the ``pretrained`` arm with the ``scratch`` arm of a (setting, task, seed) pair, and reads a
surface spanned by δ1 = θ1 − θ0 of the run and δ2 = θ1′ − θ0 of the *partner task's* run from the same θ0. A plan that
labels scratch as pretrained inverts every claim; a δ2 from the run itself (δ2 ∥ δ1) or with its sign flipped gives a
different surface. Neither shows in structure or finiteness checks, so this test trains a real plan (tiny-random
BERT on the handmade GLUE, reduced smoke profile, ~20 s on 2 cores) once and checks the science of the pairing
against the saved weights themselves.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.models import load_model
from repro.training import TrainRun
from tests.conftest import TINY_PLAN_TASKS as TASKS
from tests.conftest import tiny_plan_profile as _profile


@pytest.fixture(scope="module")
def plan(tiny_plan):  # noqa: ANN001, ANN201
    return tiny_plan  # the session's shared tiny plan (tests/conftest.py)


def _flat(d: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    return torch.cat([d[n].reshape(-1).double() for n in names])


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


@functools.lru_cache(maxsize=None)
def _initial_weights(model: str, init: str, num_labels: int, seed: int) -> dict[str, torch.Tensor]:
    m = load_model(model, init, num_labels, seed)
    return {n: p.detach().clone() for n, p in m.named_parameters()}


def test_every_pair_has_one_arm_of_each_init_for_its_own_task_and_seed(plan) -> None:  # noqa: ANN001
    profile = _profile()
    assert {(p.task, p.seed) for p in plan.pairs} == {(t, s) for t in TASKS for s in profile.seeds}
    for p in plan.pairs:
        assert p.pretrained.init == "pretrained" and p.scratch.init == "scratch"
        for arm in (p.pretrained, p.scratch):
            assert (arm.task, arm.seed, arm.setting) == (p.task, p.seed, p.setting)
            assert arm.status == "complete" and arm.analysis is not None, arm
            assert (arm.analysis.task, arm.analysis.init, arm.analysis.seed) == (arm.task, arm.init, arm.seed)
        assert p.pretrained.run_dir != p.scratch.run_dir


def test_arms_start_from_the_pretrained_and_the_seeded_random_weights(plan) -> None:  # noqa: ANN001
    """θ0 of the pretrained arm is the published (here: fixed-seed) checkpoint, θ0 of the scratch arm is the seeded
    random init of the same architecture -- and the two differ in the encoder, not only in the head."""
    profile = _profile()
    for p in plan.pairs:
        n = p.pretrained.metrics.num_labels
        pre = _initial_weights(profile.model, "pretrained", n, p.seed)
        scr = _initial_weights(profile.model, "scratch", n, p.seed)
        theta0_pre = TrainRun.load(Path(p.pretrained.run_dir)).theta0()
        theta0_scr = TrainRun.load(Path(p.scratch.run_dir)).theta0()
        assert _same(theta0_pre, pre), f"{p.task}: the pretrained arm did not start from the pretrained weights"
        assert _same(theta0_scr, scr), f"{p.task}: the scratch arm did not start from its seeded random init"
        encoder = [k for k in pre if k.startswith("bert.encoder.") or k.startswith("bert.embeddings.")]
        assert encoder and not any(torch.equal(pre[k], scr[k]) for k in encoder if pre[k].ndim >= 2)
        assert not torch.equal(_flat(theta0_pre, encoder), _flat(theta0_scr, encoder))


def test_partner_is_the_other_task_with_the_same_init_and_seed(plan) -> None:  # noqa: ANN001
    for e in plan.evidence:
        assert e.analysis is not None and e.analysis.partner_task == next(t for t in TASKS if t != e.task)


def _partner(plan, e):  # noqa: ANN001, ANN202
    return next(x for x in plan.evidence if (x.task, x.init, x.seed, x.setting)
                == (e.analysis.partner_task, e.init, e.seed, e.setting))


def test_delta2_is_the_partner_displacement_from_the_same_theta0(plan) -> None:  # noqa: ANN001
    """The stored plane matches δ1 = θ1 − θ0 and δ2 = θ1′ − θ0 recomputed from the saved weights: cos(δ1, δ2), ‖δ2‖ =
    ‖δ1‖, and the Gram matrix of the trajectory projection. δ2 from the run itself has cosine 1, a flipped δ2 has
    the opposite cosine, a partner from the other arm has a different one."""
    for e in plan.evidence:
        run, partner = TrainRun.load(Path(e.run_dir)), TrainRun.load(Path(_partner(plan, e).run_dir))
        t0, t1, t1p = run.theta0(), run.theta1(), partner.theta1()
        names = [k for k in t0 if k in t1p and t1p[k].shape == t0[k].shape]
        d1 = _flat(t1, list(t0)) - _flat(t0, list(t0))
        raw2 = torch.cat([(t1p[k] if k in names else t0[k]).reshape(-1).double() - t0[k].reshape(-1).double()
                          for k in t0])
        cos = float(d1 @ raw2 / (d1.norm() * raw2.norm()))
        assert abs(cos) < 0.99, "the partner moved along the run's own δ1: the test cannot tell them apart"
        assert abs(cos) > 1e-3, "δ1 ⟂ δ2 here: a flipped δ2 would have the same cosine"
        s = e.analysis.surface
        assert s is not None
        assert s.cosine_d1_d2 == pytest.approx(cos, abs=1e-4), e.task
        assert s.d2.kind == "cross_task" and s.d1.kind == "optimization"
        assert s.d2.norm == pytest.approx(float(d1.norm()), rel=1e-4)
        assert s.d1.norm == pytest.approx(float(d1.norm()), rel=1e-4) == e.analysis.norm_delta1
        g = np.asarray(e.analysis.projection.gram)
        n1 = float(d1.norm())
        np.testing.assert_allclose(g, [[n1**2, cos * n1**2], [cos * n1**2, n1**2]], rtol=1e-3, atol=1e-6 * n1**2)
        # the other arm's partner would give another plane
        other = next(x for x in plan.evidence if (x.task, x.seed, x.setting) == (e.analysis.partner_task, e.seed,
                                                                                  e.setting) and x.init != e.init)
        t1o = TrainRun.load(Path(other.run_dir)).theta1()
        raw_o = torch.cat([t1o[k].reshape(-1).double() - t0[k].reshape(-1).double() for k in t0])
        cos_o = float(d1 @ raw_o / (d1.norm() * raw_o.norm()))
        assert abs(cos_o - cos) > 1e-3


def test_surface_is_centred_on_theta1_with_theta0_at_minus_delta1(plan) -> None:  # noqa: ANN001
    """The surface θ1 + αδ1 + βδ2 and the curve θ0 + α·δ1 share the training batches: the surface at (0, 0) is the
    curve at α=1 (θ1) and the surface at (−1, 0) is the curve at α=0 (θ0). The projected trajectory starts at θ0,
    i.e. at (−1, 0) of the plane."""
    for e in plan.evidence:
        a = e.analysis
        s, c = a.surface, a.curve
        al, be = list(s.alphas), list(s.betas)
        grid, curve = s.train_loss, c.array("train_loss")
        i0, im, j0 = al.index(0.0), al.index(-1.0), be.index(0.0)
        assert c.alphas[0] == 0.0 and c.alphas[-1] == 1.0
        assert grid[i0, j0] == pytest.approx(curve[-1], rel=1e-5)
        assert grid[im, j0] == pytest.approx(curve[0], rel=1e-5)
        assert a.train_loss_theta1 == pytest.approx(curve[-1], rel=1e-6)
        p = a.projection
        assert p.steps[0] == 0 and p.steps[-1] == max(p.steps)
        assert p.alphas[0] == pytest.approx(-1.0, abs=1e-4) and p.betas[0] == pytest.approx(0.0, abs=1e-4)
        assert p.alphas[-1] == pytest.approx(0.0, abs=1e-6) and p.betas[-1] == pytest.approx(0.0, abs=1e-6)
        assert math.isfinite(a.hessian.eigenvalues[0])
