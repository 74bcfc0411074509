"""``repro runs clean DIR``: what under an output folder no finished result needs, with sizes; removed only on
``--delete`` (issue 40: an interrupted or superseded run kept its 207 MB checkpoint indefinitely).

Three kinds, each with why it can go and what deleting it costs:

* ``checkpoint`` -- ``train/<run>/checkpoint.pt`` of a run that never finished (no ``metrics.json``): weights and Adam
  moments, 12 bytes a parameter. Deleting it means the run starts again from step 0 if it is ever resumed.
* ``grid store`` -- ``analysis/<setting>-<run>/``, the per-point stores an analysis keeps so that an interrupted one
  resumes, when that analysis has finished (its ``.json`` is there). Nothing reads them afterwards.
* ``superseded run`` -- a whole claims run directory ``<profile>-<hash>/`` of a registered profile whose current
  configuration, at the run's own tasks and seeds, no longer hashes to ``<hash>``: an older version of the profile
  (or a run made with ``--set`` overrides -- the folder cannot tell which, so it says both). Listed always; deleted
  only with ``--delete --superseded`` (its claims.json and report go with it: copy them first).

Nothing else is touched: finished runs' weights and snapshots (an analysis reads them), claims.json, reports. Do
not ``--delete`` while a claims run is writing under the folder: its live checkpoint looks like an unfinished run's.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from repro.storage import read_json

CHECKPOINT, GRID_STORE, SUPERSEDED = "checkpoint", "grid store", "superseded run"


@dataclass(frozen=True)
class Removable:
    kind: str  # CHECKPOINT / GRID_STORE / SUPERSEDED
    path: Path
    size: int  # bytes
    why: str


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _claims_dirs(root: Path) -> Iterator[Path]:
    """``root`` itself when it is a claims run directory (it holds profile.json), else those directly under it."""
    if (root / "profile.json").is_file():
        yield root
        return
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if (d / "profile.json").is_file():
            yield d


def _superseded(run_dir: Path) -> str | None:
    """Why ``run_dir`` is superseded (its registered profile, at its own tasks and seeds, hashes differently now),
    or None (current, unregistered, or unreadable: never guessed)."""
    import dataclasses

    from repro.config import PROFILES, Profile
    from repro.storage import config_hash

    try:
        saved = Profile.from_json(read_json(run_dir / "profile.json"))
    except Exception:  # noqa: BLE001 -- an unreadable or older layout: not ours to judge
        return None
    name, _, digest = run_dir.name.rpartition("-")
    if saved.name not in PROFILES.names() or name != saved.name:
        return None
    current = dataclasses.replace(PROFILES.get(saved.name).with_tasks(saved.tasks), seeds=saved.seeds)
    now = config_hash(current, 8)
    if now == digest:
        return None
    return (f"not the current {saved.name} profile, which resolves to {saved.name}-{now} at these tasks and seeds: an "
            f"older version of it, or a run with --set overrides")


def find_removable(root: Path) -> list[Removable]:
    """Everything under ``root`` (an ``--out`` folder or one claims run directory) that no finished result needs."""
    out: list[Removable] = []
    for run_dir in _claims_dirs(root):
        for ckpt in sorted(run_dir.glob("train/*/checkpoint.pt")):
            if not (ckpt.parent / "metrics.json").is_file():
                out.append(Removable(CHECKPOINT, ckpt, _size(ckpt),
                                     "the run never finished; deleting it restarts that run from step 0"))
        for store in sorted(p for p in run_dir.glob("analysis/*") if p.is_dir()):
            if store.with_suffix(".json").is_file():
                out.append(Removable(GRID_STORE, store, _size(store), "its analysis finished"))
        why = _superseded(run_dir)
        if why is not None:
            out.append(Removable(SUPERSEDED, run_dir, _size(run_dir), why))
    return out


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def clean(root: Path, *, delete: bool = False, superseded: bool = False) -> tuple[list[Removable], list[str]]:
    """Find what can go; with ``delete`` remove checkpoints and grid stores (and superseded runs with
    ``superseded``). Returns the items and the lines to print."""
    items = find_removable(root)
    gone = [i for i in items if delete and (i.kind != SUPERSEDED or superseded)]
    lines = [f"{'removed' if i in gone else 'would remove' if i.kind != SUPERSEDED or superseded else 'listed'}"
             f"  {human(i.size):>9s}  {i.kind:14s} {i.path}  ({i.why})" for i in items]
    for i in gone:
        if i.kind == SUPERSEDED:  # a superseded run's own checkpoints and stores go with it
            shutil.rmtree(i.path, ignore_errors=False)
        elif i.path.exists():
            shutil.rmtree(i.path) if i.path.is_dir() else i.path.unlink()
    freed = sum(i.size for i in gone if i.kind == SUPERSEDED or not any(
        g.kind == SUPERSEDED and i.path.is_relative_to(g.path) for g in gone))
    could = sum(i.size for i in items if i.kind != SUPERSEDED)
    if not items:
        lines.append(f"nothing to clean under {root}")
    elif delete:
        lines.append(f"freed {human(freed)}")
    else:
        lines.append(f"dry run: {human(could)} in checkpoints and grid stores would go with --delete; superseded runs "
                     f"({human(sum(i.size for i in items if i.kind == SUPERSEDED))}) only with --delete --superseded")
    return items, lines
