"""The HTML report and index: valid markup, self-contained (no external resources, no scripts), every claim and
every expected figure present with a decodable embedded PNG, hostile strings escaped, saved results only."""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from repro.report import write_index, write_report
from repro.report.figures import CLAIM_FIGURES
from repro.report.header import PAPER_URL
from repro.report.sections import claim_anchor, figure_id
from tests.report_fixture import SMOKE, XSS, XSS_MODEL, copy_smoke, make_hostile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_PREFIX = "data:image/svg+xml;base64,"
RESOURCE_ATTRS = {"src", "href", "srcset", "poster", "data", "action", "formaction", "background"}


class Collector(HTMLParser):
    """Every start tag with its attributes, and the text, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.mismatched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in {"meta", "img", "br", "link", "input", "hr"}:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.mismatched.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if a.get("id")}


def parse(html_text: str) -> Collector:
    p = Collector()
    p.feed(html_text)
    p.close()
    return p


def image_size(uri: str) -> tuple[int, int]:
    """Pixel size of an embedded PNG, or the width/height (pt) an embedded SVG declares."""
    if uri.startswith(SVG_PREFIX):
        svg = base64.b64decode(uri[len(SVG_PREFIX):], validate=True).decode("utf-8")
        assert "<script" not in svg.lower() and "<svg" in svg
        m = re.search(r'<svg[^>]*\swidth="([0-9.]+)pt"[^>]*\sheight="([0-9.]+)pt"', svg)
        assert m, svg[:300]
        return int(float(m.group(1))), int(float(m.group(2)))
    return png_size(uri)


def png_size(uri: str) -> tuple[int, int]:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    raw = base64.b64decode(uri[len(prefix):], validate=True)
    assert raw[:8] == PNG_SIGNATURE and raw[12:16] == b"IHDR"
    return struct.unpack(">II", raw[16:24])


def assert_self_contained(doc: Collector) -> None:
    for tag, attrs in doc.tags:
        assert tag not in {"script", "iframe", "object", "embed", "link", "base"}, tag
        for name, value in attrs.items():
            if name.startswith("on"):
                pytest.fail(f"event handler attribute {name} on <{tag}>")
            if name in RESOURCE_ATTRS and value:
                # a link is navigation, not a resource: only the paper may be linked off-site
                ok = value.startswith(("data:", "#")) or (tag == "a" and (value == PAPER_URL or
                                                                          not value.startswith(("http", "//"))))
                assert ok, f"<{tag} {name}={value[:60]!r}>"
    style = "".join(doc.text)
    assert "@import" not in style and "url(" not in style


@pytest.fixture
def placeholder_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of the page's text, not its images. Each figure is still drawn from the saved results, but encoded
    as a distinct 1×1 PNG instead of the smaller of a palette PNG and an SVG (about 90 % of a render's time). The
    images are tested on real renders: the ``hostile`` report, test_smoke_report_renders_under_a_megabyte,
    test_committed_smoke_report_is_what_the_code_renders and tests/test_report_figures.py."""
    from PIL import Image

    from repro.report import figures

    counter = itertools.count()

    def encode(fig: object, dpi: int = 96) -> tuple[bytes, str]:
        i = next(counter)  # distinct bytes: the report's embed-once deduplication sees distinct images
        buf = io.BytesIO()
        Image.new("RGB", (1, 1), (i % 256, i // 256 % 256, 0)).save(buf, format="PNG")
        return buf.getvalue(), "image/png"

    monkeypatch.setattr(figures, "encode", encode)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = make_hostile(tmp_path_factory.mktemp("report") / "run")
    out = write_report(root)
    return out, out.read_text(encoding="utf-8")


def test_default_output_path(hostile) -> None:
    out, _ = hostile
    assert out.name == "report.html" and out.parent.name == "run"
    assert out.stat().st_mode & 0o044 == 0o044  # readable when published


def test_html_parses_and_is_balanced(hostile) -> None:
    _, text = hostile
    assert text.startswith("<!DOCTYPE html>")
    doc = parse(text)
    assert doc.mismatched == [] and doc.stack == []
    assert any(t == "meta" and a.get("name") == "viewport" for t, a in doc.tags)


def test_no_external_resources_or_scripts(hostile) -> None:
    _, text = hostile
    assert_self_contained(parse(text))
    rest = text.replace(f'href="{PAPER_URL}"', "")
    assert "http://" not in rest and "https://" not in rest


def test_hostile_strings_are_escaped(hostile) -> None:
    _, text = hostile
    assert XSS not in text and "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    doc = parse(text)
    visible = "".join(doc.text)
    assert XSS in visible  # shown to the reader as text: the task name and the model path
    assert XSS_MODEL in visible


def test_every_claim_and_figure(hostile) -> None:
    out, text = hostile
    claims = json.loads((out.parent / "claims.json").read_text())
    doc = parse(text)
    ids = doc.ids()
    imgs = {a["id"]: a for t, a in doc.tags if t == "img"}
    refs = _figure_refs(doc)
    tasks = claims["tasks"]
    assert XSS in tasks
    for claim in claims["claims"]:
        assert claim_anchor(claim["id"]) in ids
        assert claim["id"] in text and claim["section"] in text
        for setting in claims["settings"]:
            for kind in CLAIM_FIGURES[claim["id"]]:
                wanted = [figure_id(claim["id"], setting, kind, None)] + \
                         [figure_id(claim["id"], setting, kind, t) for t in tasks]
                found = [w for w in wanted if w in ids]
                assert found, f"no figure {kind} for {claim['id']} / {setting}"
                for fid in found:
                    fid = refs.get(fid, fid)  # shown in an earlier section: a link to it, not a copy
                    img = imgs[f"{fid}-img"]
                    assert img.get("alt")
                    w, h = image_size(img["src"])
                    assert w > 100 and h > 100
    assert len(imgs) == len(ids & {i[:-4] for i in imgs})  # every image sits in its own <figure id>


def _figure_refs(doc: Collector) -> dict[str, str]:
    """id of a figure reference (<p class="fig-ref">) -> the id of the figure it links to."""
    out: dict[str, str] = {}
    pending = None
    for tag, attrs in doc.tags:
        if tag == "p" and attrs.get("class") == "fig-ref":
            pending = attrs["id"]
        elif tag == "a" and pending:
            out[pending] = str(attrs["href"]).lstrip("#")
            pending = None
    return out


def test_every_image_is_embedded_once(hostile) -> None:
    _, text = hostile
    srcs = [a["src"] for t, a in parse(text).tags if t == "img"]
    assert srcs and len(srcs) == len(set(srcs))


def test_verdicts_and_statistics(hostile) -> None:
    _, text = hostile
    visible = "".join(parse(text).text)
    for word in ("reproduced", "inconclusive", "excluded"):
        assert word in visible
    body = "".join(parse(text.split("</style>", 1)[1]).text)
    assert "not all reproduced" not in body and "not_reproduced" not in body  # reader words, no ids
    # paired raw values of the injected comparison: pretrained 1.0, 1.5; scratch 2.0, 2.5 → mean ± sd
    assert "1.25 ± 0.35" in visible and "2.25 ± 0.35" in visible
    assert "[+0.5, +0.7]" in visible  # 95% CI
    assert "Excluded pairs" in visible and "training loss at θ1" in visible
    import json

    from tests.report_fixture import SMOKE

    revision = json.loads((SMOKE / "claims.json").read_text())["provenance"]["git_revision"]
    assert len(revision) == 40
    for fact in ("local:/work/shared/glue", revision, "torch 2.13.0+cpu", "cpu:x86_64"):
        assert fact in visible or fact in text, fact


def test_missing_surface_still_renders(hostile) -> None:
    # the hostile copy dropped sst2/scratch's surface; its contours show a placeholder panel, not an error
    _, text = hostile
    assert figure_id("wider_optima", "base", "surface_trajectory", "sst2") in parse(text).ids()


@pytest.mark.usefixtures("placeholder_images")
def test_missing_files_become_notes(tmp_path: Path) -> None:
    root = shutil.copytree(SMOKE, tmp_path / "run")
    for p in (root / "analysis").glob("base-sst2-*.json"):
        p.unlink()
    shutil.rmtree(next((root / "train").glob("mrpc-scratch-*")))
    text = write_report(root, tmp_path / "out" / "r.html").read_text()
    assert "analysis unavailable" in text and "metrics unavailable" in text
    assert_self_contained(parse(text))


@pytest.mark.usefixtures("placeholder_images")
def test_report_reads_saved_results_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to train or measure while reporting fails the test."""
    import claims.analysis
    import repro.training

    def boom(*a, **k):
        raise AssertionError("the report recomputed something")

    monkeypatch.setattr(claims.analysis, "analyze_run", boom)
    monkeypatch.setattr(repro.training, "train", boom)
    root = shutil.copytree(SMOKE, tmp_path / "run")
    assert write_report(root).exists()


# -- index -----------------------------------------------------------------------------------------------------------
def test_index_lists_runs(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    cpu = reports / "cpu"
    cpu.mkdir(parents=True)
    shutil.copy(SMOKE / "claims.json", cpu / "claims.json")
    (cpu / "report.html").write_text("<!DOCTYPE html><title>x</title>")
    hostile = make_hostile(tmp_path / "hostile")
    (reports / "odd").mkdir()
    shutil.copy(hostile / "claims.json", reports / "odd" / "claims.json")  # no report.html
    (reports / "broken").mkdir()
    (reports / "broken" / "claims.json").write_text("{not json")
    (reports / "old").mkdir()
    (reports / "old" / "claims.json").write_text('{"profile": {}, "stale": true}')
    (reports / "old" / "NOTE.txt").write_text(f"superseded by cpu {XSS}\n")
    text = write_index(reports).read_text()
    doc = parse(text)
    assert doc.mismatched == []
    assert_self_contained(doc)
    hrefs = [a.get("href") for t, a in doc.tags if t == "a"]
    assert hrefs == ["cpu/report.html"]
    visible = "".join(doc.text)
    import json

    created = json.loads((SMOKE / "claims.json").read_text())["provenance"]["created"][:10]
    assert "smoke" in visible and "cpu:x86_64" in visible and created in visible
    assert "no report.html" in visible and "unreadable" in visible
    # the overall badge counts reproduced claims in a neutral colour, never a red "not all reproduced"
    assert "0 of 5 reproduced" in visible and "not all reproduced" not in visible
    assert 'class="badge neutral"' in text and "badge not_all_reproduced" not in text
    assert "superseded by cpu" in visible  # a stale run's note replaces the parse error
    assert XSS not in text and "&lt;script&gt;" in text


def test_index_without_runs(tmp_path: Path) -> None:
    text = write_index(tmp_path).read_text()
    assert "No published runs yet" in text


# -- first screen ----------------------------------------------------------------------------------------------------
def _first_screen(text: str) -> str:
    start = text.index('<header class="first-screen">')
    return text[start:text.index("</header>", start)]


@pytest.mark.usefixtures("placeholder_images")
def test_first_screen_says_what_was_run_and_what_came_out() -> None:
    from repro.report import render_report
    from repro.results import load_claims

    text = render_report(SMOKE)
    head = _first_screen(text)
    visible = "".join(parse(head).text)
    rep = load_claims(SMOKE)
    for fact in ("model", rep.profile["model"], "hardware", rep.provenance.device, rep.provenance.git_revision[:12],
                 rep.data_source, "capped at train ≤ 128", "profile"):
        assert fact in visible, fact
    assert "0 of 5 reproduced, 5 inconclusive" in visible  # counts, not just "not all reproduced"
    grid = parse(head)
    cells = [a for t, a in grid.tags if t == "td" and "cell" in (a.get("class") or "")]
    assert len(cells) == len(rep.claims) * (len(rep.tasks) * len(rep.settings) + 1)
    assert "n = 0 valid pairs; need ≥ +0.22" in visible  # the deciding number of a cell
    assert visible.count("did not learn") >= len(rep.claims)  # one finding per claim says why
    assert "Pipeline check" in visible and "not the science" in visible
    hrefs = [a.get("href") for t, a in grid.tags if t == "a"]
    assert "claims.json" in hrefs and PAPER_URL in hrefs
    assert "<footer" in text and rep.provenance.git_revision in text.split("<footer", 1)[1]


def test_verdict_cells_quote_the_comparison_that_decided_them() -> None:
    from repro.report.summary import cells, finding
    from repro.results import load_claims

    rep = load_claims(Path(__file__).parent / "fixtures" / "golden" / "cpu")
    by_key = {(c.claim, c.setting, c.task): c for c in cells(rep)}
    c = by_key[("easier_optimization", "base", "sst2")]
    assert c.verdict == "not_reproduced" and c.comparison.name == "steps_to_loss_level"
    assert c.number() == "−0.024 [−0.19, +0.15] need ≥ +0.22"
    c = by_key[("generalization_consistency", "base", "mrpc")]
    assert c.comparison.name == "dev_accuracy" and c.stat.n == 0
    claim = next(x for x in rep.claims if x.id == "generalization_consistency")
    assert "neither arm generalised (majority rate 0.684) in every pair" in finding(rep, claim)
    overfit = next(x for x in rep.claims if x.id == "overfitting_robustness")
    assert "same extended-training runs as setting base" in finding(rep, overfit)


@pytest.mark.usefixtures("placeholder_images")
def test_superseded_run_carries_a_banner(tmp_path: Path) -> None:
    root = shutil.copytree(SMOKE, tmp_path / "run")
    (root / "NOTE.txt").write_text(f"Superseded by reports/cpu: wrong rate {XSS}\n")
    text = write_report(root).read_text()
    head = _first_screen(text)
    assert 'class="banner superseded"' in head and head.index("banner superseded") < head.index("<h1")
    assert "Superseded by reports/cpu" in "".join(parse(head).text) and XSS not in text


@pytest.mark.usefixtures("placeholder_images")
def test_a_report_missing_its_evidence_says_so_on_screen_and_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`repro report` on a directory that lacks the analyses claims.json names (e.g. reports/cpu, whose evidence is
    in reports/cpu/evidence) must not look complete: a banner on the first screen and one warning line, naming the
    directory that holds them (issue 40); a complete run has neither."""
    from repro.cli import main

    pub = tmp_path / "pub"
    shutil.copytree(SMOKE, pub / "evidence")
    shutil.copy(SMOKE / "claims.json", pub / "claims.json")
    assert main(["report", str(pub), "-o", str(tmp_path / "partial.html")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    n = len(list((SMOKE / "analysis").glob("*.json")))
    assert len(err) == 1 and err[0].startswith(f"warning: {n} of {n} analyses and "), err
    assert f"they may be under {pub / 'evidence'} (pass it as RUN_DIR" in err[0]
    head = _first_screen((tmp_path / "partial.html").read_text(encoding="utf-8"))
    assert head.count('class="banner missing"') == 1 and "figures drawn from them" in head
    assert main(["report", str(pub / "evidence"), "--claims", str(pub / "claims.json"), "-o",
                 str(tmp_path / "full.html")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert 'class="banner missing"' not in (tmp_path / "full.html").read_text(encoding="utf-8")


@pytest.mark.usefixtures("placeholder_images")
def test_data_notes_are_banners_on_the_first_screen_escaped(tmp_path: Path) -> None:
    """Every data note claims.json records (repro.data.data_notes, e.g. the MNLI excerpt's training pairs from the
    mismatched dev set) is a banner above the title, as text: a note is data, never markup."""
    from repro.data import MNLI_MISMATCHED_TRAIN_NOTE

    root = shutil.copytree(SMOKE, tmp_path / "run")
    raw = json.loads((root / "claims.json").read_text(encoding="utf-8"))
    raw["data_notes"] = [MNLI_MISMATCHED_TRAIN_NOTE, f"hostile {XSS} note"]
    (root / "claims.json").write_text(json.dumps(raw), encoding="utf-8")
    text = write_report(root).read_text(encoding="utf-8")
    head = _first_screen(text)
    assert head.count('class="banner data"') == 2 and head.index("banner data") < head.index("<h1")
    visible = "".join(parse(head).text)
    assert MNLI_MISMATCHED_TRAIN_NOTE in visible and f"hostile {XSS} note" in visible
    assert XSS not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in head
    # a run without notes has no such banner
    assert 'class="banner data"' not in _first_screen(write_report(copy_smoke(tmp_path / "plain")).read_text())


@pytest.mark.usefixtures("placeholder_images")
def test_old_schema_is_one_line_on_the_page(tmp_path: Path) -> None:
    from repro.report import render_report

    root = shutil.copytree(SMOKE, tmp_path / "run")  # the smoke run as written before schema versioning
    raw = json.loads((root / "claims.json").read_text(encoding="utf-8"))
    del raw["schema_version"], raw["science_revision"]
    (root / "claims.json").write_text(json.dumps(raw), encoding="utf-8")
    assert 'class="banner schema"' not in _first_screen(render_report(SMOKE))  # the committed one is versioned
    head = _first_screen(render_report(root))
    assert head.count('class="banner schema"') == 1 and "no schema_version" in head
    # one line under the title, not a notice above it
    assert head.index("<h1") < head.index('class="banner schema"') < head.index('id="overall"')


def test_rationale_markup_is_rendered_and_why_is_a_list(hostile) -> None:
    _, text = hostile
    assert "``" not in text  # double backticks became <code>
    doc = parse(text)
    assert any(t == "ul" and a.get("class") == "why" for t, a in doc.tags)
    visible = "".join(doc.text)
    assert "hessian_lambda_max_matched_loss:" not in visible  # snake_case ids in reasons became readable names


@pytest.mark.usefixtures("placeholder_images")
def test_empty_statistics_collapse_and_exclusions_are_shown_once() -> None:
    from repro.report import render_report

    text = render_report(Path(__file__).parent / "fixtures" / "golden" / "cpu")
    doc = parse(text)
    classes = [str(a.get("class") or "").split() for _, a in doc.tags]
    assert sum("empty-stats" in c for c in classes) > 5
    assert sum("excl-ref" in c for c in classes) > 0
    lists = [a.get("id") for t, a in doc.tags if t == "details" and a.get("class") == "excl"]
    assert len(lists) == len(set(lists))
    assert text.count('<table class="stats"') < 40


# -- size ------------------------------------------------------------------------------------------------------------
REPORTS = Path(__file__).resolve().parent.parent / "reports"


@pytest.mark.parametrize(("name", "limit"), [("cpu", 3_000_000), ("smoke", 1_000_000)])
def test_published_reports_are_small(name: str, limit: int) -> None:
    size = (REPORTS / name / "report.html").stat().st_size
    assert size < limit, f"reports/{name}/report.html is {size} bytes"


@pytest.fixture(scope="module")
def smoke_page() -> str:
    """The smoke report rendered afresh, real images included, placed where reports/smoke/report.html is."""
    from repro.report import render_report

    return render_report(SMOKE, REPORTS / "smoke" / "claims.json", REPORTS / "smoke" / "report.html")


def test_smoke_report_renders_under_a_megabyte(smoke_page: str) -> None:
    assert len(smoke_page.encode("utf-8")) < 1_000_000


def test_index_stamps_a_superseded_report_with_its_note(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    old = reports / "old"
    old.mkdir(parents=True)
    (old / "claims.json").write_text('{"profile": {}, "stale": true}')
    (old / "report.html").write_text("<!DOCTYPE html><html><body><main><h1>old</h1></main></body></html>")
    (old / "NOTE.txt").write_text(f"Superseded by cpu: {XSS}\n")
    write_index(reports)
    write_index(reports)  # idempotent: one banner
    text = (old / "report.html").read_text()
    assert text.count("run-note-banner") == 1 and text.index("run-note-banner") < text.index("<h1>")
    assert XSS not in text and "Superseded by cpu" in "".join(parse(text).text)


def test_committed_smoke_report_is_what_the_code_renders(smoke_page: str) -> None:
    """reports/smoke/report.html was regenerated with this code from its saved results (README: The report):
    rendering it again gives the same page. Image bytes are compared by count only: they depend on the
    matplotlib version and fonts of the machine, the markup does not."""

    def markup(text: str) -> tuple[str, int]:
        return re.subn(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "data:…", text)

    out = REPORTS / "smoke" / "report.html"
    assert markup(smoke_page) == markup(out.read_text(encoding="utf-8")), (
        "reports/smoke/report.html is stale: regenerate it (README, 'The report')")
