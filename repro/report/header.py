"""The first screen of a report: banners (superseded run, smoke run, data notes), the title, the revision line
(old schema, other science revision), the verdict counts, the scope box (what was run and what it can decide,
:mod:`repro.report.scope`), the verdict grid (claims × settings × tasks, each cell with the reader's verdict words
and the number that decided it), one finding per claim, the excluded pairs with their commonest reason, and the
comparisons registered after results were seen.

Why one screen: a reader should learn what was tested and what came out without scrolling; everything below it
(statistics, figures, provenance) is the evidence for these lines. Read from ``claims.json`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.report.data import ReportData
from repro.report.markup import Safe, badge, el, slug
from repro.report.scope import disclosure, scope_box
from repro.report.summary import cells, exclusions, finding, other_counts, readable
from repro.report.verdicts import overall_badge, reader_badge, reader_verdict

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


def banners(data: ReportData, note: str) -> list[Safe]:
    """The notices above the title: a superseded run, a smoke run, data notes (the revision line goes below it)."""
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
    missing = data.missing_evidence()
    if missing:  # never a silent partial report (issue 40)
        out.append(el("div", el("strong", "Incomplete. "), missing[0].upper() + missing[1:] + ".",
                      class_="banner missing", role="note"))
    return out


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
            comp = cell.comparison
            what = readable(comp.name) if comp is not None else ""
            unit = str(getattr(comp, "effect_unit", "") or "") if comp is not None else ""
            rv = reader_verdict(cell.verdict, cell.stat, comp, t)
            # the reason in short beside the badge (in full on hover and in the findings); the unit's kind after
            # the number (in full on hover and in the statistics)
            reason = el("span", f" {rv.reason.split(' (', 1)[0]}", class_="reason", title=rv.reason) \
                if rv.reason else None
            tds.append(el("td", reader_badge(rv), reason, el("div", what, class_="what") if what else None,
                          el("div", cell.number(), el("span", f" · {short_unit(unit)}", class_="unit", title=unit)
                             if unit else None, class_="num"),
                          class_=f"cell v-{cell.verdict} rv-{rv.key}", title=f"{c.id} / {s} / {t}"))
        rows.append(el("tr", el("th", el("a", f"{c.section} {readable(c.id)}", href=f"#claim-{slug(c.id)}"),
                                scope="row"), tds, el("td", badge(c.verdict), class_=f"cell v-{c.verdict}")))
    caption = ("Verdicts by claim, task and setting. Each cell: the primary comparison that decided it, its mean "
               "paired effect [95% interval] and its unit, and its minimum effect (the project's registered "
               "choice). Effects are signed so that a positive value agrees with the paper; \"against the paper\": "
               "the interval lies below 0; \"smaller than the registered minimum\": it lies below the minimum, not "
               "below 0")
    return el("div", el("table", el("caption", caption), head, el("tbody", rows), class_="grid", id="verdict-grid"),
              class_="scroll grid-box")


def short_unit(unit: str) -> str:
    """"log ratio scratch/pretrained" → "log ratio"; "difference scratch − pretrained (nats)" → "difference (nats)"
    (which arm is subtracted is in the full unit, and the sign convention in the grid's caption)."""
    for kind in ("log ratio", "difference"):
        if unit.startswith(kind):
            paren = unit[unit.index("("):] if "(" in unit else ""
            return f"{kind} {paren}".strip()
    return unit


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


def overall_line(data: ReportData) -> Safe:
    """"k of n reproduced" as a badge (neutral unless every claim is), then the other counts in words."""
    rep = data.claims
    k = sum(1 for c in rep.claims if c.verdict == "reproduced")
    rest = other_counts(rep)
    return el("p", overall_badge(k, len(rep.claims)), el("strong", ", " + ", ".join(rest)) if rest else None,
              class_="overall", id="overall")


def first_screen(data: ReportData, *, note: str, schema_line: str, claims_href: str, index_href: str | None
                 ) -> Safe:
    rep = data.claims
    name = str(rep.profile.get("name", "run"))
    return el("header", [
        *banners(data, note),
        el("h1", f"Pretrained vs from-scratch BERT — profile {name}"),
        el("p", schema_line, class_="banner schema", role="note") if schema_line else None,
        overall_line(data),
        scope_box(data),
        verdict_grid(data),
        findings(data),
        counts_line(data),
        disclosure(data),
        links(claims_href, index_href),
    ], class_="first-screen")
