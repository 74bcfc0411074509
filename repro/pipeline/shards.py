"""Shards: one plan split over machines that share no filesystem, each writing a small mergeable output.

``repro claims --shard i/n`` runs shard i's analyses and every training run they read, then :func:`write_shard`
copies that shard's training metrics and analysis JSON -- no weights or snapshots -- beside a manifest to
``<run dir>/shards/shard-<i>-of-<n>/``. :func:`merge_shards` checks (:func:`check_shards`) that the shards belong
to one plan (and one frozen split, :mod:`repro.pipeline.shardplan`), that none is given twice or missing, and that
all were computed by the same science code (:mod:`repro.pipeline.revision`), copies their small files into one
claims run directory and evaluates the claims there, exactly as an unsharded run would have.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro import provenance
from repro.config import Profile
from repro.data import source_notes
from repro.errors import ReproError
from repro.storage import write_json

from repro.pipeline.jobs import AnalysisJob, run_key
from repro.pipeline.plan import Outcomes
from repro.pipeline.revision import SCIENCE_SOURCES
from repro.pipeline.shardplan import MANIFEST_FILE, PLAN_FILE, ShardPlan, load_plan

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
    # the content hash of the code that computed these numbers (repro.pipeline.revision); "" in manifests that
    # predate it
    science_revision: str = ""
    # the digest of the frozen shard plan whose shard this is (repro.pipeline.shardplan); "" for the round-robin
    # split of `--shard I/N` without a plan file
    plan: str = ""
    # what a reader must know about the data this shard read (repro.data.data_notes), found where the data was:
    # the merge may run where the shard's data directory is not
    data_notes: tuple[str, ...] = ()


def shard_dir(root: Path, shard: tuple[int, int]) -> Path:
    return Path(root) / SHARDS_DIR / f"shard-{shard[0]}-of-{shard[1]}"


def copy_small(src_root: Path, dst_root: Path, rel: str) -> None:
    """Copy ``src_root/rel`` to ``dst_root/rel`` (atomically, through a temporary file) unless the source is
    missing or the copy is already there."""
    src, dst = Path(src_root) / rel, Path(dst_root) / rel
    if not src.exists() or dst.exists():
        return  # runs are keyed by config hash: an existing copy is the same run
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def small_files(jobs: Sequence[AnalysisJob]) -> list[str]:
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
                jobs: Sequence[AnalysisJob], failures: Outcomes, durations: dict[str, float], *,
                plan: str = "") -> Path:
    """Copy this shard's training metrics and analyses (no weights) beside a manifest that records the science
    revision of this code and the shard plan's digest (``plan``); return the directory."""
    from repro.pipeline.revision import science_revision

    target = shard_dir(root, shard)
    for rel in small_files(jobs):
        copy_small(root, target, rel)
    manifest = ShardManifest(shard[0], shard[1], profile.to_json(), source, prov, tuple(j.key for j in jobs),
                             dict(failures.train), dict(failures.analysis), durations, science_revision(), plan,
                             source_notes((*profile.tasks, *profile.partner_tasks), source))
    write_json(target / MANIFEST_FILE, manifest)
    return target


def find_manifests(dirs: Sequence[Path]) -> list[Path]:
    """The shard output directories (each holding a manifest) in or under ``dirs``, as passed to --merge."""
    found: list[Path] = []
    for d in dirs:
        d = Path(d)
        if (d / MANIFEST_FILE).is_file():
            found.append(d)
            continue
        # a folder of shard outputs (reports/standard/shards/), a claims run directory holding shards/, or an
        # --out directory holding claims run directories
        patterns = (f"shard-*/{MANIFEST_FILE}", f"{SHARDS_DIR}/*/{MANIFEST_FILE}", f"*/{SHARDS_DIR}/*/{MANIFEST_FILE}")
        inside = sorted(p.parent for pattern in patterns for p in d.glob(pattern))
        if not inside and not (d / PLAN_FILE).is_file():  # a plan's folder with no shard yet: all are missing
            raise ReproError(f"{d} holds no shard output ({MANIFEST_FILE}): pass the directories printed by "
                             f"`repro claims --shard I/N`, the claims run directories holding shards/, or their "
                             f"--out directories")
        found += inside
    return found


def find_plan(dirs: Sequence[Path]) -> ShardPlan | None:
    """The frozen shard plan beside the shard outputs (``plan.json`` in a directory passed to --merge), if any."""
    plans = [Path(d) / PLAN_FILE for d in dirs if (Path(d) / PLAN_FILE).is_file()]
    if not plans:
        return None
    found = [load_plan(p) for p in plans]
    if len({p.digest for p in found}) > 1:
        raise ReproError(f"{plans[0]} and {plans[1]} are different shard plans: merge the shards of one plan")
    return found[0]


def check_shards(shard_dirs: Sequence[Path], manifests: Sequence[ShardManifest], plan: ShardPlan | None) -> None:
    """Refuse, with one line naming the shards, a set of shard outputs that would not give the numbers of one
    unsharded run: shards of different plans, a shard given twice (its seconds would count twice), shards computed
    by different science code (repro.pipeline.revision), or missing shards."""
    if not manifests:
        count = plan.count if plan is not None else 0
        raise ReproError(f"shard(s) {', '.join(f'{i}/{count}' for i in range(count))} missing: no shard has been "
                         f"computed yet; run `repro claims --shard I/{count} --shard-plan PLAN` for each")
    first, d0 = manifests[0], shard_dirs[0]
    digest = plan.digest if plan is not None else first.plan
    count = plan.count if plan is not None else first.shards
    for d, m in zip(shard_dirs, manifests):
        if (m.profile != first.profile or m.data_source != first.data_source or m.shards != count
                or m.plan != digest):
            raise ReproError(f"{d} is a shard of a different plan (profile, data source, shard count or shard plan "
                             f"differs from {d0}): merge only the shards of one `repro claims --shard I/N` plan")
    seen: dict[int, Path] = {}
    for d, m in zip(shard_dirs, manifests):
        if m.shard in seen:
            raise ReproError(f"shard {m.shard}/{m.shards} given twice ({seen[m.shard]} and {d}): pass each shard "
                             f"output once")
        seen[m.shard] = d
    owner: dict[str, int] = {}
    for m in manifests:
        for k in m.analyses:
            if k in owner:
                raise ReproError(f"analysis {k} is in shards {owner[k]}/{m.shards} and {m.shard}/{m.shards}: they "
                                 f"come from different splits of the plan; merge the shards of one split")
            owner[k] = m.shard
    revisions: dict[str, list[str]] = {}
    for m in manifests:
        revisions.setdefault(m.science_revision or "unrecorded", []).append(f"{m.shard}/{m.shards}")
    if len(revisions) > 1:
        parts = "; ".join(f"shard(s) {', '.join(v)} at {k}" for k, v in sorted(revisions.items()))
        raise ReproError(f"shards computed by different science code ({parts}): rerun the odd shards with one "
                         f"revision of {', '.join(SCIENCE_SOURCES)}")
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        hint = " --shard-plan PLAN" if digest else ""
        raise ReproError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: run "
                         f"`repro claims --shard I/{count}{hint}` for each and pass every output to --merge")
