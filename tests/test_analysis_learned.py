"""analyze_run on a run that *learned*: the holes the mutation pass left in claims/analysis.py (tests/MUTATION.md).

The session's tiny plan barely leaves its start, so its dev losses hardly depend on which dev examples are used
and it never reaches a matched-loss level: a dev subset drawn with another seed, or the matched-loss curvature
computed on the wrong examples, left every test green. Here one tiny-random run is trained until it learns (the
golden tiny recipe: 5e-3, 20 epochs of 96 examples, ~3 s), with its partner for δ2, and the analysis' dev numbers
and both matched-loss curvatures are recomputed by hand from the saved weights on the documented subsets (dev seed
12, Hessian seed 13).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from claims.analysis import analyze_run
from repro.config import TrainHyper
from repro.curvature import HessianOperator, lanczos
from repro.landscape import ParamVector
from repro.training import TrainRun, load_data, train
from tests.conftest import tiny_plan_profile
from tests.test_analysis_fields import REL, _loss_acc, _model, _put, _subset


@pytest.fixture(scope="module")
def learned(tiny_glue: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    torch.set_num_threads(1)
    h = TrainHyper(learning_rate=5e-3, epochs=20, batch_size=16)
    prof = dataclasses.replace(tiny_plan_profile(), train_size=96, dev_size=48, pretrained=h, scratch=h, snapshots=7)
    prof = dataclasses.replace(prof, landscape=dataclasses.replace(prof.landscape, eval_train_size=48,
                                                                   eval_dev_size=32, hessian_examples=16,
                                                                   hessian_batch_size=16, hessian_max_iter=6))
    out = tmp_path_factory.mktemp("learned")
    setting = prof.settings[0]
    cfg = prof.train_config("sst2", "pretrained", 0, setting)
    run = train(cfg, out, data_dir=tiny_glue, device="cpu", progress=False)
    partner = train(prof.train_config("mrpc", "pretrained", 0, setting), out, data_dir=tiny_glue, device="cpu",
                    progress=False)
    a = analyze_run(run, partner, prof, setting.name, out, data_dir=tiny_glue, device="cpu")
    return prof, run, a, tiny_glue


def test_the_run_learned_and_its_dev_loss_depends_on_the_examples(learned) -> None:  # noqa: ANN001
    prof, run, a, glue = learned
    assert a.train_loss_theta1 <= 0.75 * math.log(2), "the fixture must learn, or this file tests nothing"
    task, _, dev = load_data(run.config, glue)
    model = _model(run.config, task.num_labels, run.theta1())
    ls = prof.landscape
    documented = _loss_acc(model, _subset(dev, ls.eval_dev_size, 12, ls.eval_batch_size))[0]
    other = _loss_acc(model, _subset(dev, ls.eval_dev_size, 99, ls.eval_batch_size))[0]
    assert abs(documented - other) > 1e-3, "another dev subset gives the same loss: the seed is not observable"
    assert a.dev_loss_theta1 == pytest.approx(documented, rel=REL)


@pytest.mark.parametrize("which, fraction", [("matched", 0.5), ("matched_learned", 0.75)])
def test_matched_curvature_is_lanczos_on_the_hessian_subset_at_the_matched_point(learned, which: str,  # noqa: ANN001
                                                                                 fraction: float) -> None:
    prof, run, a, glue = learned
    m = getattr(a, which)
    assert m.level == pytest.approx(fraction * math.log(2), rel=1e-12)
    assert m.reached, f"the learned run never reached {m.level:.3f}: the fixture does not exercise the point"
    task, train_split, _ = load_data(run.config, glue)
    ls = prof.landscape
    hess_b = _subset(train_split, ls.hessian_examples, 13, ls.hessian_batch_size)
    traj = dict(run.trajectory())
    model = _model(run.config, task.num_labels, run.theta1())
    names = [n for n, _ in model.named_parameters()]
    before, after = (ParamVector(tuple(names), tuple(traj[s][n] for n in names)) for s in (m.step_before,
                                                                                         m.step_after))
    point = before.clone().axpy_(m.t, after - before) if m.step_after != m.step_before else before
    _put(model, point.as_dict())
    want = lanczos(HessianOperator(model, hess_b, reuse_graph=len(hess_b) == 1), 1, tol=ls.hessian_tol,
                   max_iter=ls.hessian_max_iter, seed=run.config.seed).eigenvalues[0]
    assert m.hessian.eigenvalues[0] == pytest.approx(want, rel=1e-4)
    # the examples matter: the Hessian of another subset differs (so a wrong subset would be caught)
    other = _subset(train_split, ls.hessian_examples, 77, ls.hessian_batch_size)
    lam_other = lanczos(HessianOperator(model, other, reuse_graph=len(other) == 1), 1, tol=ls.hessian_tol,
                        max_iter=ls.hessian_max_iter, seed=run.config.seed).eigenvalues[0]
    assert abs(lam_other - want) > 1e-4 * abs(want)
