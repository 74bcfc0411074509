"""Load everything a report shows from a claims run directory: ``claims.json``, the per-run analyses and the
training metrics. Nothing is recomputed; a file that is missing or unreadable becomes a note in the report (so a
partly-copied run still renders) instead of an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.plots import TrainingRecord
from repro.storage import from_json_dict, read_json

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class RunRecord:
    """One training run of the plan with whatever of its results could be loaded."""

    summary: Any  # repro.results.RunSummary
    analysis: Any | None  # claims.analysis.RunAnalysis
    metrics: Any | None  # repro.training.run.TrainMetrics
    extended: Any | None  # TrainMetrics of the extended (§5.3) run
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportData:
    root: Path
    claims: Any  # repro.results.ClaimsReport
    runs: tuple[RunRecord, ...]
    notes: tuple[str, ...] = field(default=())

    def analyses(self, setting: str) -> list[Any]:
        return [r.analysis for r in self.runs if r.summary.setting == setting and r.analysis is not None]

    def training(self, setting: str) -> list[TrainingRecord]:
        return [TrainingRecord(r.summary.task, r.summary.init, r.summary.seed, r.metrics, r.extended)
                for r in self.runs if r.summary.setting == setting]

    def tasks(self) -> list[str]:
        return list(self.claims.tasks)

    def missing_evidence(self) -> str:
        """One line when results claims.json names are not under the run directory (its figures cannot be drawn),
        with where they may be; ``""`` when every analysis and training record loaded. A report from the wrong
        directory renders its verdicts and tables with most figures missing: it must say so, not look complete."""
        wanted = [(r.summary.analysis, r.analysis) for r in self.runs if r.summary.analysis]
        trained = [(r.summary.run_dir, r.metrics) for r in self.runs if r.summary.run_dir]
        lost_a = sum(1 for _, a in wanted if a is None)
        lost_m = sum(1 for _, m in trained if m is None)
        if not lost_a and not lost_m:
            return ""
        parts = [f"{lost_a} of {len(wanted)} analyses" if lost_a else "",
                 f"{lost_m} of {len(trained)} training records" if lost_m else ""]
        what = (" (the landscape, curvature and layer figures)" if lost_a else "") + (
            " (the training curves)" if lost_m and not lost_a else "")
        hint = next((f"; they may be under {d} (pass it as RUN_DIR, with --claims for this claims.json)"
                     for d in sorted(p.parent for p in self.root.glob("*/analysis") if p.is_dir()) if lost_a), "")
        return (f"{' and '.join(filter(None, parts))} that claims.json names are not under {self.root}, so the "
                f"figures drawn from them{what} are missing{hint}")


def _inside(root: Path, rel: str) -> Path:
    """``root / rel``, refusing paths that leave the run directory (the report only reads its own run)."""
    path = (root / rel).resolve()
    if root.resolve() not in (path, *path.parents):
        raise ValueError(f"path {rel!r} leaves the run directory")
    return path


def _load_metrics(root: Path, rel: str | None, what: str, notes: list[str]) -> Any | None:
    if not rel:
        return None
    from repro.training.run import TrainMetrics

    try:
        return from_json_dict(TrainMetrics, read_json(_inside(root, rel) / METRICS_FILE))
    except (OSError, ValueError, KeyError, TypeError) as err:
        notes.append(f"{what} metrics unavailable ({rel}): {err}")
        return None


def load_report_data(run_dir: Path, claims_path: Path | None = None) -> ReportData:
    """Read ``claims.json`` (required) and every run's analysis and metrics (each optional).

    ``claims_path`` reads the verdicts from another file than ``run_dir/claims.json``, with the evidence still
    under ``run_dir``: a published run keeps its own claims.json as the record while its analyses live in a
    trimmed copy of the run (tests/fixtures/golden/cpu for reports/cpu-2026-11-27).
    """
    from claims.analysis import load_analysis
    from repro.results import load_claims

    root = Path(run_dir)
    report = load_claims(Path(claims_path) if claims_path is not None else root)
    runs: list[RunRecord] = []
    for s in report.runs:
        notes: list[str] = []
        analysis = None
        if s.analysis:
            try:
                analysis = load_analysis(_inside(root, s.analysis))
            except (OSError, ValueError, KeyError, TypeError) as err:
                notes.append(f"analysis unavailable ({s.analysis}): {err}")
        metrics = _load_metrics(root, s.run_dir, "training", notes)
        extended = _load_metrics(root, s.overfit_run_dir, "extended-training", notes)
        runs.append(RunRecord(s, analysis, metrics, extended, tuple(notes)))
    return ReportData(root, report, tuple(runs))
