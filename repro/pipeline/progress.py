"""Progress of the plan, weighted by each job's expected cost, visible on any terminal.

Jobs differ in cost by orders of magnitude (an extended training run, an analysis with a 21×21 surface), so the
bar counts step-equivalents (see :mod:`repro.pipeline.jobs`), not jobs, and its ETA follows the work left. On a terminal
tqdm draws the bar with a fixed width when the terminal reports no window size (a pseudo-terminal or CI log that
reports 0 columns made a dynamic-width bar print nothing). When stderr is not a terminal, plain lines are written
at most every ``LOG_EVERY_SECONDS`` and after the last job, so a redirected log still shows progress.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

LOG_EVERY_SECONDS = 30.0
FALLBACK_COLUMNS = 100


def _hms(seconds: float) -> str:
    s = round(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class CostProgress:
    """A progress display over ``total`` step-equivalents. ``advance(cost, label)`` after each job."""

    def __init__(self, total: float, desc: str, *, enabled: bool = True, stream: TextIO | None = None,
                 jobs: int = 0) -> None:
        # Work of zero cost (everything cached) is measured in jobs instead: done/total would stay 0 % to the end.
        self.by_jobs = float(total) <= 0 and jobs > 0
        self.total = max(float(total), 1e-9)
        self.desc = desc
        self.done = 0.0
        self.jobs, self.jobs_done = jobs, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._last_log = -float("inf")
        self._bar = None
        if self.tty:
            from tqdm.auto import tqdm

            cols = shutil.get_terminal_size((FALLBACK_COLUMNS, 24)).columns or FALLBACK_COLUMNS
            self._bar = tqdm(total=round(self.total), desc=desc, unit="step-eq", file=self.stream,
                             ncols=cols, dynamic_ncols=False, mininterval=1.0)
        elif enabled:
            self._log(f"started, {jobs} jobs, about {self.total:.0f} step-equivalents of work")

    @property
    def is_tty(self) -> bool:
        return self.tty

    def _log(self, what: str) -> None:
        print(f"[{self.desc}] {what}", file=self.stream, flush=True)

    def advance(self, cost: float, label: str = "") -> None:
        self.done = min(self.total, self.done + cost)
        self.jobs_done += 1
        if self._bar is not None:
            self._bar.update(round(self.done) - self._bar.n)
            if label:
                self._bar.set_postfix_str(label, refresh=False)
            return
        if not self.enabled:
            return
        now = time.monotonic()
        last = self.jobs and self.jobs_done >= self.jobs
        if now - self._last_log >= LOG_EVERY_SECONDS or last:
            self._last_log = now
            frac = min(1.0, self.jobs_done / self.jobs) if self.by_jobs else self.done / self.total
            elapsed = now - self.start
            eta = f", about {_hms(elapsed * (1 - frac) / frac)} left" if 0 < frac < 1 else ""
            self._log(f"{100 * frac:5.1f}% of the work ({self.jobs_done}/{self.jobs} jobs), "
                      f"{_hms(elapsed)} elapsed{eta}" + (f"; last: {label}" if label else ""))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
