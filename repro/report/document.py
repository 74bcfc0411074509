"""``write_report``: one self-contained HTML page for a claims run directory (what ``repro claims`` writes).

The page opens with one screen that says what was run and what came out (:mod:`repro.report.header`); the
evidence follows: one section per claim (its effect-size figure first, then statistics and figures), then the setup,
provenance and training runs. A footer names the run's revision and date.
"""

from __future__ import annotations

import os
from pathlib import Path

from repro.report.data import ReportData, load_report_data
from repro.report.figures import FigureRenderer
from repro.report.header import first_screen, run_note
from repro.report.markup import Safe, el, join, page
from repro.report.health import health_table
from repro.report.scope import limitations, revision_line
from repro.report.sections import claim_section, runs_table, setup_table
from repro.results import CLAIMS_FILE
from repro.storage import atomic_write_text

REPORT_FILE = "report.html"
PAPER = ("Hao, Dong, Wei, Xu: Visualizing and Understanding the Effectiveness of BERT, EMNLP 2019 "
         "(arXiv:1908.05620)")
INDEX_FILE = "index.html"

METHOD = ("A comparison is reproduced in a task when the 95% Student-t interval of its mean paired effect (one pair "
          "= pretrained vs scratch for one seed) lies above 0 and its mean reaches its minimum effect (the "
          "project's registered choice; the paper gives no thresholds); not reproduced when an effect of that size "
          "is excluded; otherwise inconclusive. Tasks are not pooled: a comparison holds only when it holds in "
          "every task. A claim is reproduced when all its primary comparisons are, under every training setting. "
          "Pairs whose arms did not learn (or, for claims about generalisation, did not beat the majority class) "
          "are excluded with the reason. In the cells, \"not reproduced\" reads \"against the paper\" when the "
          "interval lies below 0 and \"smaller than the registered minimum\" when it lies below the minimum but not "
          "below 0; \"excluded\" when no pair was valid (the reason follows).")


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def render_report(run_dir: Path, claims_path: Path | None = None, output: Path | None = None,
                  science_revision: str | None = None, data: ReportData | None = None) -> str:
    """The report page as a string, from saved results in ``run_dir`` only (verdicts from ``claims_path`` when
    given). ``output`` (where the page will be written) places the links to claims.json and the index.
    ``science_revision`` is the running code's (repro.pipeline.revision): given, a claims.json that records
    another one says so under the title. ``data``: those results already loaded by the caller
    (:func:`load_report_data` of the same ``run_dir`` and ``claims_path``), not read again."""
    run_dir = Path(run_dir)
    data = data if data is not None else load_report_data(run_dir, claims_path)
    rep = data.claims
    out_dir = (Path(output).parent if output is not None else run_dir).resolve()
    claims_file = (Path(claims_path) if claims_path is not None else run_dir / CLAIMS_FILE).resolve()
    if claims_file.is_dir():
        claims_file = claims_file / CLAIMS_FILE
    index = out_dir.parent / INDEX_FILE
    renderer = FigureRenderer(data)
    name = str(rep.profile.get("name", "run"))
    body: list[Safe] = [
        first_screen(data, note=run_note(out_dir, claims_file.parent), schema_line=revision_line(data, science_revision),
                     claims_href=_rel(claims_file, out_dir), index_href=_rel(index, out_dir) if index.exists() else None),
        el("p", "Reproducing ", el("em", PAPER), ". ", METHOD, class_="muted method"),
        health_table(data),
        el("h2", "Claims", id="claims"),
    ]
    body.extend(claim_section(data, c, renderer) for c in rep.claims)
    body += [limitations(data), el("h2", "Setup and provenance", id="setup"), setup_table(data), runs_table(data)]
    prov = rep.provenance
    body.append(el("footer", f"Run {name} at revision {prov.git_revision}"
                             f"{' (uncommitted changes)' if prov.git_dirty else ''}, {prov.created}; claims.json "
                             f"schema version {rep.schema_version}. ", el("a", "claims.json",
                                                                           href=_rel(claims_file, out_dir)),
                   class_="muted"))
    return page(f"Reproduction report — {name}", join(body))


def write_report(run_dir: Path, output: Path | None = None, claims_path: Path | None = None,
                 science_revision: str | None = None, data: ReportData | None = None) -> Path:
    """Write the report of ``run_dir`` to ``output`` (default ``run_dir/report.html``) atomically; return its path.
    ``data`` as for :func:`render_report`."""
    run_dir = Path(run_dir)
    out = Path(output) if output is not None else run_dir / REPORT_FILE
    atomic_write_text(out, render_report(run_dir, claims_path, out, science_revision, data))
    out.chmod(0o644)  # a page to publish: readable by a web server or another user, unlike the temp file's 0600
    return out
