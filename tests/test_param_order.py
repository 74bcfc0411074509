"""Vectors read back from safetensors come in name-sorted order, not the model's; every entry point must match
parameters by name."""

from __future__ import annotations

import torch

from repro.landscape import ParamVector, get_params, set_params
from repro.models import load_model


def test_set_params_matches_by_name_not_position() -> None:
    model = load_model("tiny-random", "scratch", 2, seed=0)
    theta = get_params(model)
    shifted = {n: t + i for i, (n, t) in enumerate(zip(theta.names, theta.tensors))}
    order = sorted(shifted)  # safetensors order
    assert list(order) != list(theta.names)
    set_params(model, ParamVector(tuple(order), tuple(shifted[n] for n in order)))
    live = dict(model.named_parameters())
    assert all(torch.equal(live[n], shifted[n]) for n in theta.names)
