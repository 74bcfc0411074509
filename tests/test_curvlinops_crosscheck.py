"""Our Hessian-vector and GGN-vector products against curvlinops' ``HessianLinearOperator`` / ``GGNLinearOperator``
in float64, to float64 tolerance: a tiny MLP with cross-entropy over two batches of different sizes (both weight
batches by example count: ours ``ls / total``, curvlinops ``reduction="mean"`` times ``batch_size / num_data``), and
a tiny random BertForSequenceClassification (eager attention) through our HF-style batch dicts (curvlinops gets
``(inputs, labels)`` pairs and a module that takes the inputs dict).

Known upstream bug: torch's second-order forward-mode derivative of ``layer_norm`` is wrong (pytorch/pytorch#196700;
torch 2.13), and curvlinops' Hessian product is forward-over-reverse, so its rows of LayerNorm *weights* are wrong.
The BERT Hessian check therefore compares the group without LayerNorm weights, and checks ours on all parameters
against a central finite difference of gradients instead.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor, nn

with warnings.catch_warnings():  # linear_operator (a curvlinops dependency) calls the deprecated torch.jit.script
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
    curvlinops = pytest.importorskip("curvlinops")

from repro.bench.peers import DictInputModel, curvlinops_data  # noqa: E402
from repro.curvature import HessianOperator  # noqa: E402
from repro.curvature.ggn import GGNOperator  # noqa: E402

# curvlinops' jvp loads torch's forward-mode decompositions through torch.jit.script (deprecated in torch 2.13)
pytestmark = pytest.mark.filterwarnings(r"ignore:.*torch\.jit\.script.* is deprecated:DeprecationWarning")

RTOL = 1e-10


class TinyMLP(nn.Module):
    """Takes our batch dicts' inputs as keywords and returns an object with ``.logits`` (as a HF classifier)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh(), nn.Linear(6, 3))

    def forward(self, features: Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.net(features))


def _mlp_batches() -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [{"features": torch.randn(n, 5, generator=g, dtype=torch.float64),
             "labels": torch.randint(0, 3, (n,), generator=g)} for n in (3, 7)]


def _theirs(cls: type, model: nn.Module, batches: list[dict[str, Tensor]], names: list[str]):  # noqa: ANN202
    keep = set(names)
    params = [p for n, p in model.named_parameters() if n in keep]
    key = next(k for k in batches[0] if k != "labels")
    return cls(DictInputModel(model), nn.CrossEntropyLoss(), params, curvlinops_data(batches),
               batch_size_fn=lambda x: int(x[key].shape[0]), check_deterministic=False)


def _rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _vectors(size: int, n: int = 3) -> list[Tensor]:
    g = torch.Generator().manual_seed(7)
    return [torch.randn(size, generator=g, dtype=torch.float64) for _ in range(n)]


@pytest.fixture(scope="module")
def mlp() -> TinyMLP:
    torch.manual_seed(0)
    return TinyMLP().double().eval()


@pytest.mark.parametrize("kind", ["hessian", "ggn"])
def test_mlp_products_match_curvlinops(mlp: TinyMLP, kind: str) -> None:
    batches = _mlp_batches()
    names = [n for n, _ in mlp.named_parameters()]
    ours_cls, theirs_cls = ((HessianOperator, curvlinops.HessianLinearOperator) if kind == "hessian"
                            else (GGNOperator, curvlinops.GGNLinearOperator))
    ours, theirs = ours_cls(mlp, batches, names), _theirs(theirs_cls, mlp, batches, names)
    for v in _vectors(ours.size):
        ref = theirs @ v
        assert ref.norm() > 1e-3  # a product that is not trivially zero
        assert _rel(ours.matvec(v), ref) < RTOL
        # the check discriminates: a product of one batch only, or twice the product, is far off
        assert _rel(ours_cls(mlp, batches[1:], names).matvec(v), ref) > 1e-2
        assert _rel(2 * ours.matvec(v), ref) > 0.5


def test_mlp_hessian_of_a_parameter_subset_matches_curvlinops(mlp: TinyMLP) -> None:
    batches = _mlp_batches()
    names = ["net.0.weight", "net.4.bias"]  # the others held fixed
    ours, theirs = HessianOperator(mlp, batches, names), _theirs(curvlinops.HessianLinearOperator, mlp, batches, names)
    for v in _vectors(ours.size):
        assert _rel(ours.matvec(v), theirs @ v) < RTOL


def _tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=12,
                     max_position_embeddings=16, num_labels=3, attn_implementation="eager")
    return BertForSequenceClassification(cfg).double().eval()


def _bert_batches() -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(2)
    out = []
    for n, length in ((3, 6), (5, 4)):
        ids = torch.randint(1, 40, (n, length), generator=g)
        mask = torch.ones(n, length, dtype=torch.long)
        mask[0, length // 2:] = 0  # padding
        out.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
                    "labels": torch.randint(0, 3, (n,), generator=g)})
    return out


@pytest.fixture(scope="module")
def bert() -> nn.Module:
    return _tiny_bert()


def test_bert_ggn_matches_curvlinops(bert: nn.Module) -> None:
    batches = _bert_batches()
    names = [n for n, _ in bert.named_parameters()]
    ours, theirs = GGNOperator(bert, batches, names), _theirs(curvlinops.GGNLinearOperator, bert, batches, names)
    for v in _vectors(ours.size, 2):
        ref = theirs @ v
        assert _rel(ours.matvec(v), ref) < RTOL
        assert _rel(GGNOperator(bert, batches[:1], names).matvec(v), ref) > 1e-2


def test_bert_hessian_matches_curvlinops_without_layernorm_weights(bert: nn.Module) -> None:
    batches = _bert_batches()
    names = [n for n, _ in bert.named_parameters() if not n.endswith("LayerNorm.weight")]
    ours = HessianOperator(bert, batches, names)
    theirs = _theirs(curvlinops.HessianLinearOperator, bert, batches, names)
    for v in _vectors(ours.size, 2):
        ref = theirs @ v
        assert _rel(ours.matvec(v), ref) < RTOL
        assert _rel(HessianOperator(bert, batches[1:], names).matvec(v), ref) > 1e-2


def test_bert_hessian_with_layernorm_weights_matches_finite_differences(bert: nn.Module) -> None:
    """All parameters, LayerNorm weights included (where curvlinops' forward-over-reverse product is wrong under
    pytorch/pytorch#196700): ours against a float64 central difference of gradients (error ~h² ≈ 1e-8)."""
    batches = _bert_batches()
    names = [n for n, _ in bert.named_parameters()]
    exact = HessianOperator(bert, batches, names)
    fd = HessianOperator(bert, batches, names, method="finite_difference", fd_step=1e-4)
    for v in _vectors(exact.size, 2):
        ref = fd.matvec(v)
        assert _rel(exact.matvec(v), ref) < 1e-6
        assert _rel(HessianOperator(bert, batches[1:], names).matvec(v), ref) > 1e-2
