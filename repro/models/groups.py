"""Parameter groups by depth: the paper's §7 splits the encoder into low / middle / high thirds.

For 24 layers (BERT-large) this gives exactly the paper's 0-7, 8-15, 16-23. Embeddings, pooler and the
classification head are groups of their own. Layer indices are read from parameter names
(``...layer.<i>....``), which covers BERT, RoBERTa, ELECTRA and DistilBERT.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

from repro.models.zoo import is_head_param

_LAYER_RE = re.compile(r"\.layer\.(\d+)\.")
DEPTH_GROUPS = ("low", "middle", "high")


def depth_thirds(num_layers: int) -> dict[str, list[int]]:
    """Split layer indices 0..n-1 into consecutive thirds; earlier thirds take the remainder.

    With fewer than three layers the middle group is empty (low = first, high = last).
    """
    if num_layers < 1:
        raise ValueError("a model needs at least one layer")
    if num_layers < 3:
        return {"low": [0], "middle": [], "high": [num_layers - 1] if num_layers > 1 else []}
    base, extra = divmod(num_layers, 3)
    sizes = [base + (1 if i < extra else 0) for i in range(3)]
    out: dict[str, list[int]] = {}
    start = 0
    for group, size in zip(DEPTH_GROUPS, sizes, strict=True):
        out[group] = list(range(start, start + size))
        start += size
    return out


def layer_index(param_name: str) -> int | None:
    m = _LAYER_RE.search(param_name)
    return int(m.group(1)) if m else None


def parameter_groups(named: Iterable[tuple[str, object]] | nn.Module) -> dict[str, list[str]]:
    """Named groups of parameter names: ``all``, ``encoder``, ``embeddings``, ``pooler``, ``head``,
    ``low``/``middle``/``high`` and ``layer.<i>``. Every parameter is in ``all`` and exactly one of
    embeddings / layer.<i> / pooler / head / ``other``."""
    if isinstance(named, nn.Module):
        named = named.named_parameters()
    names = [n for n, _ in named]
    groups: dict[str, list[str]] = {"all": list(names), "encoder": [], "embeddings": [], "pooler": [], "head": []}
    layers: dict[int, list[str]] = {}
    other: list[str] = []
    for n in names:
        idx = layer_index(n)
        if is_head_param(n):
            groups["head"].append(n)
        elif idx is not None:
            layers.setdefault(idx, []).append(n)
            groups["encoder"].append(n)
        elif "embeddings" in n:
            groups["embeddings"].append(n)
        elif "pooler" in n:
            groups["pooler"].append(n)
        else:
            other.append(n)
    if other:
        groups["other"] = other
    num_layers = max(layers) + 1 if layers else 0
    for i in sorted(layers):
        groups[f"layer.{i}"] = layers[i]
    if num_layers:
        for group, idxs in depth_thirds(num_layers).items():
            groups[group] = [n for i in idxs for n in layers.get(i, [])]
    return groups
