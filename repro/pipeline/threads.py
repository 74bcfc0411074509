"""CPU threads per worker process: never more threads than cores (issue 42).

Two processes with two OpenMP threads each on two cores ran 5-10x slower than one with two: oversubscribed OpenMP
threads spin and wait for each other. So ``repro claims --workers N`` gives each worker ``cores // N`` torch threads,
or the ``--threads T`` asked for when ``N x T <= cores``, and refuses (before any process starts) when it cannot
keep ``N x threads <= cores``. Cores are the CPUs this process may run on (``os.sched_getaffinity``: a container's or
``taskset``'s limit), else ``os.cpu_count()``.

Each worker applies its count itself (:func:`apply_threads`, from :func:`repro.pipeline.launcher.worker_entry`, which
:func:`repro.pipeline.launcher.launch` starts) before it runs anything, and exports ``OMP_NUM_THREADS`` so that
:func:`repro.pipeline.distributed.join_group` keeps it and child processes inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from repro.errors import ReproError


def available_cores() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int, requested: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes on ``cores`` cores: ``requested`` when ``workers x requested
    <= cores``, else ``cores // workers``; a :class:`ReproError` naming the fix when no count keeps ``workers x
    threads <= cores``."""
    if workers < 1:
        raise ReproError(f"--workers {workers}: must be at least 1")
    if cores < 1:
        raise ReproError(f"{cores} cores: need at least one")
    if requested is not None:
        if requested < 1:
            raise ReproError(f"--threads {requested}: must be a positive integer (or omit it: {cores // workers or 1} "
                             f"per worker on {cores} cores)")
        if workers * requested > cores:
            fits = f"--threads {cores // workers}" if cores >= workers else f"--workers {cores} --threads 1"
            raise ReproError(
                f"--workers {workers} x --threads {requested} = {workers * requested} threads on {cores} cores would "
                f"oversubscribe them (5-10x slower); use {fits}, or --workers {max(1, cores // requested)} with "
                f"--threads {requested}, or omit --threads")
        return requested
    if workers > cores:
        raise ReproError(f"--workers {workers} on {cores} cores: even one thread per worker would oversubscribe them "
                         f"(5-10x slower); use --workers {cores} or fewer")
    return cores // workers


def resolve_threads(workers: int, requested: int | None, *, cores: int | None = None,
                    environ: Mapping[str, str] | None = None, strict: bool = True) -> tuple[int, str]:
    """The count for each worker and where it came from: ``--threads`` (checked), else ``OMP_NUM_THREADS`` from the
    environment when it fits (ignored, with a note, when it would oversubscribe), else ``cores // workers``. More
    workers than cores is an error, unless not ``strict`` (a library caller of ``launch``): then one thread each."""
    cores = available_cores() if cores is None else cores
    env = os.environ if environ is None else environ
    if requested is not None:
        return threads_per_worker(workers, cores, requested), f"--threads {requested}"
    if not strict and workers > cores:
        return 1, f"{workers} workers on {cores} cores: 1 thread each, oversubscribed"
    default = threads_per_worker(workers, cores)
    raw = env.get("OMP_NUM_THREADS", "")
    if raw.strip().isdigit() and int(raw) >= 1:
        if workers * int(raw) <= cores:
            return int(raw), f"OMP_NUM_THREADS={raw}"
        return default, (f"OMP_NUM_THREADS={raw} ignored: {workers} workers x {raw} threads would oversubscribe "
                         f"{cores} cores; {default} per worker")
    return default, f"{cores} cores // {workers} workers"


def apply_threads(threads: int) -> None:
    """Use ``threads`` torch CPU threads in this process and export ``OMP_NUM_THREADS`` for what it starts."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


