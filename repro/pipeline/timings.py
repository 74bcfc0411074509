"""The recorded GPU timings that size the shards of a GPU reproduction -- the one place they live.

Every GPU run of a shard updates these figures: ``scripts/device_run.sh shard`` prints the measured ones (from the
shard manifests it wrote: training steps per second, seconds per analysis, seconds per shard process) and the line
to paste here, with the date, the device and the shards they came from. They size the split only (how many shards,
which jobs go together); a shard's numbers never depend on them, and a plan already frozen in a plan file
(:mod:`repro.pipeline.shardplan`) keeps its split when they change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuTimings:
    """Expected seconds of the plan's jobs on one GPU. ``analysis_seconds`` is one analysis of the ``standard``
    profile with its cross-task surface; other landscape settings scale it by their forward-pass count
    (:func:`repro.pipeline.jobs.analysis_cost`)."""

    device: str
    train_steps_per_second: float  # optimizer steps (batch 32, length 128, MiniLM-L6), evaluations included
    analysis_seconds: float  # one standard analysis: curves, surfaces, widths, layer surfaces, Hessian, sharpness
    process_seconds: float  # one `repro claims --shard` process: imports, tokenising, loading models, writing
    source: str  # where each figure comes from, and which are estimates


# Issue 11 (2026-11, H200, the standard recipe at 3 seeds, grid radius 1 -- the same point counts as radius 2):
# ~12 s per 315-step training run (26 steps/s) and ~45 s per analysis; the whole standard profile at 3 seeds
# (4 tasks x 3 seeds x 2 settings) took about 70 min, which these figures reproduce (29 min of training, 36 of
# analyses, plus start-up). H100: assumed equal (an estimate; its memory is slower). process_seconds: an estimate.
RECORDED = GpuTimings(
    device="NVIDIA H200 (H100 assumed equal)",
    train_steps_per_second=26.25,
    analysis_seconds=45.0,
    process_seconds=30.0,
    source="issue 11 (H200, 2026-11): 12 s per 315-step run, 45 s per analysis, whole standard profile at 3 seeds "
           "~70 min; per-shard process start-up 30 s and the H100 figures are estimates derived from these, to be "
           "replaced by the figures each GPU shard run prints (scripts/device_run.sh shard)",
)
