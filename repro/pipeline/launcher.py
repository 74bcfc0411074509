"""``repro claims --workers N``: start N processes of the same :func:`repro.pipeline.runner.run_claims` call on this
machine through torch's elastic agent, as ``torchrun --standalone`` would.

The top of the package: it imports the runner, which imports the process group (:mod:`repro.pipeline.distributed`)
that each started process joins.
"""

from __future__ import annotations

import uuid
from typing import Any

from repro.pipeline import runner
from repro.pipeline.threads import apply_threads, resolve_threads


def worker_entry(threads: int, kwargs: dict[str, Any]) -> int:
    """Entry point of each process started by :func:`launch`: set this worker's threads
    (:func:`repro.pipeline.threads.apply_threads`), then run the same ``run_claims`` call as every other worker."""
    apply_threads(threads)
    return runner.run_claims(**kwargs)


def launch(nproc: int, kwargs: dict[str, Any], threads: int | None = None) -> int:
    """``repro claims --workers N``: start ``nproc`` processes on this machine with torch's elastic agent (c10d
    rendezvous on localhost, as ``torchrun --standalone`` does) and return rank 0's exit status. Each process first
    sets its torch threads (:func:`worker_entry`): ``threads`` -- refused before any process
    starts if ``nproc`` x threads exceeds the cores -- or by default the cores shared out
    (:func:`repro.pipeline.threads.resolve_threads`; ``repro claims`` resolves and checks the count itself)."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    per_worker, _ = resolve_threads(nproc, threads, strict=threads is not None)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"repro-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn",
    )
    results = elastic_launch(config, worker_entry)(per_worker, kwargs)
    return int(results[0])
