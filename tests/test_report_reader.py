"""What a reader of the report cannot misread (issue 39): verdict words derived from the saved intervals, a neutral
overall badge, the scope box and the limits of what a run can decide, the health and results tables, the
comparisons registered after results were seen, the print stylesheet, the revision line and the text fixes.

Assertions are on the rendered page (the committed golden cpu run and the smoke run), never on how it is built.
"""

from __future__ import annotations

import html
import io
import itertools
import json
import re
import statistics
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.report_fixture import SMOKE

CPU = Path(__file__).resolve().parent / "fixtures" / "golden" / "cpu"


def _render(run: Path) -> str:
    """The report of ``run`` with each figure encoded as a distinct 1×1 PNG (these tests read text, not images)."""
    from PIL import Image

    from repro.report import figures, render_report

    counter = itertools.count()

    def encode(fig: object, dpi: int = 96) -> tuple[bytes, str]:
        i = next(counter)
        buf = io.BytesIO()
        Image.new("RGB", (1, 1), (i % 256, i // 256 % 256, 0)).save(buf, format="PNG")
        return buf.getvalue(), "image/png"

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures, "encode", encode)
        return render_report(run)


@pytest.fixture(scope="module")
def cpu_page() -> str:
    return _render(CPU)


@pytest.fixture(scope="module")
def smoke_page() -> str:
    return _render(SMOKE)


def text_of(markup: str, sep: str = "") -> str:
    """Visible text of a fragment (tags replaced by ``sep``, entities decoded, styles left out)."""
    markup = re.sub(r"<style>.*?</style>", "", markup, flags=re.DOTALL)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", sep, markup))).strip()


def header(page: str) -> str:
    start = page.index('<header class="first-screen">')
    return page[start:page.index("</header>", start)]


def cell(page: str, claim: str, setting: str, task: str) -> str:
    m = re.search(rf'<td class="cell [^"]*" title="{claim} / {setting} / {task}">(.*?)</td>', page, re.DOTALL)
    assert m, (claim, setting, task)
    return text_of(m.group(1), " ")


def section(page: str, id_: str) -> str:
    start = page.index(f'id="{id_}"')
    return page[start:page.index("</section>", start)]


# -- 1. verdict words --------------------------------------------------------------------------------------------
def test_not_reproduced_cells_say_against_the_paper_or_below_the_minimum(cpu_page: str) -> None:
    # −0.44 [−0.77, −0.11]: the interval excludes the paper's direction
    assert cell(cpu_page, "easier_optimization", "base", "mrpc").startswith("against the paper")
    # −0.024 [−0.19, +0.15] and §7 +0.15 [+0.10, +0.20], both below +0.22: not against the paper, too small
    assert cell(cpu_page, "easier_optimization", "base", "sst2").startswith("smaller than the registered minimum")
    c = cell(cpu_page, "lower_layer_invariance", "base", "sst2")
    assert c.startswith("smaller than the registered minimum") and "+0.15 [+0.1, +0.2]" in c
    # no valid pair: excluded, with the reason
    assert cell(cpu_page, "generalization_consistency", "base", "mrpc").startswith("excluded neither arm generalised")
    assert 'title="neither arm generalised (majority rate 0.684)"' in cpu_page  # the reason in full
    assert cell(cpu_page, "lower_layer_invariance", "long", "sst2").startswith("inconclusive")
    # the same words in each setting's heading under the claim
    headings = [text_of(h, " ") for h in re.findall(r"<h3>(.*?)</h3>", cpu_page, re.DOTALL)]
    assert "Setting base not reproduced sst2: smaller than the registered minimum, mrpc: against the paper" \
        in headings


def test_reader_verdict_reads_the_saved_interval() -> None:
    from repro.report.verdicts import reader_verdict
    from repro.results.records import Stat

    def stat(lo: float, hi: float, verdict: str, upper: tuple[int, float, float, float] | None = None) -> Stat:
        return Stat(3, (lo + hi) / 2, 0.1, lo, hi, 3, verdict,
                    upper=upper or (3, (lo + hi) / 2, lo, hi))

    assert reader_verdict("not_reproduced", stat(0.10, 0.20, "not_reproduced")).words == \
        "smaller than the registered minimum"
    assert reader_verdict("not_reproduced", stat(-0.3, -0.1, "not_reproduced")).words == "against the paper"
    # censored effects: "not reproduced" was judged on the pairs' upper ends, so the words read those
    assert reader_verdict("not_reproduced", stat(-0.5, -0.2, "not_reproduced", (3, 0.0, -0.1, 0.1))).words == \
        "smaller than the registered minimum"
    assert reader_verdict("reproduced", stat(0.3, 0.5, "reproduced")).words == "reproduced"
    assert reader_verdict("inconclusive", stat(-0.1, 0.5, "inconclusive")).words == "inconclusive"


def test_no_verdict_ids_and_a_neutral_overall_badge(cpu_page: str, smoke_page: str) -> None:
    for page in (cpu_page, smoke_page):
        visible = text_of(page)
        assert "not_reproduced" not in visible and "not_all_reproduced" not in visible
        assert "not all reproduced" not in visible
        badge = re.search(r'<span class="badge ([^"]*)" id="overall-badge">([^<]*)</span>', page)
        assert badge and badge.group(1) == "neutral" and badge.group(2) == "0 of 5 reproduced"
    assert "0 of 5 reproduced, 2 not reproduced, 3 inconclusive" in text_of(header(cpu_page))


# -- 2. scope, limitations, deviations -------------------------------------------------------------------------
def test_bert_parameter_arithmetic() -> None:
    from repro.report.scope import bert_parameters

    assert abs(bert_parameters(24, 1024, 4096) - 335e6) / 335e6 < 0.01  # BERT-large
    assert abs(bert_parameters(12, 768, 3072) - 110e6) / 110e6 < 0.01  # BERT-base


def test_scope_box_is_on_the_first_screen(smoke_page: str, cpu_page: str) -> None:
    head = header(smoke_page)
    assert head.index('id="scope"') < head.index('id="verdict-grid"')
    scope = text_of(section(head, "scope"))
    for fact in ("tiny-minilm", "2 layers", "24 layers", "335M parameters", "train/dev examples sst2 128/64",
                 "updates per run", "1 seed (0)", "settings base", "cpu:x86_64", "fewer than 3 seeds decide nothing",
                 "did not learn", "smoke"):
        assert fact in scope, fact
    scope = text_of(section(header(cpu_page), "scope"))
    assert "minilm-l3-mean (3 layers × 384" in scope and "3 seeds (0, 1, 2)" in scope
    assert "nothing ruled out by scale" in scope and "long (epoch factor 1.6, lr factor 0.6" in scope


def test_limitations_and_deviations_table(cpu_page: str) -> None:
    assert '<h2 id="limitations">Limitations</h2>' in cpu_page
    body = cpu_page[cpu_page.index('<table class="deviations">'):]
    body = body[:body.index("</table>")]
    aspects = re.findall(r"<tr><td>([^<]*)</td>", body)
    assert aspects == ["model", "data size", "tasks", "epochs / updates", "learning rates", "seeds", "hardware",
                       "instruments"]
    assert "BERT-large: 24 layers, 335M parameters" in text_of(body)


# -- 3. health and results -------------------------------------------------------------------------------------
def test_health_and_results_tables(cpu_page: str) -> None:
    raw = json.loads((CPU / "claims.json").read_text(encoding="utf-8"))
    health = cpu_page[cpu_page.index('<table class="health">'):]
    health = health[:health.index("</table>")]
    rows = health.count("<tr>") - 1
    assert rows == len(raw["settings"]) * len(raw["tasks"]) * 2
    assert "above 0.684" in text_of(health) and "converged" in health
    results = cpu_page[cpu_page.index('<table class="results">'):]
    results = text_of(results[:results.index("</table>")])
    acc = [r["dev_accuracy"] for r in raw["runs"]
           if (r["setting"], r["task"], r["init"]) == ("base", "sst2", "pretrained")]
    expected = f"{statistics.mean(acc):.3f} ± {statistics.stdev(acc):.3f} (n = {len(acc)})"
    assert expected in results


# -- 4. disclosure -----------------------------------------------------------------------------------------------
def test_late_registrations_are_disclosed_openly(cpu_page: str) -> None:
    raw = json.loads((CPU / "claims.json").read_text(encoding="utf-8"))
    late = {c["name"] for cl in raw["claims"] for s in cl["settings"] for c in s["comparisons"]
            if "results were seen" in c.get("registered", "") or "results had been seen" in c.get("registered", "")}
    assert late
    head = header(cpu_page)
    block = section(head, "disclosure")
    assert "<details" not in block  # open, not folded away
    title = re.search(r"<h2[^>]*>(.*?)</h2>", block).group(1)
    assert "after" in title and "before" not in title
    rows = block[block.index("<tbody>"):]
    assert rows.count("<tr>") == len(late)
    matched = text_of(re.search(r"<tr><td>λ_max at matched loss</td>.*?</tr>", rows).group(0))
    assert "2026-11-27" in matched and "3b532e2" in matched


# -- 5. print -----------------------------------------------------------------------------------------------------
def test_print_stylesheet_opens_every_details(cpu_page: str) -> None:
    css = re.search(r"<style>(.*?)</style>", cpu_page, re.DOTALL).group(1)
    printed = css[css.index("@media print"):]
    assert re.search(r"details > \*:not\(summary\) \{ display: block", printed)
    assert "details::details-content { content-visibility: visible" in printed
    assert cpu_page.count('<table class="stats"') > 0  # the tables printing must show


# -- 6. revision line --------------------------------------------------------------------------------------------
def test_revision_line_names_another_science_revision() -> None:
    from repro.report.data import ReportData
    from repro.report.scope import revision_line

    code = "fedcba9876543210"

    def line(**claims: object) -> str:
        return revision_line(ReportData(Path("."), SimpleNamespace(**claims), ()), code)

    assert line(schema_version=2) == ""
    assert line(schema_version=2, science_revision=code) == ""
    other = line(schema_version=2, science_revision="0123456789abcdef")
    assert "0123456789abcdef" in other and code in other
    assert "no schema_version" in line(schema_version=0)


# -- 7. text -------------------------------------------------------------------------------------------------------
def _rationales(page: str) -> Iterator[str]:
    yield from re.findall(r'<div class="rationale">(.*?)</div>', page, re.DOTALL)


def test_rationale_markup_is_rendered(cpu_page: str) -> None:
    blocks = list(_rationales(cpu_page))
    assert blocks
    joined = "".join(blocks)
    assert "<em>after</em>" in joined and "<li><code>scaled_lambda_max_learned_level</code> – " in joined
    visible = text_of(joined)
    assert " -- " not in visible and "*after*" not in visible and " * " not in visible
    assert not re.search(r"(?<![\w*])\*\w[^*]*\*", visible)


def test_why_items_are_not_split_inside_parentheses(cpu_page: str) -> None:
    lists = [cpu_page[i:cpu_page.index("</details>", i)] for i in
             (m.start() for m in re.finditer('<ul class="why">', cpu_page))]
    items = [text_of(x) for seg in lists for x in re.findall(r"<li>((?:(?!<li|<ul|</li>).)*)</li>", seg, re.DOTALL)]
    assert items
    for item in items:
        assert item.count("(") == item.count(")"), item


def test_exclusions_and_grid_read_as_plain_numbers(cpu_page: str) -> None:
    excluded = "".join(re.findall(r'<ul class="excluded">(.*?)</ul>', cpu_page, re.DOTALL))
    assert "scale-aware basin area" in excluded
    assert not re.search(r"\de[−+-]\d", text_of(excluded)) and "0.0000746" in excluded
    grid = cpu_page[cpu_page.index('id="verdict-grid"'):]
    grid = grid[:grid.index("</table>")]
    assert "a positive value agrees with the paper" in grid
    assert cell(cpu_page, "easier_optimization", "base", "mrpc").endswith("need ≥ +0.22 · log ratio")
    assert '<span class="unit" title="log ratio scratch/pretrained">' in grid  # the full unit on hover


def test_pooled_rows_name_the_tasks_that_contribute(cpu_page: str) -> None:
    """A pooled row pools only tasks with a valid pair and names them; a comparison valid on one task has none
    (issue 39: a 'pooled over 2 tasks' row held one task's pairs)."""
    from repro.results import load_claims

    text = text_of(cpu_page, " ")
    assert "pooled over 2 tasks" not in text
    rep = load_claims(CPU)
    comps = [c for cl in rep.claims for s in cl.settings for c in s.comparisons if c.per_pair]
    both = [c for c in comps if sum(st.n > 0 for st in c.per_task.values()) == 2]
    one = [c for c in comps if sum(st.n > 0 for st in c.per_task.values()) == 1 and len(c.per_task) == 2]
    names = ", ".join(next(iter(both)).per_task)  # in the order claims.json lists the tasks
    assert one  # the golden run has such comparisons; they get no pooled row (checked by the count below)
    assert text.count(f"pooled over {names} (") == text.count("pooled over ") == len(both)
