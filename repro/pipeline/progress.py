"""Progress of the plan, counted in training runs and analyses and weighted by each job's expected cost.

A plan is a few dozen jobs whose costs differ by orders of magnitude (an extended training run, an analysis with a
21×21 surface), each up to a quarter of an hour on a CPU. So the display says what a person counts -- "runs 3/18
trained, analyses 0/6" -- and a percentage of the work **weighted by the expected cost of each job** (the
estimates of :mod:`repro.pipeline.jobs`; the first line printed says so). It moves while a job runs: the job's loops
tick :mod:`repro.progress_sink` (training per optimizer step, the landscape instruments per forward pass and per
Hessian-vector product), and the display counts ``done cost + fraction of the current job × its cost``, the
fraction held below 1 until the job ends (an estimate that falls short cannot show a job as finished).

The ETA is the rate over the whole run so far, ``elapsed × (1 − f) / f`` at fraction f, rounded to the minute and
shown only once ``ETA_MIN_FRACTION`` of the work and ``ETA_MIN_SECONDS`` have passed: before that (model loading,
tokenising, a first cached job) it would be noise, and a rate over the last job alone swings with each job's kind.

On a terminal, with bars on, tqdm draws one fixed-width bar (a pseudo-terminal or CI log that reports 0 columns made
a dynamic-width bar print nothing, and one that reports 0 rows made tqdm hide it). Otherwise -- stderr redirected,
or ``--no-progress``, which hides bars only -- plain lines are written: one when each job starts and ends, and a
heartbeat at most every ``LOG_EVERY_SECONDS`` while ticks arrive, so a log shows life at least once a minute even
inside a 15-minute job. Time comes from ``clock`` (injected by tests).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

LOG_EVERY_SECONDS = 30.0  # heartbeat interval off a terminal; with ticks seconds apart, a line at least every minute
DRAW_EVERY_SECONDS = 1.0  # the terminal bar is redrawn at most this often
FALLBACK_COLUMNS = 100
FALLBACK_ROWS = 24
BAR_WIDTH = 20  # fixed, before the text: a bar sized to the columns left by long text vanished
ETA_MIN_FRACTION = 0.01
ETA_MIN_SECONDS = 60.0
IN_JOB_CAP = 0.99  # a job shows at most this fraction of its cost until it ends
REUSED_SECONDS = 2.0  # a job that ends this fast without a tick was reused from disk (loading JSON), not computed

# What each job is, as a person would name it (repro.pipeline.plan.job_kinds tells them apart).
KINDS: dict[str, str] = {
    "train": "normal training run",
    "extended": "extended (overfitting) training run",
    "partner": "cross-task partner run",
    "analysis": "analysis",
}
WEIGHTED = "percentages of the work are weighted by the expected cost of each job"


def _hms(seconds: float) -> str:
    s = round(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _minutes(seconds: float) -> str:
    """An ETA rounded to the minute: "about 7 min left", "about 1 h 05 min left"."""
    m = round(max(0.0, seconds) / 60)
    if m < 1:
        return "under a minute left"
    h, m = divmod(m, 60)
    return f"about {h} h {m:02d} min left" if h else f"about {m} min left"


class JobSink:
    """Turns one job's ticks (:mod:`repro.progress_sink`) into the fraction of that job done.

    ``prices`` gives the cost, in the job's cost unit, of one example through one unit of each kind of work
    (analyses: forward passes and Hessian-vector products, priced as :func:`repro.pipeline.jobs.analysis_cost`
    prices them); kinds without a price (a training run's dev evaluations) are ignored. A loop that knows its length
    reports the fraction itself (training: optimizer steps)."""

    def __init__(self, progress: CostProgress, cost: float, prices: Mapping[str, float] | None = None) -> None:
        self.progress, self.cost, self.prices = progress, cost, dict(prices or {})
        self.units = 0.0

    def fraction(self, done: float) -> None:
        self.progress.in_job(done)

    def work(self, kind: str, examples: int) -> None:
        price = self.prices.get(kind)
        if price and self.cost > 0:
            self.units += examples * price
            self.progress.in_job(self.units / self.cost)


class CostProgress:
    """The display of a plan: ``begin(kind, name, cost)`` before each job, ``in_job(fraction)`` while it runs (through
    :meth:`sink`), ``end()`` after it. ``counts`` is the number of jobs of each kind (:data:`KINDS`)."""

    def __init__(self, total: float, desc: str, *, enabled: bool = True, bars: bool = True,
                 stream: TextIO | None = None, counts: Mapping[str, int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.counts = {k: int(v) for k, v in (counts or {}).items() if v}
        self.jobs = sum(self.counts.values())
        # Work of zero cost (everything cached) is measured in jobs instead: done/total would stay 0 % to the end.
        self.by_jobs = float(total) <= 0 and self.jobs > 0
        self.total = max(float(total), 1e-9)
        self.desc, self.enabled, self.clock = desc, enabled, clock
        self.stream = stream if stream is not None else sys.stderr
        self.tty = enabled and bars and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done = 0.0
        self.reused = 0.0  # cost of the jobs that ended without a tick: already on disk, they took no work
        self.finished: dict[str, int] = dict.fromkeys(self.counts, 0)
        self.current: tuple[str, str, float] | None = None  # (kind, name, cost) of the running job
        self.job_fraction = 0.0
        self.start = self._job_start = self._last_log = self._last_draw = clock()
        self._bar = None
        if not enabled:
            return
        self._log(f"{self._plan()}; {WEIGHTED}")
        if self.tty:
            from tqdm.auto import tqdm

            size = shutil.get_terminal_size((FALLBACK_COLUMNS, FALLBACK_ROWS))
            # a terminal that reports 0 rows made tqdm hide the bar as if it were below the screen
            self._bar = tqdm(total=100.0, desc=desc, file=self.stream, ncols=size.columns or FALLBACK_COLUMNS,
                             nrows=size.lines or FALLBACK_ROWS, dynamic_ncols=False,
                             mininterval=DRAW_EVERY_SECONDS,
                             bar_format="{percentage:3.0f}%% |{bar:%d}| {desc}" % BAR_WIDTH)
            self._draw(self.clock())

    @property
    def is_tty(self) -> bool:
        return self.tty

    # -- what is done -------------------------------------------------------------------------------------------
    def fraction(self) -> float:
        """The fraction of the work done, counting the running job's share of its cost."""
        part = min(IN_JOB_CAP, self.job_fraction)
        if self.by_jobs:
            return min(1.0, (sum(self.finished.values()) + (part if self.current else 0.0)) / self.jobs)
        running = part * self.current[2] if self.current else 0.0
        return min(1.0, (self.done + running) / self.total)

    def eta_seconds(self) -> float | None:
        """``elapsed × (1 − f) / w`` once w ≥ ETA_MIN_FRACTION and ETA_MIN_SECONDS have passed, else None, where w
        is the fraction of the work *done in this process*: f less the jobs that ended within ``REUSED_SECONDS``
        without a tick (reused from disk, as when a run is resumed). Counting those as work done in no time made a resumed run's ETA a fraction
        of the truth."""
        f, elapsed = self.fraction(), self.clock() - self.start
        w = f if self.by_jobs else f - self.reused / self.total
        if w < ETA_MIN_FRACTION or elapsed < ETA_MIN_SECONDS or f >= 1.0:
            return None
        return elapsed * (1.0 - f) / w

    def _plan(self) -> str:
        """"18 training runs (12 normal, 4 extended (overfitting), 2 cross-task partner) and 6 analyses to do"."""
        runs = sum(n for k, n in self.counts.items() if k != "analysis")
        kinds = ", ".join(f"{n} {KINDS.get(k, k).removesuffix(' run').removesuffix(' training')}"
                          for k, n in self.counts.items() if k != "analysis")
        n_an = self.counts.get("analysis", 0)
        analyses = f"{n_an} {'analysis' if n_an == 1 else 'analyses'} to do"
        return f"{runs} training run{'' if runs == 1 else 's'} ({kinds}) and {analyses}" if runs else analyses

    def summary(self, percent: bool = True) -> str:
        """"runs 3/18 trained, analyses 0/6, 41.0% of the work, 12:05 elapsed, about 17 min left" (without the
        percentage where the bar shows it)."""
        runs = sum(n for k, n in self.counts.items() if k != "analysis")
        runs_done = sum(n for k, n in self.finished.items() if k != "analysis")
        parts = [f"runs {runs_done}/{runs} trained"] if runs else []
        parts.append(f"analyses {self.finished.get('analysis', 0)}/{self.counts.get('analysis', 0)}")
        if percent:
            parts.append(f"{100 * self.fraction():.1f}% of the work")
        parts.append(f"{_hms(self.clock() - self.start)} elapsed")
        eta = self.eta_seconds()
        if eta is not None:
            parts.append(_minutes(eta))
        return ", ".join(parts)

    def _what(self) -> str:
        if self.current is None:
            return ""
        kind, name, _ = self.current
        return f"{KINDS.get(kind, kind)} {name}"

    # -- events -------------------------------------------------------------------------------------------------
    def begin(self, kind: str, name: str, cost: float) -> None:
        """Job ``name`` of ``kind`` (a key of :data:`KINDS`), expected to cost ``cost``, starts."""
        self.current, self.job_fraction = (kind, name, float(cost)), 0.0
        self._job_start = self.clock()
        n, of = self.finished.get(kind, 0) + 1, self.counts.get(kind, 0)
        self._event(f"start {KINDS.get(kind, kind)}" + (f" {n}/{of}" if of else "") + f": {name}")

    def sink(self, prices: Mapping[str, float] | None = None) -> JobSink:
        """The sink for the running job's ticks (see :class:`JobSink` for ``prices``)."""
        cost = self.current[2] if self.current is not None else 0.0
        return JobSink(self, cost, prices)

    def in_job(self, fraction: float) -> None:
        """The running job is ``fraction`` done: redraw the bar, or write a heartbeat line when one is due."""
        if self.current is None:
            return
        self.job_fraction = max(self.job_fraction, min(1.0, float(fraction)))
        if not self.enabled:
            return
        now = self.clock()
        if self._bar is not None:
            if now - self._last_draw >= DRAW_EVERY_SECONDS:
                self._draw(now)
        elif now - self._last_log >= LOG_EVERY_SECONDS:
            self._log(f"{self.summary()}; now: {self._what()} ({100 * min(IN_JOB_CAP, self.job_fraction):.0f}% of it)")

    def end(self, error: str | None = None) -> None:
        """The running job finished (``error``: why it failed; it counts as done for the progress either way)."""
        if self.current is None:
            return
        kind, _, cost = self.current
        what = self._what()
        took = _hms(self.clock() - self._job_start)
        self.done = min(self.total, self.done + cost)
        if self.job_fraction == 0.0 and error is None and self.clock() - self._job_start < REUSED_SECONDS:
            self.reused += cost
        self.finished[kind] = self.finished.get(kind, 0) + 1
        self.current, self.job_fraction = None, 0.0
        verb = f"FAILED {what} after {took}: {error}" if error else f"done  {what} in {took}"
        self._event(f"{verb}; {self.summary()}")

    # -- output -------------------------------------------------------------------------------------------------
    def _event(self, line: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._draw(self.clock())
        else:
            self._log(line)

    def _draw(self, now: float) -> None:
        assert self._bar is not None
        self._last_draw = now
        self._bar.n = round(100.0 * self.fraction(), 1)
        what = self._what()
        text = f"{self.desc}: {self.summary(percent=False)}" + (f"; now: {what}" if what else "")
        self._bar.set_description_str(text, refresh=False)
        self._bar.refresh()

    def _log(self, what: str) -> None:
        self._last_log = self.clock()
        print(f"[{self.desc}] {what}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._draw(self.clock())
            self._bar.close()
            self._bar = None
