"""The science revision of a shard: a content hash of the code that computes the numbers a shard output holds.

Shards of one plan may be computed weeks apart, in different sessions, on machines that receive a copy of the
working tree without ``.git`` (the GPU machine) -- so neither ``git rev-parse HEAD`` nor the dirty flag can say
whether two shards were computed by the same code. What matters for merging is narrower than the whole tree: the
packages that turn data into training metrics and analyses, and the claims code that reads them. Report, plotting,
pipeline (scheduling, sharding, merging) and CLI changes do not change a number, so they must not invalidate shards
that cost GPU time; a change to any file listed in :data:`SCIENCE_SOURCES` does.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

# Folders (relative to the repository root) whose Python files compute the numbers of a claims run: training,
# models, data, the instruments, and the claims science (claims/analysis.py measures each run; the rest of claims/
# reads the measures into effects and verdicts).
SCIENCE_SOURCES: tuple[str, ...] = (
    "repro/training", "repro/landscape", "repro/curvature", "repro/metrics", "repro/models", "repro/data", "claims",
)
REVISION_LENGTH = 16
_ROOT = Path(__file__).resolve().parent.parent.parent


def science_files(root: Path | None = None) -> list[Path]:
    """The files the science revision hashes, sorted by their path relative to ``root`` (the repository root)."""
    base = Path(root) if root is not None else _ROOT
    files = [p for folder in SCIENCE_SOURCES for p in (base / folder).rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(files, key=lambda p: p.relative_to(base).as_posix())


def compute_science_revision(root: Path | None = None) -> str:
    """sha256 over each science file's relative path and bytes (the first :data:`REVISION_LENGTH` hex digits).
    Paths are part of the hash, so moving code between files changes it; nothing outside the files does (no
    mtimes, no git)."""
    base = Path(root) if root is not None else _ROOT
    h = hashlib.sha256()
    for p in science_files(base):
        data = p.read_bytes()
        h.update(p.relative_to(base).as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()[:REVISION_LENGTH]


@lru_cache(maxsize=1)
def science_revision() -> str:
    """The science revision of the code this process runs (computed once per process)."""
    return compute_science_revision()
