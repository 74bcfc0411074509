"""Running the plan on several processes through torch.distributed elastic (torchrun), not a scheduler of our own.

Under ``torchrun`` (or ``repro claims --workers N``, which starts the same elastic agent on this machine:
:mod:`repro.pipeline.launcher`) each process reads its rank and world size from the environment torchrun sets,
joins a gloo process group (CPU collectives only: two barriers and two small object exchanges, whatever device
trains), takes its deterministic share of the jobs (:func:`repro.pipeline.jobs.deal`), and rank 0 evaluates the
claims. Every process must see the same ``--out`` directory (one machine, or a shared filesystem across nodes): an
analysis reads the partner task's run, which another rank may have trained. Without a shared filesystem, split the
plan with ``--shard`` and merge.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

# A barrier waits for the slowest rank's whole phase (an hour of training on a large profile); a crashed rank
# does not leave the others waiting that long, because the elastic agent stops the group when a worker dies.
BARRIER_TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class Workers:
    """This process's place in the group: rank ``rank`` of ``world`` (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank (a barrier too)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def device(self, requested: str | None) -> str | None:
        """One CUDA device per local rank (round robin when there are more workers than GPUs)."""
        import torch

        if not self.distributed or not torch.cuda.is_available():
            return requested
        if requested is None or requested == "cuda":
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return requested


SINGLE = Workers()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def join_group() -> Workers:
    """Join the process group torchrun describes in the environment; ``SINGLE`` when not launched by it."""
    if not launched_by_torchrun():
        return SINGLE
    import torch
    import torch.distributed as dist

    world = int(os.environ["WORLD_SIZE"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if "OMP_NUM_THREADS" not in os.environ:  # share the cores of this machine instead of oversubscribing them
        from repro.pipeline.threads import available_cores  # the CPUs this process may run on (affinity)

        torch.set_num_threads(max(1, available_cores() // local_world))
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    return Workers(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def leave_group(workers: Workers) -> None:
    if workers.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
