"""Where the long loops report work in flight, so a plan's progress display moves during a job, not only after it.

A training run or an analysis takes up to a quarter of an hour on a CPU; a display that advances only when a job
ends looks frozen for that long, and a redirected log stays silent. The loops that do the work therefore *tick*
this module: training with the fraction of its optimizer steps done, the landscape instruments with the forward
passes they made (:func:`forwards`, one call per evaluation of a batch set) and the Hessian-vector products
(:func:`hvps`). Whoever runs the job (``repro.pipeline.plan.execute``) installs a :class:`Sink` around it with
:func:`reporting_to` and turns the ticks into a fraction of the job's expected cost.

The science code depends on nothing but this module (a context variable and a protocol): with no sink installed,
which is the case outside a plan and in every test that does not install one, a tick is one ``ContextVar.get`` and
does nothing. A tick never reads or changes any random state, makes no computation and cannot raise into the loop
(a failing sink is switched off), so progress can never change a number.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol


class Sink(Protocol):
    """Receives the ticks of the job that is running."""

    def fraction(self, done: float) -> None:
        """``done`` (0..1) of the job's own count of work (training: optimizer steps) is finished."""

    def work(self, kind: str, examples: int) -> None:
        """``examples`` examples went through one unit of ``kind`` ("forward" or "hvp") since the last tick."""


_current: ContextVar[Sink | None] = ContextVar("repro_progress_sink", default=None)


@contextlib.contextmanager
def reporting_to(sink: Sink | None) -> Iterator[None]:
    """Send the ticks made inside the block to ``sink`` (None: to nobody)."""
    token = _current.set(sink)
    try:
        yield
    finally:
        _current.reset(token)


def _call(method: str, *args: object) -> None:
    sink = _current.get()
    if sink is None:
        return
    try:
        getattr(sink, method)(*args)
    except Exception:  # noqa: BLE001 -- a display must never stop the work it displays
        _current.set(None)


def fraction(done: int, total: int) -> None:
    """Tick from a loop that knows its own length (``done`` of ``total``; e.g. optimizer steps)."""
    if total > 0:
        _call("fraction", min(1.0, max(0.0, done / total)))


def forwards(examples: int) -> None:
    """Tick after a no-grad forward pass over ``examples`` examples (a grid point's batch set, a width's loss)."""
    _call("work", "forward", int(examples))


def hvps(examples: int) -> None:
    """Tick after one Hessian-vector product over ``examples`` examples."""
    _call("work", "hvp", int(examples))
