"""Shards: one plan split over machines that share no filesystem, each writing a small mergeable output.

``repro claims --shard i/n`` runs shard i's analyses and every training run they read, then :func:`write_shard`
copies that shard's training metrics and analysis JSON -- no weights or snapshots -- beside a manifest to
``<run dir>/shards/shard-<i>-of-<n>/``. :func:`merge_shards` checks that the shards belong to one plan and that
none is missing, copies their small files into one claims run directory and evaluates the claims there, exactly as
an unsharded run would have.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro import provenance
from repro.config import Profile
from repro.errors import ReproError
from repro.storage import write_json

from repro.pipeline.jobs import AnalysisJob, run_key
from repro.pipeline.plan import Outcomes

MANIFEST_FILE = "manifest.json"
SHARDS_DIR = "shards"


@dataclass(frozen=True)
class ShardManifest:
    """What one shard of a plan computed and what failed there: enough to merge it without its weights."""

    shard: int
    shards: int
    profile: dict[str, Any]
    data_source: str
    provenance: provenance.Provenance
    analyses: tuple[str, ...]  # keys of this shard's analysis jobs
    train_failures: dict[str, str]
    analysis_failures: dict[str, str]
    durations: dict[str, float]


def shard_dir(root: Path, shard: tuple[int, int]) -> Path:
    return Path(root) / SHARDS_DIR / f"shard-{shard[0]}-of-{shard[1]}"


def _copy_small(src_root: Path, dst_root: Path, rel: str) -> None:
    src, dst = Path(src_root) / rel, Path(dst_root) / rel
    if not src.exists() or dst.exists():
        return  # runs are keyed by config hash: an existing copy is the same run
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def _small_files(jobs: Sequence[AnalysisJob]) -> list[str]:
    """Paths, relative to a claims run directory, of the metrics and analyses that ``jobs``' evidence reads."""
    from claims.analysis import analysis_path
    from repro.training import run_dir_for

    files = []
    for j in jobs:
        for cfg in (j.run, j.overfit):
            files += [f"train/{run_key(cfg)}/config.json", f"train/{run_key(cfg)}/metrics.json"]
        files.append(str(analysis_path(Path("."), run_dir_for(Path("."), j.run), j.setting)))
    return list(dict.fromkeys(files))


def write_shard(root: Path, shard: tuple[int, int], profile: Profile, source: str, prov: provenance.Provenance,
                jobs: Sequence[AnalysisJob], failures: Outcomes, durations: dict[str, float]) -> Path:
    """Copy this shard's training metrics and analyses (no weights) beside a manifest; return the directory."""
    target = shard_dir(root, shard)
    for rel in _small_files(jobs):
        _copy_small(root, target, rel)
    manifest = ShardManifest(shard[0], shard[1], profile.to_json(), source, prov, tuple(j.key for j in jobs),
                             dict(failures.train), dict(failures.analysis), durations)
    write_json(target / MANIFEST_FILE, manifest)
    return target


def _find_manifests(dirs: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for d in dirs:
        d = Path(d)
        if (d / MANIFEST_FILE).is_file():
            found.append(d)
            continue
        # a claims run directory holding shards/, or an --out directory holding claims run directories
        inside = sorted(p.parent for pattern in (f"{SHARDS_DIR}/*/{MANIFEST_FILE}", f"*/{SHARDS_DIR}/*/{MANIFEST_FILE}")
                        for p in d.glob(pattern))
        if not inside:
            raise ReproError(f"{d} holds no shard output ({MANIFEST_FILE}): pass the directories printed by "
                             f"`repro claims --shard I/N`, the claims run directories holding shards/, or their "
                             f"--out directories")
        found += inside
    return found
