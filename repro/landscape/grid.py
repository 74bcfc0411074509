"""1-D curves and 2-D surfaces: resumable, shardable grid evaluation and the result dataclasses.

A grid is a list of coefficient tuples. Values are kept in a :class:`GridStore` -- one ``.npz`` in a directory with
the values and a "done" mask, written atomically every ``checkpoint_every`` points and when the run stops for any
reason -- so an interrupted surface resumes where it stopped. A separate done mask (instead of NaN-as-missing) keeps
a genuinely diverged point (NaN loss) from being recomputed forever.

Points are dealt round-robin to shards (point i belongs to shard i mod world). Under ``torch.distributed`` each
rank computes its shard and the values are merged by an all-reduce sum over zero-filled arrays, which is exact.
Without a process group, ``shard=(rank, world)`` computes one shard (the rest NaN) and :func:`merge_shards` joins
them. Every point is evaluated from the same base point, so the merged grid equals the single-process grid.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from repro.errors import ReproError
from repro.landscape.directions import POLICY_TEXT, Direction, DirectionInfo
from repro.landscape.evaluate import (
    Batch,
    GridEvaluator,
    LogitsFn,
    LossFn,
    classification_logits,
    classification_loss,
)
from repro.landscape.params import ParamVector
from repro.storage import atomic_save, atomic_write_text

Shard = tuple[int, int]


def metric_names(set_names: Sequence[str]) -> list[str]:
    """Per batch set: loss and accuracy (error = 1 − accuracy is derived)."""
    return [f"{s}_{m}" for s in set_names for m in ("loss", "acc")]


class GridStore:
    """Values of a grid on disk, with a done mask; one file per shard (``grid.npz`` or ``grid.r{rank}of{world}.npz``)."""

    def __init__(self, directory: str | os.PathLike[str], coords: np.ndarray, metrics: Sequence[str],
                 shard: Shard | None = None) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        suffix = "" if shard is None else f".r{shard[0]}of{shard[1]}"
        self.path = self.dir / f"grid{suffix}.npz"
        self.meta_path = self.dir / "grid.meta.json"
        self.metrics = list(metrics)
        meta = {"coords": np.asarray(coords, dtype=np.float64).tolist(), "metrics": self.metrics}
        if self.meta_path.exists():
            old = json.loads(self.meta_path.read_text())
            if old != meta:
                raise ReproError(
                    f"grid store {self.dir} holds a different grid (coordinates or metrics differ); "
                    "use a fresh directory or delete it to recompute"
                )
        else:
            atomic_write_text(self.meta_path, json.dumps(meta))
        n = len(coords)
        if self.path.exists():
            with np.load(self.path) as z:
                self.values, self.done = z["values"].copy(), z["done"].copy()
            if self.values.shape != (len(self.metrics), n):
                raise ReproError(f"grid store {self.path} has the wrong shape; delete it to recompute")
        else:
            self.values = np.full((len(self.metrics), n), np.nan)
            self.done = np.zeros(n, dtype=bool)

    def flush(self) -> None:
        buf = io.BytesIO()
        np.savez(buf, values=self.values, done=self.done)
        data = buf.getvalue()

        def writer(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        atomic_save(self.path, writer)


def _shard_points(n: int, shard: Shard | None) -> list[int]:
    if shard is None:
        return list(range(n))
    rank, world = shard
    if not 0 <= rank < world:
        raise ValueError(f"bad shard {shard}")
    return list(range(rank, n, world))


def _dist_shard() -> Shard | None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def evaluate_grid(
    model: nn.Module,
    base: ParamVector,
    directions: Sequence[ParamVector],
    coords: np.ndarray | Sequence[Sequence[float]],
    batch_sets: Mapping[str, Sequence[Batch]],
    *,
    store_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 16,
    shard: Shard | None = None,
    distributed: bool = False,
    loss_fn: LossFn = classification_loss,
    logits_fn: LogitsFn | None = classification_logits,
    autocast: bool | None = None,
    vmap_points: int = 1,
) -> dict[str, np.ndarray]:
    """Values of every metric at every point: ``{"<set>_loss": array[P], "<set>_acc": array[P]}``.

    ``distributed=True`` with an initialised process group shards by rank and returns the merged (full) arrays
    on every rank. ``shard=(rank, world)`` computes one shard only; other points are NaN.
    """
    coords = np.asarray(coords, dtype=np.float64).reshape(len(coords), -1)
    names = metric_names(list(batch_sets))
    dist_shard = _dist_shard() if distributed else None
    if dist_shard is not None:
        shard = dist_shard
    mine = _shard_points(len(coords), shard)
    if store_dir is not None:
        store = GridStore(store_dir, coords, names, shard)
        values, done = store.values, store.done
    else:
        store = None
        values, done = np.full((len(names), len(coords)), np.nan), np.zeros(len(coords), dtype=bool)
    todo = [i for i in mine if not done[i]]
    chunk = max(1, int(vmap_points))
    step = max(chunk, int(checkpoint_every))
    with GridEvaluator(model, base, directions, batch_sets, loss_fn=loss_fn, logits_fn=logits_fn,
                       autocast=autocast, vmap_points=vmap_points) as ev:
        try:
            since_flush = 0
            for start in range(0, len(todo), chunk):
                idx = todo[start : start + chunk]
                results = ev.evaluate_points([tuple(coords[i]) for i in idx])
                for i, res in zip(idx, results):
                    for s, pm in res.items():
                        values[names.index(f"{s}_loss"), i] = pm.loss
                        values[names.index(f"{s}_acc"), i] = pm.accuracy
                    done[i] = True
                since_flush += len(idx)
                if store is not None and since_flush >= step:
                    store.flush()
                    since_flush = 0
        finally:
            if store is not None:
                store.flush()
    if dist_shard is not None:
        values = _all_reduce_merge(values, mine, model)
    return {n: values[k].copy() for k, n in enumerate(names)}


def _all_reduce_merge(values: np.ndarray, mine: list[int], model: nn.Module) -> np.ndarray:
    import torch.distributed as dist

    dev = next(model.parameters()).device if dist.get_backend() == "nccl" else torch.device("cpu")
    buf = np.zeros_like(values)
    buf[:, mine] = values[:, mine]
    t = torch.from_numpy(buf).to(dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().numpy()


def merge_shards(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join per-shard value dicts (NaN where a shard did not compute)."""
    out = {k: np.full_like(v, np.nan) for k, v in parts[0].items()}
    for p in parts:
        for k, v in p.items():
            m = ~np.isnan(v)
            out[k][m] = v[m]
    return out


# -- results ---------------------------------------------------------------------------------------------------------
Grid2D = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class CurveResult:
    """Metrics along θ + α·d. ``values[metric][i]`` is at ``alphas[i]``; metrics ``<set>_loss``, ``<set>_acc``
    and ``<set>_error``."""

    alphas: tuple[float, ...]
    values: dict[str, tuple[float, ...]]
    direction: DirectionInfo
    num_params: int
    param_group: str | None = None
    policy: str = POLICY_TEXT
    provenance: dict[str, str] = field(default_factory=dict)

    def array(self, metric: str) -> np.ndarray:
        return np.asarray(self.values[metric], dtype=np.float64)


@dataclass(frozen=True)
class SurfaceResult:
    """Metrics on θ + α·d1 + β·d2. ``grids[metric][i][j]`` is at ``(alphas[i], betas[j])``."""

    alphas: tuple[float, ...]
    betas: tuple[float, ...]
    grids: dict[str, Grid2D]
    d1: DirectionInfo
    d2: DirectionInfo
    cosine_d1_d2: float
    num_params: int
    param_group: str | None = None
    policy: str = POLICY_TEXT
    provenance: dict[str, str] = field(default_factory=dict)

    def array(self, metric: str) -> np.ndarray:
        return np.asarray(self.grids[metric], dtype=np.float64)

    @property
    def train_loss(self) -> np.ndarray:
        return self.array("train_loss")

    @property
    def train_acc(self) -> np.ndarray:
        return self.array("train_acc")

    @property
    def dev_loss(self) -> np.ndarray:
        return self.array("dev_loss")

    @property
    def dev_error(self) -> np.ndarray:
        return self.array("dev_error")


def _with_errors(values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(values)
    for k, v in values.items():
        if k.endswith("_acc"):
            out[k[: -len("_acc")] + "_error"] = 1.0 - v
    return out


def _as_direction(d: Direction | ParamVector) -> Direction:
    if isinstance(d, Direction):
        return d
    return Direction(d, DirectionInfo("custom", d.norm()))


def compute_curve(
    model: nn.Module,
    base: ParamVector,
    direction: Direction | ParamVector,
    alphas: Sequence[float],
    batch_sets: Mapping[str, Sequence[Batch]],
    *,
    param_group: str | None = None,
    **grid_kwargs: object,
) -> CurveResult:
    """Loss/accuracy along θ + α·d for any α (negative and > 1 included). ``grid_kwargs`` go to
    :func:`evaluate_grid` (store_dir, checkpoint_every, shard, distributed, loss_fn, vmap_points, ...)."""
    d = _as_direction(direction)
    coords = np.asarray(alphas, dtype=np.float64).reshape(-1, 1)
    vals = _with_errors(evaluate_grid(model, base, [d.vector], coords, batch_sets, **grid_kwargs))  # type: ignore[arg-type]
    return CurveResult(
        alphas=tuple(float(a) for a in alphas),
        values={k: tuple(float(x) for x in v) for k, v in vals.items()},
        direction=d.info,
        num_params=base.numel(),
        param_group=param_group,
        provenance={"torch": torch.__version__},
    )


def surface_coords(alphas: Sequence[float], betas: Sequence[float]) -> np.ndarray:
    """Row-major (α outer, β inner) list of grid points."""
    a, b = np.meshgrid(np.asarray(alphas, float), np.asarray(betas, float), indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def compute_surface(
    model: nn.Module,
    base: ParamVector,
    d1: Direction | ParamVector,
    d2: Direction | ParamVector,
    alphas: Sequence[float],
    betas: Sequence[float],
    batch_sets: Mapping[str, Sequence[Batch]],
    *,
    param_group: str | None = None,
    **grid_kwargs: object,
) -> SurfaceResult:
    """Loss/accuracy on θ + α·d1 + β·d2 over the α×β grid, for every batch set (e.g. ``train`` and ``dev``)
    at each point. ``grid_kwargs`` go to :func:`evaluate_grid`."""
    a, b = _as_direction(d1), _as_direction(d2)
    coords = surface_coords(alphas, betas)
    vals = _with_errors(evaluate_grid(model, base, [a.vector, b.vector], coords, batch_sets, **grid_kwargs))  # type: ignore[arg-type]
    shape = (len(alphas), len(betas))
    return SurfaceResult(
        alphas=tuple(float(x) for x in alphas),
        betas=tuple(float(x) for x in betas),
        grids={k: tuple(tuple(float(x) for x in row) for row in v.reshape(shape)) for k, v in vals.items()},
        d1=a.info,
        d2=b.info,
        cosine_d1_d2=a.vector.cosine(b.vector),
        num_params=base.numel(),
        param_group=param_group,
        provenance={"torch": torch.__version__},
    )


def merge_surfaces(parts: Sequence[SurfaceResult]) -> SurfaceResult:
    """Join shard results computed with ``shard=(r, world)``."""
    first = parts[0]
    grids = {}
    for k in first.grids:
        arr = np.full_like(first.array(k), np.nan)
        for p in parts:
            v = p.array(k)
            m = ~np.isnan(v)
            arr[m] = v[m]
        grids[k] = tuple(tuple(float(x) for x in row) for row in arr)
    import dataclasses

    return dataclasses.replace(first, grids=grids)


def is_complete(result: SurfaceResult | CurveResult) -> bool:
    vals = result.grids.values() if isinstance(result, SurfaceResult) else result.values.values()
    return all(not math.isnan(x) for v in vals for x in np.ravel(np.asarray(v, dtype=float)))
