"""The per-run analysis on a real (tiny) run that learns: orientation of δ1, the matched-loss curvature point,
full-space straightness, the majority rate and the normalised layer curves.

A tiny BERT (tiny-random) learns the toy GLUE copy in a few seconds at lr 1e-3, so these checks run on a real
trajectory rather than synthetic numbers: if δ1 were θ0 − θ1, the curve's α = 1 point would not be θ1; if the
matched point were taken after the level was crossed (or from the wrong snapshot), its loss would not sit at
the level between the bracketing snapshots.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from claims.analysis import MATCHED_LOSS_FRACTION, analyze_run
from repro.config import LandscapeSettings, TrainHyper, get_profile
from repro.training import train

pytestmark = pytest.mark.slow  # ~20 s: two tiny trainings and one analysis (runs in tox -e smoke)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, tiny_glue: Path):  # noqa: ANN201
    out = tmp_path_factory.mktemp("analysis")
    prof = get_profile("smoke")
    prof = dataclasses.replace(
        prof, model="tiny-random", train_size=96, dev_size=48,
        landscape=LandscapeSettings(curve_points=5, surface_points=3, random_width_points=5, random_directions=1,
                                    eval_train_size=48, eval_dev_size=48, eval_batch_size=48, hessian_top_k=1,
                                    hessian_max_iter=8, trace_samples=2, hessian_batch_size=16,
                                    hessian_examples=16, layer_surface_points=3))
    hyper = TrainHyper(learning_rate=5e-3, epochs=20, batch_size=16)
    prof = dataclasses.replace(prof, pretrained=hyper, scratch=hyper, snapshots=7)
    partner = dataclasses.replace(prof, pretrained=dataclasses.replace(hyper, epochs=1))
    runs = {"sst2": train(prof.train_config("sst2", "pretrained", 0), out, data_dir=tiny_glue, progress=False),
            "mrpc": train(partner.train_config("mrpc", "pretrained", 0), out, data_dir=tiny_glue, progress=False)}
    a = analyze_run(runs["sst2"], runs["mrpc"], prof, "base", out, data_dir=tiny_glue, device="cpu")
    return runs["sst2"], a


def test_the_run_learned(analysed) -> None:  # noqa: ANN001
    _, a = analysed
    assert a.train_loss_theta1 < 0.5 * math.log(2), a.train_loss_theta1


def test_curve_is_oriented_from_theta0_to_theta1(analysed) -> None:  # noqa: ANN001
    _, a = analysed
    al = list(a.curve.alphas)
    assert 0.0 in al and 1.0 in al
    loss = a.curve.values["train_loss"]
    assert loss[al.index(0.0)] == pytest.approx(a.trajectory_train_loss[0], rel=1e-5)
    assert loss[al.index(1.0)] == pytest.approx(a.trajectory_train_loss[-1], rel=1e-5)
    assert loss[al.index(1.0)] == pytest.approx(a.train_loss_theta1, rel=1e-9)
    assert a.trajectory_train_loss[0] > a.trajectory_train_loss[-1]


def test_matched_point_sits_at_the_level_between_its_snapshots(analysed) -> None:  # noqa: ANN001
    run, a = analysed
    m = a.matched
    assert m.level == pytest.approx(MATCHED_LOSS_FRACTION * math.log(2))
    assert m.reached and m.hessian is not None and m.hessian.eigenvalues[0] > 0
    steps = list(a.trajectory_steps)
    i = steps.index(m.step_after)
    assert steps[i - 1] == m.step_before
    assert a.trajectory_train_loss[i - 1] > m.level >= a.trajectory_train_loss[i]  # the first crossing
    assert all(v > m.level for v in a.trajectory_train_loss[: i - 1])
    assert 0 < m.t <= 1 and m.loss <= m.level
    assert m.loss >= m.level - 0.1  # bisection lands near the level, not at the far snapshot
    assert steps == [0, *run.metrics.snapshot_steps[1:-1], run.metrics.total_steps]


def test_full_space_straightness_and_majority_rate(analysed) -> None:  # noqa: ANN001
    _, a = analysed
    s = a.straightness_full
    assert 0 < s.ratio <= 1 and s.displacement == pytest.approx(a.norm_delta1, rel=1e-4)
    assert a.dev_majority_rate == pytest.approx(0.5) and a.num_dev == 48


def test_normalised_layer_curves_are_centred_on_theta1(analysed) -> None:  # noqa: ANN001
    _, a = analysed
    for g, c in a.layer_curves_normalized.items():
        al = np.asarray(c.alphas)
        y0 = c.values["train_loss"][int(np.argmin(np.abs(al)))]
        assert y0 == pytest.approx(a.train_loss_theta1, rel=1e-4), g
        assert c.direction.one_dim_policy == "zero" and c.direction.group == g
