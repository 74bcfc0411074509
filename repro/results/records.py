"""The records a claims run writes (``claims.json``) and reads back: what a reader's script, the report, the
pipeline and the claims all share.

These are plain frozen dataclasses with no science and no orchestration in them, so that every layer can depend on
them and none on another for them: ``claims`` fills :class:`ClaimResult` s, the pipeline writes a
:class:`ClaimsReport`, and the report (which reads saved results only) loads it with :func:`load_claims`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from repro import provenance
from repro.storage import from_json_dict, read_json

CLAIMS_FILE = "claims.json"
# The version of claims.json's layout. Bump it whenever a field is added, removed or changes meaning, and regenerate
# repro/results/claims.schema.json (``python -m repro.results.schema``). 0 = a file written before versioning.
SCHEMA_VERSION = 3  # 2: science v3 (issue 36) -- Stat's directional summaries, RunSummary.converged, data_notes
# 3: ClaimsReport.science_revision (issue 39)
UNVERSIONED = 0

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stat:
    """Summary of the paired effects of one comparison over a set of pairs."""

    n: int
    mean: float
    sd: float
    ci_low: float  # Student-t 95% interval of the mean
    ci_high: float
    positive: int  # how many effects are > 0
    verdict: str  # reproduced / not_reproduced / inconclusive / undecidable (claims.base.STAT_VERDICTS)
    effects: tuple[float, ...] = ()
    bounds: int = 0  # how many of the effects are censored bounds, not measured values (claims.effects.Bound)
    note: str = ""  # why there is no interval, when that is not just "fewer than 2 pairs"
    # Science v3 (claims/REGISTRATION_V3.md §1): each pair's effect is an interval [lo, hi]; "reproduced" is judged
    # on the lo values, "not reproduced" on the hi values. ``lower``/``upper`` summarise them (n, mean, 95% t
    # interval); ``blocked_*`` count the pairs whose end in that direction is infinite (that direction is then
    # unreachable). For measured effects only, lo = hi = the effect and both equal the main summary.
    lower: tuple[int, float, float, float] = (0, float("nan"), float("nan"), float("nan"))
    upper: tuple[int, float, float, float] = (0, float("nan"), float("nan"), float("nan"))
    blocked_lower: int = 0
    blocked_upper: int = 0


@dataclass(frozen=True)
class ComparisonResult:
    name: str
    description: str
    primary: bool
    min_effect: float
    effect_unit: str
    overall: Stat  # pooled over all pairs (descriptive); its verdict is the per-task rule's, see combine_tasks
    per_task: dict[str, Stat]
    per_pair: tuple[dict[str, Any], ...]  # task, seed, effect, and the raw values of each arm
    excluded: tuple[str, ...]  # pairs left out, with the reason
    registered: str = ""  # when the measure and its threshold were fixed (commit, date, what had been seen)
    scope: tuple[str, ...] = ()  # the tasks it was evaluated on, when the profile restricts it (else all)
    controls: str = ""  # which bias of the measure it controls and which it leaves (claims/REGISTRATION_V3.md §5)


@dataclass(frozen=True)
class SettingResult:
    setting: str
    verdict: str
    per_task: dict[str, str]
    comparisons: tuple[ComparisonResult, ...]
    reason: str


@dataclass(frozen=True)
class ClaimResult:
    id: str
    section: str
    statement: str
    verdict: str
    settings: tuple[SettingResult, ...]
    per_task: dict[str, str]
    reason: str
    thresholds: dict[str, float]
    rationale: str = ""  # the claim module's docstring: how it is measured and why the thresholds


@dataclass(frozen=True)
class RunSummary:
    setting: str
    task: str
    init: str
    seed: int
    run_dir: str  # relative to the claims directory
    analysis: str | None
    status: str  # complete / diverged / failed
    learned: bool
    train_loss_theta1: float | None
    dev_accuracy: float
    total_steps: int
    wall_seconds: float
    overfit_run_dir: str | None
    error: str = ""  # what failed for this run (training, analysis, extended training); retried on the next run
    # the v3 convergence rule (claims.preconditions.convergence_reason): None where it could not be evaluated
    # (a run that failed, or a claims.json written before schema 2)
    converged: bool | None = None
    convergence: str = ""  # why it did not converge ('' when it did)


@dataclass(frozen=True)
class ClaimsReport:
    profile: dict[str, Any]
    provenance: provenance.Provenance
    data_source: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    settings: tuple[str, ...]
    verdict: str
    claims: tuple[ClaimResult, ...]
    runs: tuple[RunSummary, ...]
    durations: dict[str, float]
    learned_fraction_of_chance: float
    # what a reader must know about the data behind these verdicts (e.g. the local MNLI excerpt's training pairs
    # come from the mismatched dev set; repro.data), shown on the report's first screen
    data_notes: tuple[str, ...] = ()
    # the layout version this file was written with; a writer always writes the current one (the default), a file
    # without the key was written before versioning and loads as UNVERSIONED
    schema_version: int = SCHEMA_VERSION
    # the science revision (repro.pipeline.revision) of the code that evaluated these claims, so a report rendered
    # by later code can say that rerunning may give other numbers; "" in files written before schema 3
    science_revision: str = ""


def schema_notice(report: ClaimsReport) -> str:
    """One line for a reader when ``report`` was written before ``schema_version`` existed (else ``""``)."""
    if report.schema_version == UNVERSIONED:
        return (f"claims.json has no schema_version (written before versioning); read by the version "
                f"{SCHEMA_VERSION} loader, newer fields take their defaults")
    return ""


def load_claims(path: Path) -> ClaimsReport:
    """Read ``claims.json`` (or the one in directory ``path``).

    Why the version check: a reader's script must know which layout it holds. A file without ``schema_version``
    still loads (published runs predate it) and a one-line notice is logged; a file from a newer version than this
    code is refused, since its fields may mean something this code does not know.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CLAIMS_FILE
    raw = read_json(path)
    version = raw.get("schema_version", UNVERSIONED) if isinstance(raw, dict) else UNVERSIONED
    if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {version!r} is newer than this code's {SCHEMA_VERSION}; "
                         f"update repro to read it")
    report = from_json_dict(ClaimsReport, raw)
    if "schema_version" not in raw:
        report = replace(report, schema_version=UNVERSIONED)
        _log.warning("%s: %s", path, schema_notice(report))
    return report
