"""Shared fixtures: a tiny handmade GLUE directory, the shared GLUE copy (skipped where absent), device skips."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
_WORDS = ("good great fine bad awful dull movie film plot actor scene story music long short funny sad "
          "warm cold bright dark simple clever").split()


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _sentence(rng: random.Random, label: int) -> str:
    cue = rng.choice(["good", "great", "clever"] if label else ["bad", "awful", "dull"])
    words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 10))]
    words.insert(rng.randrange(len(words) + 1), cue)
    return " ".join(words)


def make_tiny_glue(root: Path, n_train: int = 96, n_dev: int = 48, seed: int = 0) -> Path:
    """A learnable toy GLUE copy in the Hugging Face schema: sst2 (single sentence) and mrpc (pairs)."""
    rng = random.Random(seed)
    for split, n in (("train", n_train), ("validation", n_dev)):
        rows = []
        for i in range(n):
            label = i % 2
            rows.append({"sentence": _sentence(rng, label), "label": label, "idx": i})
        write_jsonl(root / "sst2" / f"{split}.jsonl", rows)
        rows = []
        for i in range(n):
            label = i % 2
            a = _sentence(rng, 1)
            rows.append({"sentence1": a, "sentence2": a if label else _sentence(rng, 0), "label": label, "idx": i})
        write_jsonl(root / "mrpc" / f"{split}.jsonl", rows)
    return root


@pytest.fixture(scope="session")
def tiny_glue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_glue(tmp_path_factory.mktemp("glue"))


@pytest.fixture(scope="session")
def shared_glue() -> Path:
    env = os.environ.get("REPRO_DATA_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "glue"
    if not (path / "sst2" / "train.jsonl").exists():
        pytest.skip(f"shared GLUE copy not found at {path} (set REPRO_DATA_DIR)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokenization caches go to a per-session temporary directory unless the caller set one."""
    if "REPRO_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
