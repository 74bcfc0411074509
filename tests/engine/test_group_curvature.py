"""Per-group curvature (issue 19): each group's λ_max and trace are those of the dense Hessian's diagonal block
(torch.autograd.functional.hessian, block-sliced), not of the full Hessian; products are counted per group."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from classifier_fixture import CountingClassifier, batches, ce_loss
from conftest import synthetic_batches
from dense_oracles import dense_hessian
from repro.curvature import GroupCurvatureResult, HessianOperator, group_curvature, lanczos
from repro.storage import from_json_dict, to_json_dict

GROUPS = {"first": ["l1.weight", "l1.bias"], "second": ["l2.weight", "l2.bias"], "mixed": ["l1.bias", "l2.weight"]}


def _slices(model: torch.nn.Module) -> dict[str, np.ndarray]:
    idx, i = {}, 0
    for n, p in model.named_parameters():
        idx[n] = np.arange(i, i + p.numel())
        i += p.numel()
    return {g: np.concatenate([idx[n] for n in members]) for g, members in GROUPS.items()}


def test_each_group_is_its_dense_hessian_block() -> None:
    model, data = CountingClassifier(seed=4).eval(), batches([6, 5], seed=3)
    H = dense_hessian(model, data).numpy()
    # hutch++ with a budget above the block size is the exact trace (e_i probes), so the oracle is exact too
    r = group_curvature(model, data, GROUPS, loss_fn=ce_loss, tol=1e-10, max_iter=60, trace_samples=99,
                        trace_method="hutch++")
    full_top = np.linalg.eigvalsh(H)[-1]
    for name, sl in _slices(model).items():
        block = H[np.ix_(sl, sl)]
        g = r.get(name)
        assert g.num_params == len(sl)
        assert g.lambda_max == pytest.approx(np.linalg.eigvalsh(block)[-1], rel=1e-8)
        assert g.trace == pytest.approx(np.trace(block), rel=1e-10) and g.trace_stderr == 0.0
        assert g.converged and g.residual <= 1e-8 * abs(g.lambda_max)
        alone = lanczos(HessianOperator(model, data, GROUPS[name], ce_loss), 1, tol=1e-10, max_iter=60, seed=0)
        assert g.eigen_matvecs == alone.num_matvecs != g.trace_matvecs == len(sl)
        assert g.num_matvecs == g.eigen_matvecs + g.trace_matvecs
    assert r.get("first").lambda_max < full_top - 1e-6  # a block, not the full Hessian's top eigenvalue
    assert r.num_matvecs == sum(g.num_matvecs for g in r.groups)
    assert all(p.requires_grad for p in model.parameters())


def test_hutchinson_trace_per_group_is_within_its_variance() -> None:
    model, data = CountingClassifier(seed=4).eval(), batches([6, 5], seed=3)
    H = torch.from_numpy(dense_hessian(model, data).numpy())
    n = 200
    r = group_curvature(model, data, {"second": GROUPS["second"]}, loss_fn=ce_loss, trace_samples=n, seed=1)
    sl = torch.from_numpy(_slices(model)["second"])
    B = H[sl][:, sl]
    sd = math.sqrt(2 * (float((B * B).sum()) - float((torch.diagonal(B) ** 2).sum())) / n)
    g = r.get("second")
    assert abs(g.trace - float(torch.trace(B))) <= 4 * sd and g.trace_samples == n and g.trace_matvecs == n
    assert 0.7 * sd <= g.trace_stderr <= 1.3 * sd


def test_named_groups_of_a_bert_round_trip(tiny_model) -> None:
    data = synthetic_batches(1, 3, max_len=6, seed=2)
    r = group_curvature(tiny_model, data, ["head", "high"], tol=1e-2, max_iter=8, trace_samples=3, seed=0)
    assert [g.name for g in r.groups] == ["head", "high"]
    assert r.get("head").num_params == sum(p.numel() for n, p in tiny_model.named_parameters()
                                           if n.startswith("classifier."))
    assert from_json_dict(GroupCurvatureResult, to_json_dict(r)) == r
    with pytest.raises(KeyError, match="the groups are"):
        r.get("low")


def test_bad_groups_say_what_to_fix(tiny_model) -> None:
    data = synthetic_batches(1, 2, max_len=5, seed=2)
    with pytest.raises(ValueError, match="unknown parameter group"):
        group_curvature(tiny_model, data, ["top"])
    with pytest.raises(ValueError, match="has no parameters"):
        group_curvature(tiny_model, data, {"none": []})
    with pytest.raises(ValueError, match="unknown parameter"):
        group_curvature(tiny_model, data, {"typo": ["classifier.weights"]})
    with pytest.raises(TypeError, match=r"write \['head'\]"):
        group_curvature(tiny_model, data, "head")
    with pytest.raises(ValueError, match="trace_method"):
        group_curvature(tiny_model, data, ["head"], trace_method="exact")
