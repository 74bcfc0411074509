"""Adam(W) training that records its trajectory and survives interruption.

One function, :func:`train`, runs fine-tuning (``init="pretrained"``) and from-scratch training
(``init="scratch"``) with the same code: linear warm-up then linear decay, gradient clipping, bf16 autocast on
CUDA and float32 on the CPU. It records the per-step training loss, dev loss/accuracy at a fixed cadence, and
parameter snapshots θ_t for trajectory projection.

Determinism and resumption: every random source is derived from the config's seed -- the data order of epoch e
from ``(seed, e)`` (random or length-bucketed batches, :func:`epoch_batches`), dropout from a private copy of the
global RNG state that is saved in each checkpoint -- so a run killed at any point and resumed from its last
checkpoint ends bitwise equal to an uninterrupted run on the CPU. The caller's global RNG state is left untouched.

Interruption: a resumable checkpoint is written every ``checkpoint_every`` optimizer steps (part of the config) and
whenever ``checkpoint_seconds`` of training have passed since the last one (not part of the config, so it does not
change run directories). SIGINT (Ctrl-C) and SIGTERM (``kill``, a timeout, a cancelled CI job) do not kill the run
mid-step: the current optimizer step finishes, a checkpoint is written at it, and :class:`TrainingInterrupted` says
which step was saved where. A second signal stops at once (losing the steps since the last checkpoint). A finished
run keeps θ0, θ1, its snapshots and metrics; its checkpoint is deleted.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from repro import progress_sink, provenance
from repro.config import TrainConfig
from repro.errors import CheckpointError, OutOfMemoryError, TrainingDivergedError
from repro.landscape.evaluate import autocast_context, evaluate, model_inputs
from repro.storage import (
    from_json_dict,
    link_identical,
    read_json,
    to_json_dict,
    write_json,
)
from repro.training.run import EvalRecord, TrainMetrics, TrainRun, run_dir_for
from repro.training.snapshots import (
    model_params,
    save_delta_snapshot,
    save_params,
    snapshot_steps,
)

Batch = dict[str, torch.Tensor]

DEFAULT_CHECKPOINT_SECONDS = 60.0  # at most this much training is lost to a kill -9 or a power cut


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM; ``str()`` says truthfully what was saved. A ``KeyboardInterrupt``, so
    every ``finally`` and every caller that handles Ctrl-C handles it too."""

    def __init__(self, message: str, *, signum: int, step: int, total: int, run_dir: Path) -> None:
        super().__init__(message)
        self.message, self.signum, self.step, self.total, self.run_dir = message, signum, step, total, run_dir

    def __str__(self) -> str:
        return self.message


class _StopRequest:
    """While active, SIGINT and SIGTERM only record that a stop was asked for; the training loop checks after each
    optimizer step, so it can save a checkpoint at a consistent state. A second signal raises KeyboardInterrupt at
    once. Handlers can only be installed from the main thread; elsewhere the process's handlers stay in place."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopped without saving the current step")
        self.signum = signum

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """BERT's convention: no weight decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(total: int, warmup: int):  # noqa: ANN202 - closure for LambdaLR
    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return f


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def epoch_batches(split: Any, hyper: Any, seed: int, epoch: int) -> list[Batch]:
    """The training batches of ``epoch``, in order: a function of (seed, epoch) and the split only, so a run resumed
    mid-epoch skips exactly the batches it has done. Random (the seeded permutation cut into batches) or, with
    ``hyper.length_bucketed``, length-grouped from the same generator (:func:`repro.data.tokenize.
    length_grouped_chunks`); the epoch has ceil(N / batch_size) batches either way."""
    gen = _epoch_generator(seed, epoch)
    if hyper.length_bucketed:
        return split.length_grouped_batches(hyper.batch_size, generator=gen)
    return split.batches(hyper.batch_size, shuffle=True, generator=gen)


def _eval_steps(steps_per_epoch: int, epochs: int, per_epoch: int) -> set[int]:
    steps = {0}
    for e in range(epochs):
        for k in range(1, per_epoch + 1):
            steps.add(e * steps_per_epoch + round(k * steps_per_epoch / per_epoch))
    return steps


def load_data(cfg: TrainConfig, data_dir: str | Path | None, cache_dir: str | Path | None = None):  # noqa: ANN201
    """(task spec, tokenized train split, tokenized dev split) exactly as the run with this config sees them."""
    from repro.data import get_task, prepare_split
    from repro.models import load_tokenizer

    task = get_task(cfg.task)
    tok = load_tokenizer(cfg.model)
    common = dict(tokenizer_id=cfg.model, max_length=cfg.max_length, data_dir=data_dir, cache_dir=cache_dir)
    train = prepare_split(task, task.train_split, tok, subset_size=cfg.train_size, subset_seed=cfg.data_seed, **common)
    dev = prepare_split(task, task.dev_split, tok, subset_size=cfg.dev_size, subset_seed=cfg.data_seed + 1, **common)
    return task, train, dev


def train(
    cfg: TrainConfig,
    out: str | Path,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    checkpoint_seconds: float | None = None,
    _stop_after_step: int | None = None,
) -> TrainRun:
    """Train (or resume, or reuse) the run for ``cfg`` under ``out``; returns the finished run.

    Raises :class:`TrainingDivergedError` when the loss is not finite; the state at that step and the metrics
    up to it are saved in the run directory first, and calling again raises the same error without retraining.
    Raises :class:`TrainingInterrupted` on SIGINT/SIGTERM after checkpointing the current step.
    ``checkpoint_seconds`` (default :data:`DEFAULT_CHECKPOINT_SECONDS`) bounds the training time between
    checkpoints. ``_stop_after_step`` simulates a kill without a final checkpoint (tests only).
    """
    from repro.models import load_model

    run_dir = run_dir_for(Path(out), cfg)
    metrics_path = run_dir / "metrics.json"
    ckpt_path = run_dir / "checkpoint.pt"
    every_s = DEFAULT_CHECKPOINT_SECONDS if checkpoint_seconds is None else float(checkpoint_seconds)
    if metrics_path.exists():
        ckpt_path.unlink(missing_ok=True)  # left by a kill between writing metrics.json and deleting it
        run = TrainRun.load(run_dir)
        if run.metrics.status == "diverged":
            raise TrainingDivergedError(run.metrics.message)
        _say(f"reusing {_name(cfg)} ({run_dir.name}): already trained, {run.metrics.total_steps} steps")
        return run

    device = torch.device(device) if device is not None else provenance.default_device()
    task, train_split, dev_split = load_data(cfg, data_dir, cache_dir)
    dev_batches = [to_device(b, device) for b in dev_split.batches(128, sort_by_length=True)]
    attn = "sdpa" if device.type == "cuda" else "eager"
    model = load_model(cfg.model, cfg.init, task.num_labels, cfg.seed, attn_implementation=attn).to(device)

    h = cfg.hyper
    steps_per_epoch = math.ceil(len(train_split) / h.batch_size)
    total = steps_per_epoch * h.epochs
    warmup = int(h.warmup_ratio * total)
    opt = torch.optim.AdamW(
        _param_groups(model, h.weight_decay), lr=h.learning_rate, betas=(h.adam_beta1, h.adam_beta2), eps=h.adam_eps,
        fused=device.type == "cuda",
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, warmup))
    snaps = snapshot_steps(total, cfg.snapshots)
    eval_at = _eval_steps(steps_per_epoch, h.epochs, max(1, cfg.evals_per_epoch))

    run_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"train_loss": [], "learning_rate": [], "grad_norm": [], "evals": [], "wall": 0.0}
    step = 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed + 7919)  # dropout stream; restored from the checkpoint on resume
        if ckpt_path.exists():
            ck = _load_checkpoint(ckpt_path)
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["rng"])
            if device.type == "cuda" and "cuda_rng" in ck:
                torch.cuda.set_rng_state(ck["cuda_rng"], device)
            state = json.loads(ck["state_json"])
            step = int(ck["step"])
            _say(f"resuming {_name(cfg)} ({run_dir.name}) from step {step} of {total}")
        else:
            write_json(run_dir / "config.json", {"config": cfg, "provenance": provenance.collect(device)})
            theta0 = model_params(model)
            save_params(run_dir / "theta0.safetensors", theta0)
            # runs with the same start (init, seed, label count) store θ0 once, as hard links
            link_identical(run_dir / "theta0.safetensors",
                           sorted(run_dir.parent.glob(f"*-{cfg.init}-seed{cfg.seed}-*/theta0.safetensors")))
        theta0 = None  # loaded lazily for delta snapshots

        def record_eval(at: int) -> None:
            dev = evaluate(model, dev_batches)  # the landscape's evaluator: one definition of dev loss
            dev_loss, dev_acc = dev.loss, dev.accuracy
            since = [x for x in state["train_loss"][state.get("last_eval_step", 0):]]
            state["evals"].append(to_json_dict(EvalRecord(
                step=at, epoch=at / steps_per_epoch, dev_loss=dev_loss, dev_accuracy=dev_acc,
                train_loss_epoch=sum(since) / len(since) if since else None,
            )))
            state["last_eval_step"] = at

        def snapshot(at: int) -> None:
            nonlocal theta0
            if at == 0 or at == total:
                return  # θ0 / θ1 are stored in full precision
            if theta0 is None:
                from repro.training.snapshots import load_params

                theta0 = load_params(run_dir / "theta0.safetensors")
            save_delta_snapshot(run_dir / "snapshots" / f"step_{at:07d}.safetensors", model_params(model), theta0)

        def checkpoint(at: int) -> None:
            from repro.storage import atomic_save

            ck = {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": torch.get_rng_state(), "step": at, "state_json": json.dumps(state),
            }
            if device.type == "cuda":
                ck["cuda_rng"] = torch.cuda.get_rng_state(device)
            atomic_save(ckpt_path, lambda tmp: torch.save(ck, tmp))

        if step == 0 and not state["evals"]:
            record_eval(0)
        model.train()
        t_start = last_ckpt = time.perf_counter()
        bar = _progress(total, step, f"{cfg.task}/{cfg.init}/seed{cfg.seed}", progress)
        with _StopRequest() as stop:
            try:
                for epoch in range(step // steps_per_epoch, h.epochs):
                    batches = epoch_batches(train_split, h, cfg.seed, epoch)
                    for i, batch in enumerate(batches):
                        global_step = epoch * steps_per_epoch + i + 1
                        if global_step <= step:
                            continue
                        batch = to_device(batch, device)
                        with autocast_context(device):
                            logits = model(**model_inputs(batch)).logits
                        loss = F.cross_entropy(logits.float(), batch["labels"])
                        if not torch.isfinite(loss):
                            _diverged(run_dir, model, state, global_step, steps_per_epoch, total, snaps, train_split,
                                      dev_split, task.num_labels, float(loss.item()), cfg)
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), h.max_grad_norm)
                        state["learning_rate"].append(sched.get_last_lr()[0])
                        opt.step()
                        sched.step()
                        step = global_step
                        loss_value = loss.item()  # the step's one host sync
                        state["train_loss"].append(loss_value)
                        state["grad_norm"].append(float(gnorm))
                        if step in eval_at:
                            record_eval(step)
                        if step in snaps:
                            snapshot(step)
                        now = time.perf_counter()
                        if step < total and (stop.signum is not None or step % cfg.checkpoint_every == 0
                                             or now - last_ckpt >= every_s):
                            state["wall"] += now - t_start
                            checkpoint(step)
                            t_start = last_ckpt = time.perf_counter()
                        if stop.signum is not None and step < total:
                            raise TrainingInterrupted(
                                f"interrupted by {stop.name}: saved a checkpoint at step {step} of {total} of "
                                f"{cfg.task}/{cfg.init}/seed {cfg.seed} in {run_dir}; rerun the same command to resume "
                                "from it", signum=stop.signum, step=step, total=total, run_dir=run_dir)
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss_value:.4f}")
                        progress_sink.fraction(step, total)
                        if _stop_after_step is not None and step >= _stop_after_step:
                            raise KeyboardInterrupt(f"simulated interruption after step {step}")
            except torch.cuda.OutOfMemoryError as e:
                raise OutOfMemoryError(
                    f"out of GPU memory at batch size {h.batch_size}, max length {cfg.max_length}: lower "
                    "`--set pretrained.batch_size=...`/`scratch.batch_size=...` or `--set max_length=...`; completed "
                    f"work up to the last checkpoint is kept in {run_dir}"
                ) from e
            finally:
                bar.close()
            state["wall"] += time.perf_counter() - t_start
            # a signal after the last step finishes the run first: writing θ1 and the metrics takes a moment
            save_params(run_dir / "theta1.safetensors", model_params(model))
            metrics = _finish(run_dir, state, total, steps_per_epoch, snaps, train_split, dev_split, task.num_labels)
    run = TrainRun(run_dir, cfg, metrics)
    if stop.signum is not None:
        raise TrainingInterrupted(
            f"interrupted by {stop.name} after the last step: the run is complete and saved in {run_dir}; rerun "
            "the same command to continue", signum=stop.signum, step=total, total=total, run_dir=run_dir)
    return run


def _finish(run_dir: Path, state: dict[str, Any], total: int, steps_per_epoch: int, snaps: list[int],
            train_split: Any, dev_split: Any, num_labels: int) -> TrainMetrics:
    """Write metrics.json (which marks the run complete), then drop the resumable checkpoint; return the metrics."""
    metrics = TrainMetrics(
        status="complete", total_steps=total, steps_per_epoch=steps_per_epoch, train_loss=state["train_loss"],
        learning_rate=state["learning_rate"], grad_norm=state["grad_norm"],
        evals=[from_json_dict(EvalRecord, e) for e in state["evals"]], snapshot_steps=snaps,
        wall_seconds=state["wall"], num_train=len(train_split), num_dev=len(dev_split), num_labels=num_labels,
    )
    write_json(run_dir / "metrics.json", metrics)
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return metrics


def _diverged(run_dir: Path, model: nn.Module, state: dict[str, Any], step: int, spe: int, total: int,
              snaps: list[int], train_split: Any, dev_split: Any, num_labels: int, loss: float,
              cfg: TrainConfig) -> None:
    msg = (
        f"training loss became {loss} at step {step} ({cfg.task}, {cfg.init}, seed {cfg.seed}, learning rate "
        f"{cfg.hyper.learning_rate}). The parameters at that step are in {run_dir / 'diverged.safetensors'}. "
        "Lower the learning rate (e.g. `--set scratch.learning_rate=5e-5`) or the gradient-clipping norm."
    )
    save_params(run_dir / "diverged.safetensors", model_params(model))
    # a diverged run is never resumed (calling again re-raises this error), so its ~12 bytes/parameter resumable
    # checkpoint would only take disk
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    metrics = TrainMetrics(
        status="diverged", total_steps=total, steps_per_epoch=spe, train_loss=state["train_loss"] + [loss],
        learning_rate=state["learning_rate"], grad_norm=state["grad_norm"],
        evals=[from_json_dict(EvalRecord, e) for e in state["evals"]], snapshot_steps=[s for s in snaps if s < step],
        wall_seconds=state["wall"], num_train=len(train_split), num_dev=len(dev_split), num_labels=num_labels,
        message=msg,
    )
    write_json(run_dir / "metrics.json", metrics)
    raise TrainingDivergedError(msg)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """The resumable state, loaded with ``weights_only=True``: a checkpoint is data, and one that holds anything but
    tensors and plain containers (a tampered or foreign file) is refused, not unpickled."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(  # the loader's own message, often pages long, stays on the chained cause
            f"cannot resume from {path} ({type(e).__name__}): the file is damaged or was not written by repro; delete "
            "it to restart this run from step 0 (nothing else in the run directory is lost)") from e


def _name(cfg: TrainConfig) -> str:
    return f"{cfg.task}/{cfg.init}/seed {cfg.seed}"


def _say(line: str) -> None:
    """One line on stderr that a person watching a long plan needs (a resume, a reuse), whatever the bars: through
    tqdm when it is loaded, so a bar being drawn is not torn by it."""
    tqdm_mod = sys.modules.get("tqdm")
    if tqdm_mod is not None:
        tqdm_mod.tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


def _progress(total: int, initial: int, desc: str, enabled: bool):  # noqa: ANN202
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


def read_metrics(run_dir: Path) -> TrainMetrics:
    return from_json_dict(TrainMetrics, read_json(run_dir / "metrics.json"))
