"""GridEvaluator by behaviour: the vmapped path against the per-point loop and an independent oracle, the loss and
autocast the caller asked for, and the model handed back as it was lent (mutation-testing pass, issue 10)."""

from __future__ import annotations

import contextlib
import importlib
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from classifier_fixture import CountingClassifier, batches, ce_loss, logits_of, oracle, random_vector
from repro.landscape import GridEvaluator, ParamVector, classification_loss, get_params
from repro.landscape.evaluate import model_inputs

# the module, not the function ``repro.landscape.evaluate`` that the package re-exports under the same name
evaluate_mod = importlib.import_module("repro.landscape.evaluate")

POINTS = [(0.0, 0.0), (0.7, -0.3), (-1.2, 0.4), (0.25, 1.5), (2.0, 2.0)]


def _setup(seed: int = 0):
    model = CountingClassifier(seed)
    base = get_params(model)
    dirs = [random_vector(base, seed + 1), random_vector(base, seed + 2)]
    sets = {"train": batches([3, 5], seed + 3), "dev": batches([4], seed + 4)}
    return model, base, dirs, sets


def _point(base: ParamVector, dirs: list[ParamVector], coefs: tuple[float, ...]) -> ParamVector:
    p = base.clone()
    for c, d in zip(coefs, dirs):
        p.axpy_(c, d)
    return p


@pytest.mark.parametrize("n_points", [1, 2, 3, 5])
def test_vmapped_points_equal_the_loop_and_the_oracle_in_chunks_of_two(n_points: int) -> None:
    """vmap_points=2 over 1, 2, 3 and 5 points (one full chunk, a chunk and a remainder, ...) gives every point's
    example-weighted loss and accuracy, in order, as the per-point loop and an independent computation do. A wrong
    chunk stride, a dropped remainder or points out of order would put the wrong loss at a grid coordinate."""
    model, base, dirs, sets = _setup()
    pts = POINTS[:n_points]
    with GridEvaluator(model, base, dirs, sets, loss_fn=ce_loss, logits_fn=logits_of) as ev:
        loop = ev.evaluate_points(pts)
    with GridEvaluator(model, base, dirs, sets, loss_fn=ce_loss, logits_fn=logits_of, vmap_points=2) as ev:
        vm = ev.evaluate_points(pts)
    assert len(loop) == len(vm) == n_points
    for p, a, b in zip(pts, loop, vm):
        assert set(a) == set(b) == {"train", "dev"}
        for name in sets:
            want_loss, want_acc = oracle(model, _point(base, dirs, p), sets[name])
            for got in (a[name], b[name]):
                assert got.loss == pytest.approx(want_loss, rel=1e-10)
                assert got.accuracy == pytest.approx(want_acc, abs=1e-12)
                assert got.count == sum(int(x["labels"].shape[0]) for x in sets[name])
    # the losses really differ between points, so a permutation would show
    assert len({round(r["train"].loss, 9) for r in loop}) == n_points


@pytest.mark.parametrize(("vmap_points", "n_points", "passes"), [(1, 5, 5), (2, 1, 1), (2, 2, 1), (2, 5, 3), (5, 5, 1)])
def test_vmap_points_sets_how_many_points_share_a_forward_pass(vmap_points: int, n_points: int, passes: int) -> None:
    """The option exists for speed: ``vmap_points=k`` evaluates k points per forward pass, and 1 means one pass per
    point. Counted per batch (3 batches over the two sets). A chunking bug (points re-evaluated in overlapping
    chunks, the vmapped path skipped for two points) costs passes without changing a value."""
    model, base, dirs, sets = _setup()
    with GridEvaluator(model, base, dirs, sets, loss_fn=ce_loss, logits_fn=logits_of, vmap_points=vmap_points) as ev:
        model.forwards = 0
        ev.evaluate_points(POINTS[:n_points])
        assert model.forwards == passes * 3


def _squared_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A loss that is not cross-entropy: what a regression head or the quadratic test model supplies."""
    logits = logits_of(model, batch)
    return (logits ** 2).sum(), torch.zeros((), dtype=torch.long), int(batch["labels"].shape[0])


@pytest.mark.parametrize("logits_fn", [None, logits_of])
def test_the_default_and_vmap_points_one_use_the_callers_loss_for_every_point(logits_fn) -> None:
    """By default (and with vmap_points=1) every point is evaluated with the caller's loss_fn. The vmapped path
    knows only cross-entropy, so taking it by default, or for vmap_points=1, would silently report cross-entropy
    for a model whose loss is something else. The default also needs no logits_fn."""
    model, base, dirs, sets = _setup()
    kwargs = {} if logits_fn is None else {"vmap_points": 1}
    with GridEvaluator(model, base, dirs, sets, loss_fn=_squared_logits, logits_fn=logits_fn, **kwargs) as ev:
        res = ev.evaluate_points(POINTS[:3])
    x = torch.cat([b["x"] for b in sets["dev"]])
    for p, r in zip(POINTS[:3], res):
        m = CountingClassifier(0).eval()
        with torch.no_grad():
            for n, t in _point(base, dirs, p).as_dict().items():
                dict(m.named_parameters())[n].copy_(t)
            want = float((m(x) ** 2).sum()) / x.shape[0]
        assert r["dev"].loss == pytest.approx(want, rel=1e-10)
        assert r["dev"].accuracy == 0.0


def test_vmap_points_above_one_without_logits_fn_is_refused() -> None:
    """The vmapped path needs a plain logits forward; without one it must fail at construction, not evaluate
    something else. Two is the smallest such value."""
    model, base, dirs, sets = _setup()
    with pytest.raises(ValueError, match="logits_fn"):
        GridEvaluator(model, base, dirs, sets, loss_fn=ce_loss, logits_fn=None, vmap_points=2)


def test_wrong_number_of_coefficients_is_refused() -> None:
    """A 1-D coefficient for a 2-D plane would silently evaluate along d1 only."""
    model, base, dirs, sets = _setup()
    with GridEvaluator(model, base, dirs, sets, loss_fn=ce_loss, logits_fn=logits_of) as ev, \
            pytest.raises(ValueError, match="coefficients"):
        ev.evaluate_point((0.5,))


@pytest.mark.parametrize("vmap_points", [1, 2])
@pytest.mark.parametrize("autocast", [False, True])
def test_autocast_choice_reaches_every_evaluation(monkeypatch, vmap_points: int, autocast: bool) -> None:
    """``autocast=False`` is how a caller asks for full precision on a GPU (e.g. near-flat surfaces where bf16
    rounding is larger than the loss differences); it must reach the autocast decision on both paths. Checked on
    the CPU by recording what the evaluator asks ``autocast_context`` for."""
    seen: list[object] = []

    def spy(device: torch.device, enabled: bool | None = None) -> contextlib.AbstractContextManager:
        seen.append(enabled)
        return contextlib.nullcontext()

    monkeypatch.setattr(evaluate_mod, "autocast_context", spy)
    model, base, dirs, sets = _setup()
    with GridEvaluator(model, base, dirs, sets, loss_fn=ce_loss, logits_fn=logits_of, autocast=autocast,
                       vmap_points=vmap_points) as ev:
        ev.evaluate_points(POINTS[:2])
        ev.evaluate_point(POINTS[2])
    assert seen and all(e is autocast for e in seen)


def test_close_restores_parameters_and_mode_once() -> None:
    """After a grid the model must be the model it was (parameters and train/eval mode), or the next measurement
    (a Hessian at θ1, the next surface) is taken at the last grid point. Closing again -- a context manager
    closed explicitly, then exited -- must not roll back what the caller changed after the first close."""
    model, base, dirs, sets = _setup()
    model.train()
    before = get_params(model)
    ev = GridEvaluator(model, base, dirs, sets, loss_fn=ce_loss, logits_fn=logits_of, vmap_points=2)
    ev.evaluate_points(POINTS[:3])
    ev.evaluate_point(POINTS[3])
    assert (get_params(model) - before).norm() > 0  # the evaluator did move the model
    ev.close()
    assert (get_params(model) - before).norm() == 0.0 and model.training
    with torch.no_grad():
        model.l2.bias.add_(1.0)
    model.eval()
    changed = get_params(model)
    ev.close()
    assert (get_params(model) - changed).norm() == 0.0 and not model.training


def test_close_puts_back_only_the_parameters_it_moves() -> None:
    """An evaluator over a parameter group (paper §7 layer groups) lends itself only those parameters: other code
    that changes other parameters while it is open (another group's evaluator, a training step) keeps its
    change, and the group itself comes back exactly."""
    model, _, _, sets = _setup()
    group = ("l1.weight", "l1.bias")
    base = get_params(model, group)
    d = random_vector(base, 9)
    outside_before = get_params(model, ("l2.weight",))
    with GridEvaluator(model, base, [d], sets, loss_fn=ce_loss, logits_fn=logits_of) as ev:
        ev.evaluate_point((0.8,))
        with torch.no_grad():
            model.l2.weight.mul_(2.0)
    assert (get_params(model, group) - base).norm() == 0.0
    assert torch.equal(model.l2.weight, 2.0 * outside_before.tensors[0])


def test_model_inputs_drop_only_the_labels() -> None:
    """A Hugging Face model given ``labels`` computes its own loss (and fails when the label count differs from
    the head); the evaluator computes the loss itself, so the model gets every input except the labels."""
    b = {"input_ids": torch.ones(2, 3), "attention_mask": torch.ones(2, 3), "labels": torch.zeros(2)}
    assert set(model_inputs(b)) == {"input_ids", "attention_mask"}
    assert model_inputs(b)["input_ids"] is b["input_ids"]


def test_classification_loss_upcasts_half_precision_logits() -> None:
    """bf16 logits (a bf16 model, or autocast) are upcast before the cross-entropy: the summed loss of a batch
    would otherwise be accumulated in 8 bits of mantissa."""

    class Bf16Head(nn.Module):
        def forward(self, **inputs: torch.Tensor) -> SimpleNamespace:
            assert "labels" not in inputs
            return SimpleNamespace(logits=inputs["x"].to(torch.bfloat16))

    x = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [1.0, 1.0, -2.0]])
    labels = torch.tensor([0, 2, 1])
    loss, correct, n = classification_loss(Bf16Head(), {"x": x, "labels": labels})
    assert loss.dtype == torch.float32 and n == 3 and int(correct) == 2
    want = F.cross_entropy(x.to(torch.bfloat16).float(), labels, reduction="sum")
    assert float(loss) == pytest.approx(float(want), rel=1e-6)
    assert math.isfinite(float(loss))
