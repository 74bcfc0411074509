"""Shared by the examples: a few labelled sentences (or your own TSV: ``label<TAB>text`` per line) as padded
batches for a Hugging Face sequence classifier. Copy it along with the example you use."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch

SENTENCES = [
    (1, "a gripping, beautifully acted film"), (0, "dull and far too long"),
    (1, "the best thing i have seen all year"), (0, "a tired plot with nothing new to say"),
    (1, "warm, funny and smart"), (0, "i wanted my two hours back"),
    (1, "an unexpected delight from start to finish"), (0, "clumsy dialogue and flat characters"),
]


def read_examples(path: str | None) -> list[tuple[int, str]]:
    if path is None:
        return list(SENTENCES)
    rows = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            label, _, text = line.partition("\t")
            if not text:
                raise SystemExit(f"{path}:{i}: expected 'label<TAB>text'")
            rows.append((int(label), text))
    return rows


def make_batches(tokenizer: Any, examples: list[tuple[int, str]], batch_size: int,
                 max_length: int = 64) -> list[dict[str, torch.Tensor]]:
    out = []
    for s in range(0, len(examples), batch_size):
        chunk = examples[s : s + batch_size]
        enc = tokenizer([t for _, t in chunk], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        batch = {k: enc[k] for k in ("input_ids", "attention_mask")}
        batch["token_type_ids"] = enc.get("token_type_ids", torch.zeros_like(enc["input_ids"]))
        batch["labels"] = torch.tensor([y for y, _ in chunk])
        out.append(batch)
    return out


def run(main: Callable[[], int]) -> NoReturn:
    """Run an example's ``main``: a user error (a model that cannot be loaded offline, bad data) is one line and exit
    2, as with the ``repro`` command; a bug keeps its traceback."""
    from repro.errors import ReproError

    try:
        code = main()
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    raise SystemExit(code)
