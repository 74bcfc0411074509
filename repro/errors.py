"""One exception family, so the CLI can turn every user-facing failure into one clear message and exit code 2.

Every error says what went wrong *and* how to fix it: a user who meets it should not need to read the source.
"""

from __future__ import annotations


class ReproError(Exception):
    """Base class for errors caused by input, environment or data, not by a bug in repro."""


class UnknownNameError(ReproError, KeyError):
    """An unknown task, model, profile or claim name. The message lists the known names."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else ""


class DataError(ReproError):
    """Missing, malformed or inconsistent data (directory, split, line, label)."""


class TrainingDivergedError(ReproError):
    """The loss became NaN or Inf. The state at that step has been saved for inspection."""


class CheckpointError(ReproError):
    """A resumable checkpoint cannot be read: truncated, damaged, or holding more than tensors and plain containers
    (which ``weights_only`` loading refuses rather than run). The message names the file to delete."""


class OutOfMemoryError(ReproError):
    """The device ran out of memory; the message names the setting to lower."""


class NonFiniteError(ReproError):
    """A loss, gradient or Hessian-vector product is NaN or Inf (usually a diverged run): the quantity asked for is
    undefined at that point. Callers record it for the run instead of reporting a number."""
