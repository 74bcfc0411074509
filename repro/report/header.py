"""The first screen of a report: banners (superseded run, smoke run, data notes, old schema), what was run
(model, data, hardware, profile, revision), the verdict counts, the verdict grid (claims × settings × tasks, each
cell coloured with the number that decided it), one finding per claim, and the excluded pairs with their
commonest reason.

Why one screen: a reader should learn what was tested and what came out without scrolling; everything below it
(statistics, figures, provenance) is the evidence for these lines. Read from ``claims.json`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.report.data import ReportData
from repro.report.markup import Safe, badge, el, join, slug
from repro.report.summary import cells, exclusions, finding, readable, verdict_counts

PAPER_URL = "https://arxiv.org/abs/1908.05620"
NOTE_FILE = "NOTE.txt"
SMOKE_WORDS = "checks the pipeline, not the science"


def run_note(*dirs: Path) -> str:
    """The ``NOTE.txt`` published beside a run (e.g. why it was superseded), from the first directory holding one."""
    for d in dirs:
        p = Path(d) / NOTE_FILE
        if p.is_file():
            return p.read_text(encoding="utf-8").strip()
    return ""


def is_smoke(profile: Mapping[str, Any]) -> bool:
    return profile.get("name") == "smoke" or SMOKE_WORDS in str(profile.get("description", ""))


def banners(data: ReportData, note: str, schema_line: str) -> list[Safe]:
    out = []
    if note:
        title = "" if note.lower().startswith(("superseded", "note")) else (
            "Superseded. " if "supersed" in note.lower() else "Note. ")
        out.append(el("div", el("strong", title) if title else None, note, class_="banner superseded",
                      role="note"))
    if is_smoke(data.claims.profile):
        out.append(el("div", el("strong", "Pipeline check. "), "This smoke run checks the pipeline, not the "
                      "science: too few steps for the arms to learn, so its verdicts say nothing about the paper.",
                      class_="banner smoke", role="note"))
    # what a reader must know about the data behind these verdicts (repro.data.data_notes, e.g. the local MNLI
    # excerpt's training pairs come from the mismatched dev set), recorded in claims.json by the run
    for text in getattr(data.claims, "data_notes", ()):
        out.append(el("div", el("strong", "Data. "), text, class_="banner data", role="note"))
    if schema_line:
        out.append(el("div", schema_line, class_="banner schema", role="note"))
    return out


def _data_line(data: ReportData) -> str:
    rep, prof = data.claims, data.claims.profile
    sizes: dict[str, tuple[int, int]] = {}
    for r in data.runs:
        if r.metrics is not None:
            sizes.setdefault(r.summary.task, (r.metrics.num_train, r.metrics.num_dev))
    per_task = ", ".join(f"{t} {n}/{d}" for t, (n, d) in sizes.items())
    excerpt = prof.get("train_size") or prof.get("dev_size")
    # the profile caps each split: a split larger than the cap is a subset (an excerpt of the GLUE task)
    warn = (f" — capped at train ≤ {prof.get('train_size', 'all')}, dev ≤ {prof.get('dev_size', 'all')} per task: "
            f"subsets of the GLUE splits that are larger" if excerpt else "")
    return (f"{', '.join(rep.tasks)}; train/dev examples {per_task or 'unknown'}{warn}; "
            f"max length {prof.get('max_length', '—')}; source {rep.data_source}")


def facts(data: ReportData) -> Safe:
    rep, prov, prof = data.claims, data.claims.provenance, data.claims.profile
    items = [
        ("model", el("code", prof.get("model", "?"))),
        ("data", _data_line(data)),
        ("hardware", f"{prov.device}; torch threads {prov.torch_threads}"),
        ("profile", (f"{prof.get('name', '?')}: seeds {', '.join(map(str, rep.seeds))}; settings "
                    f"{', '.join(rep.settings)}")),
        ("revision", join(el("code", prov.git_revision[:12], title=prov.git_revision),
                          " (uncommitted changes)" if prov.git_dirty else "", f"; {prov.created}")),
    ]
    return el("dl", [join(el("dt", k), el("dd", v)) for k, v in items], class_="facts")


def verdict_grid(data: ReportData) -> Safe:
    """Claims × (setting, task): each cell the stored verdict and the number that decided it."""
    rep = data.claims
    all_cells = {(c.claim, c.setting, c.task): c for c in cells(rep)}
    cols = [(s, t) for s in rep.settings for t in rep.tasks]
    head = el("thead", el("tr", el("th", "claim", scope="col"),
                          [el("th", t, " ", el("span", f"· {s}", class_="muted"), scope="col") for s, t in cols],
                          el("th", "overall", scope="col")))
    rows = []
    for c in rep.claims:
        tds = []
        for s, t in cols:
            cell = all_cells.get((c.id, s, t))
            if cell is None or not cell.verdict:
                tds.append(el("td", "—", class_="cell"))
                continue
            what = readable(cell.comparison.name) if cell.comparison is not None else ""
            tds.append(el("td", badge(cell.verdict), el("div", what, class_="what") if what else None,
                          el("div", cell.number(), class_="num"), class_=f"cell v-{cell.verdict}",
                          title=f"{c.id} / {s} / {t}"))
        rows.append(el("tr", el("th", el("a", f"{c.section} {readable(c.id)}", href=f"#claim-{slug(c.id)}"),
                                scope="row"), tds, el("td", badge(c.verdict), class_=f"cell v-{c.verdict}")))
    caption = ("Verdicts by claim, task and setting. Each cell: the primary comparison that decided it, its mean "
               "paired effect [95% interval] and its minimum effect (the project's registered choice; when each "
               "was registered is under its claim)")
    return el("div", el("table", el("caption", caption), head, el("tbody", rows), class_="grid", id="verdict-grid"),
              class_="scroll grid-box")


def findings(data: ReportData) -> Safe:
    rep = data.claims
    all_cells = cells(rep)
    return el("ul", [el("li", el("a", readable(c.id), href=f"#claim-{slug(c.id)}"), " — ", finding(rep, c, all_cells))
                     for c in rep.claims], class_="findings", id="findings")


def counts_line(data: ReportData) -> Safe:
    rep = data.claims
    learned = sum(1 for r in rep.runs if r.learned)
    ex = exclusions(rep)
    reason = f"; commonest reason: {ex.reason} ({ex.reason_count})" if ex.reason else ""
    return el("p", f"Runs that learned: {learned} of {len(rep.runs)}. Pairs of primary comparisons: "
                   f"{ex.pairs - ex.excluded} used, {ex.excluded} excluded{reason}.", class_="counts")


def links(claims_href: str, index_href: str | None) -> Safe:
    parts: list[Any] = [el("a", "claims.json", href=claims_href), " · "]
    if index_href:
        parts += [el("a", "all reports", href=index_href), " · "]
    parts += [el("a", "paper (arXiv:1908.05620)", href=PAPER_URL), " · ", el("a", "setup", href="#setup"), " · ",
              el("a", "claims", href="#claims")]
    return el("p", parts, class_="links")


def first_screen(data: ReportData, *, note: str, schema_line: str, claims_href: str, index_href: str | None
                 ) -> Safe:
    rep = data.claims
    name = str(rep.profile.get("name", "run"))
    return el("header", [
        *banners(data, note, schema_line),
        el("h1", f"Pretrained vs from-scratch BERT — profile {name}"),
        el("p", badge(rep.verdict), " ", el("strong", verdict_counts(rep)), class_="overall", id="overall"),
        facts(data),
        verdict_grid(data),
        findings(data),
        counts_line(data),
        links(claims_href, index_href),
    ], class_="first-screen")
