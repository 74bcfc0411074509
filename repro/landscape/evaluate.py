"""Loss and accuracy of a model at points θ + Σ cᵢ dᵢ over fixed batches: the inner loop of every curve/surface.

Why it looks the way it does:

* eval mode and ``torch.no_grad``: dropout off, no autograd graph -- a landscape is a deterministic function.
* Every point is written from the base point (:func:`set_params`), never stepped from the previous point, so a
  10 000-point surface does not drift; the model's own parameters are restored when the evaluator closes.
* The mean loss is weighted by example count (sum of per-example losses / number of examples), so a result does not
  depend on how the examples were batched.
* bf16 autocast on CUDA (tensor cores; the loss itself is accumulated in float32) unless turned off
  (:func:`grid_bf16_evaluation`: the ``cuda_grid_bf16`` landscape option, off in the verdict profiles because bf16
  moves grid losses by more than a tenth of the smallest minimum effect), plain model dtype on the CPU unless asked
  for (``autocast=True`` or :func:`cpu_bf16_evaluation`: the ``cpu_grid_bf16`` landscape option, issue 42): a CPU with native bf16 matmuls runs them at 2-3x the float32 rate, one without emulates them slower.
* Optionally several grid points share one forward pass: ``torch.func.functional_call`` vmapped over stacked
  parameter sets. This pays off for small models where a single point does not saturate the device.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro import progress_sink
from repro.landscape.params import ParamVector, get_params, model_params, set_params

Batch = Mapping[str, Tensor]
# loss_fn(model, batch) -> (sum of per-example losses, number correct, number of examples)
LossFn = Callable[[nn.Module, Batch], tuple[Tensor, Tensor, int]]
# logits_fn(model, batch) -> logits; used by the vmapped path
LogitsFn = Callable[[nn.Module, Batch], Tensor]


def model_inputs(batch: Batch) -> dict[str, Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


def classification_logits(model: nn.Module, batch: Batch) -> Tensor:
    return model(**model_inputs(batch)).logits


def classification_loss(model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor, int]:
    """Summed cross-entropy, number correct and count for a Hugging Face sequence classifier."""
    logits = classification_logits(model, batch)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # autocast logits: the loss itself in float32 (float64 models stay float64)
    labels = batch["labels"]
    loss = F.cross_entropy(logits, labels, reduction="sum")
    correct = (logits.argmax(-1) == labels).sum()
    return loss, correct, int(labels.shape[0])


@dataclass(frozen=True)
class PointMetrics:
    loss: float
    accuracy: float
    count: int

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


# Set by cpu_bf16_evaluation / grid_bf16_evaluation: the default of autocast_context on the CPU and on CUDA within the
# block (this thread/task only).
_CPU_BF16: contextvars.ContextVar[bool] = contextvars.ContextVar("cpu_bf16_evaluation", default=False)
_CUDA_BF16: contextvars.ContextVar[bool] = contextvars.ContextVar("cuda_bf16_evaluation", default=True)


@contextlib.contextmanager
def grid_bf16_evaluation(*, cpu: bool = False, cuda: bool = True) -> Iterator[None]:
    """Within the block, evaluations that do not say otherwise autocast to bf16 on the CPU when ``cpu`` and on CUDA
    when ``cuda`` (the landscape options ``cpu_grid_bf16`` and ``cuda_grid_bf16``). Only :func:`evaluate` and
    :class:`GridEvaluator` read it -- loss-and-gradient and Hessian products never autocast -- so it changes the grids
    and no curvature."""
    tokens = (_CPU_BF16.set(bool(cpu)), _CUDA_BF16.set(bool(cuda)))
    try:
        yield
    finally:
        _CUDA_BF16.reset(tokens[1])
        _CPU_BF16.reset(tokens[0])


def cpu_bf16_evaluation(enabled: bool = True) -> contextlib.AbstractContextManager:
    """Within the block, evaluations on the CPU that do not say otherwise autocast to bf16 (the landscape option
    ``cpu_grid_bf16``); CUDA keeps its current default."""
    return grid_bf16_evaluation(cpu=enabled, cuda=_CUDA_BF16.get())


def autocast_context(device: torch.device, enabled: bool | None = None) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (default on; off inside ``grid_bf16_evaluation(cuda=False)``); on the CPU only when asked
    for (``enabled=True``, or ``None`` inside :func:`cpu_bf16_evaluation`); nothing on any other device."""
    if enabled is None:
        enabled = (device.type == "cuda" and _CUDA_BF16.get()) or (device.type == "cpu" and _CPU_BF16.get())
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(
    model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn = classification_loss, *, autocast: bool | None = None
) -> PointMetrics:
    """Example-weighted mean loss and accuracy at the model's current parameters (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    try:
        dev = _device_of(model)
        loss = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.float64, device=dev)
        n = 0
        with autocast_context(dev, autocast):
            for b in batches:
                ls, c, k = loss_fn(model, b)
                loss += ls.double()
                correct += c.double()
                n += k
        if n == 0:
            raise ValueError("no examples to evaluate")
        progress_sink.forwards(n)
        return PointMetrics(float(loss) / n, float(correct) / n, n)
    finally:
        model.train(was_training)


class GridEvaluator:
    """Evaluates θ_base + Σ cᵢ dᵢ on several named batch sets; restores the model on :meth:`close`.

    Use as a context manager. ``vmap_points > 1`` evaluates that many points per forward pass via
    ``torch.func.vmap`` (needs ``logits_fn`` to be a plain classification forward; the loss is cross-entropy).
    """

    def __init__(
        self,
        model: nn.Module,
        base: ParamVector,
        directions: Sequence[ParamVector],
        batch_sets: Mapping[str, Sequence[Batch]],
        *,
        loss_fn: LossFn = classification_loss,
        logits_fn: LogitsFn | None = classification_logits,
        autocast: bool | None = None,
        vmap_points: int = 1,
    ) -> None:
        self.model = model
        # Everything on the model's device once, up front (no copy where it already is): a host-side direction
        # would otherwise be copied to the GPU at every grid point, and a host-side batch would not run at all.
        dev = _device_of(model)
        self.base = base.to(device=dev)
        self.directions = [d.to(device=dev) for d in directions]
        self.batch_sets = {name: [{k: v.to(dev) for k, v in b.items()} for b in bs] for name, bs in batch_sets.items()}
        self.loss_fn = loss_fn
        self.logits_fn = logits_fn
        self.autocast = autocast
        self.vmap_points = max(1, int(vmap_points))
        if self.vmap_points > 1 and logits_fn is None:
            raise ValueError("vmap_points > 1 needs a logits_fn")
        self._saved = get_params(model, base.names)
        self._was_training = model.training
        self._closed = False

    def __enter__(self) -> GridEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Put the model's original parameters and mode back."""
        if not self._closed:
            set_params(self.model, self._saved)
            self.model.train(self._was_training)
            self._closed = True

    def evaluate_point(self, coefs: Sequence[float]) -> dict[str, PointMetrics]:
        if len(coefs) != len(self.directions):
            raise ValueError(f"{len(coefs)} coefficients for {len(self.directions)} directions")
        set_params(self.model, self.base, list(zip(coefs, self.directions)))
        return {name: evaluate(self.model, b, self.loss_fn, autocast=self.autocast)
                for name, b in self.batch_sets.items()}

    def evaluate_points(self, points: Sequence[Sequence[float]]) -> list[dict[str, PointMetrics]]:
        if self.vmap_points <= 1 or len(points) == 1:
            return [self.evaluate_point(p) for p in points]
        out: list[dict[str, PointMetrics]] = []
        for i in range(0, len(points), self.vmap_points):
            out.extend(self._evaluate_vmapped(points[i : i + self.vmap_points]))
        return out

    # -- vmapped path ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _evaluate_vmapped(self, points: Sequence[Sequence[float]]) -> list[dict[str, PointMetrics]]:
        from torch.func import functional_call, vmap

        model, dev = self.model, _device_of(self.model)
        # the model's own tensors for parameters outside base.names (and buffers) stay shared across points
        set_params(model, self.base)
        coefs = torch.tensor([list(p) for p in points], dtype=torch.float64)  # [P, k]
        stacked: dict[str, Tensor] = {}
        live = model_params(model, self.base.names)
        for j, (name, b) in enumerate(zip(self.base.names, self.base.tensors)):
            t = b.to(device=dev, dtype=live.tensors[j].dtype).unsqueeze(0).repeat(len(points), *([1] * b.ndim))
            for di, d in enumerate(self.directions):
                c = coefs[:, di].to(device=dev, dtype=t.dtype).view(-1, *([1] * b.ndim))
                t.add_(c * d.tensors[j].to(device=dev, dtype=t.dtype).unsqueeze(0))
            stacked[name] = t
        logits_fn = self.logits_fn
        assert logits_fn is not None

        class _Proxy(nn.Module):  # lets logits_fn call "model(**inputs)" with the point's parameters
            def __init__(self, params: dict[str, Tensor]) -> None:
                super().__init__()
                self._p = params

            def forward(self, *args: object, **kwargs: object) -> object:
                return functional_call(model, self._p, args, kwargs, strict=False)

        def one(params: dict[str, Tensor], batch: Batch) -> Tensor:
            return logits_fn(_Proxy(params), batch)

        was_training = model.training
        model.eval()
        results: list[dict[str, PointMetrics]] = [dict() for _ in points]
        try:
            with autocast_context(dev, self.autocast):
                for set_name, batches in self.batch_sets.items():
                    loss = torch.zeros(len(points), dtype=torch.float64, device=dev)
                    correct = torch.zeros(len(points), dtype=torch.float64, device=dev)
                    n = 0
                    for b in batches:
                        logits = vmap(one, in_dims=(0, None))(stacked, b)  # [P, B, C]
                        if logits.dtype in (torch.float16, torch.bfloat16):
                            logits = logits.float()
                        labels = b["labels"]
                        ce = F.cross_entropy(logits.transpose(1, 2), labels.expand(len(points), -1), reduction="none")
                        loss += ce.double().sum(1)
                        correct += (logits.argmax(-1) == labels).double().sum(1)
                        n += int(labels.shape[0])
                    for i in range(len(points)):
                        results[i][set_name] = PointMetrics(float(loss[i]) / n, float(correct[i]) / n, n)
                    progress_sink.forwards(n * len(points))
        finally:
            model.train(was_training)
        return results


@contextlib.contextmanager
def temporarily_set(model: nn.Module, base: ParamVector, terms: Sequence[tuple[float, ParamVector]]) -> Iterator[None]:
    """Set θ = base + Σ cᵢ dᵢ for the duration of the block, then restore the model's previous parameters."""
    saved = get_params(model, base.names)
    try:
        set_params(model, base, terms)
        yield
    finally:
        set_params(model, saved)
