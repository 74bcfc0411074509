"""The plan as a list of independent jobs with expected costs: training runs first, then analyses.

Every (setting, seed, task, init) of a profile needs one training run, one extended-training run (§5.3) and one
analysis; the analysis also reads the partner task's run (the cross-task direction δ2). Training runs are keyed by
their run directory (the config hash), so a run shared by two settings is one job. Jobs are dealt to workers or
shards deterministically -- sorted by expected cost, then dealt round robin -- so every worker of a group, and
every machine that runs a shard, computes the same assignment without talking to the others.

Costs are estimates of arithmetic work in *step-equivalents* (one optimizer step of the profile's pretrained arm:
forward and backward of one batch, about three forward passes of ``batch_size`` examples). They weight the
progress bar and balance the deal; they are never part of a result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from repro.config import Profile, TrainConfig
from repro.errors import ReproError
from repro.models import INITS
from repro.training import run_dir_for

# Training-set size assumed for the cost of a run whose profile uses the whole training split (size unknown
# before the data is loaded); only the relative weights of the progress bar depend on it.
FULL_SPLIT_COST_EXAMPLES = 10_000
# A Hessian-vector product costs about two backward passes plus a forward: ~5 forward-equivalents (Pearlmutter).
# The assumed value; :func:`hvp_forwards` gives the one `repro bench curvature` measured for a named device. The
# plan's own job costs use the assumed value (``analysis_cost`` without a device): a plan, and a frozen shard plan
# checked against it, must come out the same on whichever machine computes it.
HVP_FORWARDS = 5.0
# ε-sharpness: 5 projected gradient-ascent steps of forward + backward (see claims.analysis).
SHARPNESS_STEPS = 5


def run_key(cfg: TrainConfig) -> str:
    """The name of the run directory of ``cfg`` (``<task>-<init>-seed<seed>-<hash>``): the training job's key."""
    return run_dir_for(Path("."), cfg).name


@dataclass(frozen=True)
class TrainJob:
    key: str
    config: TrainConfig
    cost: float


@dataclass(frozen=True)
class AnalysisJob:
    """The analysis of one arm of one (setting, task, seed), and what it reads."""

    setting: str
    task: str
    init: str
    seed: int
    run: TrainConfig
    overfit: TrainConfig
    partner: TrainConfig | None  # the same (init, seed, setting) on the next task, for δ2
    cost: float

    @property
    def key(self) -> str:
        return f"{self.setting}-{run_key(self.run)}"

    def needs(self) -> tuple[TrainConfig, ...]:
        """Every training run this job's evidence reads."""
        return (self.run, self.overfit) + ((self.partner,) if self.partner is not None else ())


def hvp_forwards(device_type: str | None = None) -> float:
    """Forward-equivalents per Hessian-vector product: the calibration recorded in the published curvature
    benchmark for this device type (:func:`repro.bench.curvature.recorded_hvp_forwards`), else :data:`HVP_FORWARDS`."""
    from repro.bench.curvature import recorded_hvp_forwards

    return recorded_hvp_forwards(device_type) or HVP_FORWARDS


def train_cost(cfg: TrainConfig) -> float:
    n = cfg.train_size if cfg.train_size is not None else FULL_SPLIT_COST_EXAMPLES
    return float(math.ceil(n / cfg.hyper.batch_size) * cfg.hyper.epochs)


# Science v3's widths by bisection (claims.analysis): along each random direction around θ1 and around the
# learned-level point, and along each of the three depth groups' filter-normalised δ1 around θ1.
V3_WIDTHS_PER_RANDOM_DIRECTION = 2
V3_LAYER_GROUPS = 3


def analysis_cost(profile: Profile, with_surface: bool = True, *, science_v3: bool = True,
                  device_type: str | None = None) -> float:
    """Forward passes of one analysis (grids on the evaluation subsets, Hessian and sharpness on its batch), in
    step-equivalents of the profile's pretrained arm.

    ``science_v3`` (issue 36; False: the analysis as it was before version 4, for timings measured then) adds:
    scaled λ_max at θ1 and at the learned-level point (``hessian_max_iter`` products each); widths by bisection --
    2 per random direction (θ1 and the learned-level point) plus the 3 depth groups', each at most 2 sides ×
    (``width_ladder`` + ``width_bisection_steps``) losses on the training subset (the bound: a side stops at its
    first crossing); with the partner run (``with_surface``), the layer swap of the 3 depth groups, 2 losses each
    (θ1 and swapped) on the dev subset. ``device_type`` ("cpu", "cuda") prices a Hessian-vector product at that
    device's measured calibration (:func:`hvp_forwards`); None, the plan's default, at the assumed HVP_FORWARDS."""
    ls = profile.landscape
    hvp = hvp_forwards(device_type) if device_type is not None else HVP_FORWARDS
    points = (ls.curve_points + (ls.surface_points ** 2 if with_surface else 0)
              + ls.random_directions * ls.random_width_points + 3 * ls.layer_surface_points)
    forwards = points * (ls.eval_train_size + ls.eval_dev_size)
    forwards += (ls.hessian_max_iter + ls.trace_samples) * ls.hessian_examples * hvp
    forwards += SHARPNESS_STEPS * ls.hessian_examples * 3
    # issue 19's instruments: SLQ density (probes x steps products), λ_max and trace of each of the three depth
    # groups' blocks (Lanczos steps + 1 and the trace probes, each a full-model product), adaptive sharpness (steps + 1
    # gradients, 3 forward-equivalents each, like the ε-sharpness above)
    products = ls.density_probes * ls.density_steps
    if ls.group_curvature_iters > 0:
        products += 3 * (ls.group_curvature_iters + 1 + max(1, ls.group_trace_samples))
    forwards += products * ls.hessian_examples * hvp
    if ls.adaptive_sharpness_steps > 0:
        forwards += (ls.adaptive_sharpness_steps + 1) * ls.hessian_examples * 3
    if science_v3:
        forwards += 2 * ls.hessian_max_iter * ls.hessian_examples * hvp
        widths = V3_WIDTHS_PER_RANDOM_DIRECTION * ls.random_directions + V3_LAYER_GROUPS
        forwards += widths * 2 * (ls.width_ladder + ls.width_bisection_steps) * ls.eval_train_size
        if with_surface:
            forwards += V3_LAYER_GROUPS * 2 * ls.eval_dev_size
    return forwards * forward_price(profile)


def forward_price(profile: Profile) -> float:
    """The cost, in step-equivalents, of one example through one no-grad forward pass: a training step is a forward
    and backward of one batch, about three forward passes of ``batch_size`` examples. The plan's analysis costs and
    the progress display's pricing of an analysis's ticks (repro.pipeline.plan.execute) both use it."""
    return 1.0 / (3.0 * profile.pretrained.batch_size)


def plan_jobs(profile: Profile, data_source: str) -> tuple[tuple[TrainJob, ...], tuple[AnalysisJob, ...]]:
    """All training jobs (distinct runs) and analysis jobs of ``profile``, in canonical order."""
    tasks = tuple(profile.tasks)
    train: dict[str, TrainJob] = {}
    analyses: list[AnalysisJob] = []
    for setting in profile.settings:
        for seed in profile.seeds:
            for task in tasks:
                partner_task = profile.partner_of(task)
                for init in INITS:
                    run = profile.train_config(task, init, seed, setting, data_source=data_source)
                    over = profile.train_config(task, init, seed, setting, overfit=True, data_source=data_source)
                    partner = profile.partner_config(task, init, seed, setting, data_source=data_source)
                    # the partner's run is another task's normal run (listed with that task), or a partner-only
                    # task's (Profile.partner_tasks), listed here
                    only = partner is not None and partner_task not in tasks
                    for cfg in (run, over) + ((partner,) if only else ()):
                        train.setdefault(run_key(cfg), TrainJob(run_key(cfg), cfg, train_cost(cfg)))
                    analyses.append(AnalysisJob(setting.name, task, init, seed, run, over, partner,
                                                analysis_cost(profile, partner is not None)))
    return tuple(train.values()), tuple(analyses)


def deal(jobs: Sequence[TrainJob | AnalysisJob], index: int, count: int) -> list:
    """The share of worker/shard ``index`` of ``count``: jobs sorted by expected cost (largest first, ties by key),
    dealt round robin. Deterministic, so all participants agree without communicating."""
    ordered = sorted(jobs, key=lambda j: (-j.cost, j.key))
    return ordered[index::count]


def needed_training(analyses: Sequence[AnalysisJob], all_train: Sequence[TrainJob]) -> list[TrainJob]:
    """The training jobs that ``analyses`` read (their runs, extended runs and partner runs), in canonical order."""
    keys = {run_key(c) for a in analyses for c in a.needs()}
    return [j for j in all_train if j.key in keys]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 ≤ i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ReproError(f"--shard expects I/N with integers, e.g. --shard 0/4; got {text!r}") from None
    if not 0 <= i < n:
        raise ReproError(f"--shard {text}: need 0 ≤ I < N (shards are numbered 0 to N-1)")
    return i, n
