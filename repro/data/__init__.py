"""GLUE data: task specs, loading from a local copy or the hub, tokenized tensor splits with a disk cache.

Typical use::

    from repro.data import prepare_split
    from repro.models import load_tokenizer

    train = prepare_split("rte", "train", load_tokenizer("minilm-l6"), tokenizer_id="minilm-l6", max_length=128)
    for batch in train.batches(32, shuffle=True, generator=torch.Generator().manual_seed(0)):
        loss = model(**batch).loss
"""

from repro.data.sources import (
    DATA_DIR_ENV,
    MNLI_MISMATCHED_TRAIN_NOTE,
    SplitSource,
    data_notes,
    describe_source,
    features_for,
    load_split,
    locate_split,
    resolve_data_dir,
    source_notes,
)
from repro.data.tasks import TASKS, TaskSpec, TsvLayout, get_task
from repro.data.tokenize import (
    CACHE_DIR_ENV,
    TokenizedSplit,
    prepare_split,
    resolve_cache_dir,
    subset_indices,
    tokenizer_fingerprint,
)

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "MNLI_MISMATCHED_TRAIN_NOTE",
    "TASKS",
    "SplitSource",
    "TaskSpec",
    "TokenizedSplit",
    "TsvLayout",
    "data_notes",
    "describe_source",
    "features_for",
    "get_task",
    "load_split",
    "locate_split",
    "prepare_split",
    "resolve_cache_dir",
    "resolve_data_dir",
    "source_notes",
    "subset_indices",
    "tokenizer_fingerprint",
]
