"""``write_index``: ``reports/index.html``, linking every published run ``reports/<name>/report.html``.

A published run is a directory under ``reports/`` with ``claims.json`` (and normally ``report.html``); only those
two small files are committed, never training artefacts. An optional ``NOTE.txt`` beside them (e.g. "superseded
by ...") is shown in the run's row: a run written by an earlier version of repro stays readable as a record. Run ``python -m repro.report.index [reports_dir]``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from repro.report.markup import Safe, badge, el, join, page, table
from repro.report.verdicts import overall_badge
from repro.storage import atomic_write_text

INDEX_FILE = "index.html"
NOTE_FILE = "NOTE.txt"


def _row(run: Path) -> list[object]:
    from repro.results import load_claims

    report = run / "report.html"
    link = el("a", run.name, href=f"{run.name}/report.html") if report.exists() else el("span", run.name)
    note = (run / NOTE_FILE).read_text(encoding="utf-8").strip() if (run / NOTE_FILE).exists() else ""
    try:
        rep = load_claims(run)
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [link, "—", "—", "—", "—", note or f"claims.json unreadable: {err}"]
    counts = Counter(c.verdict for c in rep.claims)
    summary = join([join(badge(v), f" × {n} ") for v, n in sorted(counts.items())])
    prof = rep.profile
    overall = overall_badge(counts.get("reproduced", 0), len(rep.claims), id_=None)  # neutral unless all are
    return [link, f"{prof.get('name', '?')} — {prof.get('description', '')}", rep.provenance.created,
            rep.provenance.device, join(overall, " ", summary),
            f"tasks {', '.join(rep.tasks)}; seeds {len(rep.seeds)}; settings {', '.join(rep.settings)}"
            + ("" if report.exists() else "; no report.html") + (f". {note}" if note else "")]


BANNER_ID = "run-note-banner"


def stamp_note(report: Path, note: str) -> bool:
    """Put the run's ``NOTE.txt`` as a banner at the top of its published ``report.html`` (once; escaped).

    Why: a superseded report that cannot be regenerated (its claims.json predates the loader) is still opened on
    its own, from a link or a search; the note must be on the page, not only in the index. Returns whether the
    file was changed. Newer reports render the note themselves (repro.report.header)."""
    text = report.read_text(encoding="utf-8")
    if BANNER_ID in text or 'class="banner superseded"' in text or "<main>" not in text:
        return False
    title = "" if note.lower().startswith(("superseded", "note")) else (
        "Superseded. " if "supersed" in note.lower() else "Note. ")
    banner = el("div", el("strong", title) if title else None, note,
                id=BANNER_ID, role="note",
                style="background:#fdecea;border:1px solid #b3261e;border-radius:6px;padding:.45rem .8rem;"
                      "margin:.3rem 0;font-size:.9rem")
    atomic_write_text(report, text.replace("<main>", "<main>" + banner, 1))
    report.chmod(0o644)
    return True


def render_index(reports_dir: Path) -> str:
    runs = sorted(p.parent for p in Path(reports_dir).glob("*/claims.json"))
    body: list[Safe] = [
        el("h1", "Reproduction reports"),
        el("p", "Published claims runs of this repository (pretrained vs from-scratch BERT, reproducing Hao et al., "
                "EMNLP 2019). Each link opens one self-contained report.", class_="muted"),
    ]
    if runs:
        body.append(table(["run", "profile", "created", "device", "verdicts", "scope"], [_row(r) for r in runs],
                          caption="Runs"))
    else:
        body.append(el("p", "No published runs yet: copy a run's claims.json and report.html to reports/<name>/ "
                            "and rerun python -m repro.report.index."))
    return page("Reproduction reports", join(body))


def write_index(reports_dir: Path) -> Path:
    """Scan ``reports_dir/*/claims.json`` and write ``reports_dir/index.html``; return its path."""
    out = Path(reports_dir) / INDEX_FILE
    for note in Path(reports_dir).glob(f"*/{NOTE_FILE}"):
        if (note.parent / "report.html").exists():
            stamp_note(note.parent / "report.html", note.read_text(encoding="utf-8").strip())
    atomic_write_text(out, render_index(Path(reports_dir)))
    out.chmod(0o644)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(write_index(Path(args[0] if args else "reports")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
