"""Named encoders, pretrained vs scratch initialisation, and depth groups."""

from repro.models.groups import DEPTH_GROUPS, depth_thirds, layer_index, parameter_groups
from repro.models.zoo import (
    INITS,
    MODELS,
    ModelSpec,
    attention_implementation,
    is_head_param,
    load_config,
    load_model,
    load_tokenizer,
    minilm_path,
    resolve_spec,
)

__all__ = [
    "DEPTH_GROUPS",
    "INITS",
    "MODELS",
    "ModelSpec",
    "attention_implementation",
    "depth_thirds",
    "is_head_param",
    "layer_index",
    "load_config",
    "load_model",
    "load_tokenizer",
    "minilm_path",
    "parameter_groups",
    "resolve_spec",
]
