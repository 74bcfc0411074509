"""Shared fixtures: a tiny handmade GLUE directory, the shared GLUE copy (skipped where absent, an error in CI),
device skips, and the Hypothesis profile every property test runs under."""

from __future__ import annotations

import json
import os
import random
import threading
import zlib
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings
from tqdm import tqdm

# tqdm's default write lock includes a multiprocessing semaphore, shared by every process forked after it exists.
# mutmut (tox -e mutants) forks each mutant from the process that ran the suite; one mutant stopped while holding
# that lock left every later one waiting on it forever (seen: mutants of repro.training.loop idle on a futex, where
# the CPU-time limit never fires). A thread lock is copied on fork instead of shared; tests draw no bars from
# several processes at once.
tqdm.set_lock(threading.RLock())

REPO = Path(__file__).resolve().parent.parent

# Hypothesis properties here are guards, not explorations: a guard that passes on one run and fails on the next
# (or passes in the recorded CI run and fails on a laptop) is no guard. "guard" (the default, and what CI runs)
# derandomizes: the examples are a function of the test alone. HYPOTHESIS_PROFILE=explore draws fresh examples to
# look for new failures; anything it finds becomes an @example or a fixed test.
settings.register_profile("guard", derandomize=True, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "guard"))

# The environment as the session started: tests that delete REPRO_DATA_DIR to isolate themselves must not hide the
# real data from the tests that need it.
START_ENV: dict[str, str] = dict(os.environ)


def stable_seed(*key: object) -> int:
    """A 32-bit seed from a key such as ``("pretrained", "sst2", 0)``, the same in every process.

    ``hash()`` of a string changes with PYTHONHASHSEED, so test data seeded from it differs between runs."""
    return zlib.crc32(repr(key).encode("utf-8"))


def in_ci(env: Mapping[str, str]) -> bool:
    """CI sets ``CI`` (GitHub Actions, GitLab, most runners: ``CI=true``); "", "0", "false" and "no" mean unset."""
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def glue_dir(env: Mapping[str, str], required: str = "sst2/train.jsonl") -> Path | None:
    """The GLUE copy named by ``REPRO_DATA_DIR`` in ``env``, else the workspace copy ``../shared/glue``; None
    where it lacks ``required``. An explicit REPRO_DATA_DIR is never silently replaced by the workspace copy (a
    typo in it must show). Relative paths are taken from the working directory, as the library takes them."""
    env_dir = env.get("REPRO_DATA_DIR")
    cand = Path(env_dir).expanduser().resolve() if env_dir else REPO.parent / "shared" / "glue"
    return cand if (cand / required).is_file() else None


def require_glue(env: Mapping[str, str], required: str = "sst2/train.jsonl") -> Path:
    """The GLUE copy, or skip the test -- except in CI, where missing data fails it: a green CI run whose
    end-to-end tests all skipped has tested nothing."""
    path = glue_dir(env, required)
    if path is not None:
        return path
    where = env.get("REPRO_DATA_DIR") or str(REPO.parent / "shared" / "glue")
    msg = f"GLUE copy not found at {where} (no {required}); set REPRO_DATA_DIR to a GLUE copy"
    if in_ci(env):
        pytest.fail(f"{msg}. CI is set, so missing data is an error, not a skip.", pytrace=False)
    pytest.skip(msg)
_WORDS = ["good", "great", "fine", "bad", "awful", "dull", "movie", "film", "plot", "actor", "scene", "story", "music", "long", "short", "funny", "sad", "warm", "cold", "bright", "dark", "simple", "clever"]


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


TINY_PLAN_TASKS = ("sst2", "mrpc")


def tiny_plan_profile():
    """The tiny plan of the fast suite: tiny-random BERT on the handmade GLUE (both arms of sst2 and mrpc, seed 0),
    a reduced smoke profile whose whole training + analysis takes ~20 s on 2 cores."""
    import dataclasses

    from repro.config import TrainHyper, get_profile

    smoke = get_profile("smoke")
    hyper = TrainHyper(learning_rate=1e-3, epochs=1, batch_size=16)
    landscape = dataclasses.replace(
        smoke.landscape, curve_points=3, curve_min=0.0, curve_max=1.0, surface_points=3, surface_radius=1.0,
        random_width_points=3, random_directions=1, eval_train_size=16, eval_dev_size=16, eval_batch_size=16,
        hessian_top_k=1, hessian_max_iter=3, trace_samples=2, hessian_batch_size=8, hessian_examples=8,
        layer_surface_points=3,
    )
    return dataclasses.replace(
        smoke, name="pairing-test", model="tiny-random", tasks=TINY_PLAN_TASKS, seeds=(0,), max_length=24,
        train_size=32, dev_size=16, pretrained=hyper, scratch=hyper, overfit_epoch_factor=1.0, landscape=landscape,
        snapshots=2,
    )


@pytest.fixture(scope="session")
def tiny_plan(tiny_glue: Path, tmp_path_factory: pytest.TempPathFactory):
    """:func:`tiny_plan_profile` trained and analysed once per session (shared: a second plan costs ~20 s).
    Read-only for the tests: the run directories and analyses live under ``<out>/train`` and ``<out>/analysis``."""
    from repro.pipeline.plan import run_plan

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny-plan")
    result = run_plan(tiny_plan_profile(), out, data_dir=tiny_glue, device="cpu", progress=False)
    assert result.pairs, "the plan produced no pairs"
    return result


@pytest.fixture(scope="session")
def shared_glue() -> Path:
    """The real GLUE copy (``REPRO_DATA_DIR`` or ``../shared/glue``): skipped where absent, a failure in CI."""
    return require_glue(START_ENV)


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


def nan_loss_from(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Make the training loop's cross-entropy NaN from its ``call``-th call with gradients on (divergence tests)."""
    from types import SimpleNamespace

    from repro.training import loop

    real = torch.nn.functional
    calls = {"n": 0}

    def cross_entropy(logits, labels, *a, **k):
        out = real.cross_entropy(logits, labels, *a, **k)
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] >= call:
                return out * float("nan")
        return out

    monkeypatch.setattr(loop, "F", SimpleNamespace(cross_entropy=cross_entropy))
