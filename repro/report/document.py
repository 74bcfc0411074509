"""``write_report``: one self-contained HTML page for a claims run directory (what ``repro claims`` writes)."""

from __future__ import annotations

from pathlib import Path

from repro.report.data import load_report_data
from repro.report.figures import FigureRenderer
from repro.report.markup import Safe, badge, el, join, page
from repro.report.sections import claim_anchor, claim_section, runs_table, setup_table, verdict_table
from repro.storage import atomic_write_text

REPORT_FILE = "report.html"
PAPER = ("Hao, Dong, Wei, Xu: Visualizing and Understanding the Effectiveness of BERT, EMNLP 2019 "
         "(arXiv:1908.05620)")


def render_report(run_dir: Path) -> str:
    """The report page as a string, from saved results in ``run_dir`` only."""
    data = load_report_data(Path(run_dir))
    rep = data.claims
    renderer = FigureRenderer(data)
    name = str(rep.profile.get("name", "run"))
    toc = el("nav", el("ol", [el("li", el("a", f"{c.section} {c.id}", href=f"#{claim_anchor(c.id)}"))
                              for c in rep.claims]), class_="toc")
    body: list[Safe] = [
        el("h1", f"Reproduction report — profile {name}"),
        el("p", "Pretrained (fine-tuned) vs from-scratch BERT; reproducing ", el("em", PAPER), ".", class_="muted"),
        el("p", "Overall: ", badge(rep.verdict), f" · {len(rep.claims)} claims · tasks {', '.join(rep.tasks)} · "
                f"seeds {len(rep.seeds)} · settings {', '.join(rep.settings)} · {rep.provenance.created}"),
        verdict_table(data),
        el("p", "A comparison is reproduced in a task when the 95% Student-t interval of its mean paired effect "
                "(one pair = pretrained vs scratch for one seed) lies above 0 and its mean reaches the minimum "
                "effect fixed before the runs; not reproduced when an effect of that size is excluded; otherwise "
                "inconclusive. Tasks are not pooled: a comparison holds only when it holds in every task. A claim "
                "is reproduced when all its primary comparisons are, under every training setting. Pairs whose "
                "arms did not learn (or, for claims about generalisation, did not beat the majority class) are "
                "excluded with the reason.", class_="muted"),
        toc,
        setup_table(data),
        runs_table(data),
    ]
    body.extend(claim_section(data, c, renderer, first=(i == 0)) for i, c in enumerate(rep.claims))
    return page(f"Reproduction report — {name}", join(body))


def write_report(run_dir: Path, output: Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``output`` (default ``run_dir/report.html``) atomically; return its path."""
    run_dir = Path(run_dir)
    out = Path(output) if output is not None else run_dir / REPORT_FILE
    atomic_write_text(out, render_report(run_dir))
    out.chmod(0o644)  # a page to publish: readable by a web server or another user, unlike the temp file's 0600
    return out
