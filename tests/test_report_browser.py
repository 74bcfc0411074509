"""Render the report in headless Chromium: every embedded image decodes (naturalWidth > 0) and the page paints.

The report itself carries no scripts, so a throwaway harness page in the temporary directory loads it in an iframe
(same file:// origin, allowed by ``--allow-file-access-from-files``) and writes what it sees into its own DOM, which
``--dump-dom`` prints. Skipped where Chromium is not installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from repro.report import write_report
from tests.report_fixture import SMOKE

pytestmark = pytest.mark.browser

HARNESS = """<!DOCTYPE html><html><body>
<iframe id="f" src="report.html" style="width:WIDTHpx;height:HEIGHTpx;border:0"></iframe><pre id="result">pending</pre>
<script>
document.getElementById('f').addEventListener('load', function () {
  var out = {};
  try {
    var doc = this.contentDocument;
    out.images = Array.prototype.map.call(doc.images, function (i) {
      return {id: i.id, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}; });
    out.claims = doc.querySelectorAll('section.claim').length;
    out.scripts = doc.scripts.length;
    out.scrollWidth = doc.documentElement.scrollWidth;
    out.clientWidth = doc.documentElement.clientWidth;
    var grid = doc.getElementById('verdict-grid');
    if (grid) {
      var r = grid.getBoundingClientRect();
      out.grid = {top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                  boxScroll: grid.parentNode.scrollWidth, boxClient: grid.parentNode.clientWidth};
      var f = doc.getElementById('findings').getBoundingClientRect();
      out.findingsTop = f.top;
    }
    out.height = doc.documentElement.scrollHeight;
  } catch (e) { out.error = String(e); }
  document.getElementById('result').textContent = JSON.stringify(out);
});
</script></body></html>
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium not installed (apt-get install chromium)")


def _run(tmp: Path, *args: str) -> str:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp / 'profile'}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _chromium()  # skip before rendering the report where there is no browser
    tmp = tmp_path_factory.mktemp("browser")
    run = shutil.copytree(SMOKE, tmp / "run")
    return write_report(run, tmp / "report.html")


def _harness_result(harness: Path, text: str) -> dict:
    """Write a harness page beside the report, load it in Chromium and return the JSON it leaves in #result."""
    harness.write_text(text, encoding="utf-8")
    dom = _run(harness.parent, "--allow-file-access-from-files", "--virtual-time-budget=15000", "--dump-dom",
               harness.as_uri())
    m = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert m, dom[-2000:]
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert "error" not in result, result
    return result


def _inspect(page: Path, width: int, height: int = 900) -> dict:
    return _harness_result(page.parent / f"harness{width}x{height}.html",
                           HARNESS.replace("WIDTH", str(width)).replace("HEIGHT", str(height)))


def test_every_image_loads(page: Path) -> None:
    result = _inspect(page, 1280)
    assert result["scripts"] == 0
    assert result["claims"] == len(json.loads((page.parent / "run" / "claims.json").read_text())["claims"])
    images = result["images"]
    assert images, "no images in the report"
    bad = [i for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert not bad, bad


def test_report_dom_and_screenshot(page: Path) -> None:
    from PIL import Image

    dom = _run(page.parent, "--dump-dom", page.as_uri())
    assert dom.count("<img") == page.read_text(encoding="utf-8").count("<img") > 0
    shot = page.parent / "shot.png"
    _run(page.parent, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", page.as_uri())
    with Image.open(shot) as img:
        assert img.size == (1280, 2000)
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # text, badges and tables painted, not a blank page


def test_fits_a_phone_screen(page: Path) -> None:
    """At 390 CSS px the page is no wider than the screen: tables scroll inside their boxes, images shrink."""
    result = _inspect(page, 390)
    assert result["clientWidth"] > 0
    assert result["scrollWidth"] <= result["clientWidth"] + 1, result
    assert all(i["w"] > 0 for i in result["images"])


@pytest.mark.parametrize("width", [1440, 800])
def test_verdict_grid_is_on_the_first_screen(page: Path, width: int) -> None:
    """At 1440 × 900 and 800 × 900 the whole verdict grid is visible without scrolling and fits the width (no
    horizontal scroll inside its box), and the findings start on the first screen."""
    result = _inspect(page, width, 900)
    grid = result["grid"]
    assert grid["top"] >= 0 and grid["bottom"] <= 900, grid
    assert grid["right"] <= result["clientWidth"] + 1, (grid, result["clientWidth"])
    assert grid["boxScroll"] <= grid["boxClient"] + 1, grid
    assert result["findingsTop"] < 900


def test_published_cpu_report_grid_fits_the_first_screen(tmp_path: Path) -> None:
    """The same check on the committed cpu report (the cpu demonstration: every figure of one task and setting, longer
    cells than smoke)."""
    published = Path(__file__).resolve().parent.parent / "reports" / "cpu" / "report.html"
    page = tmp_path / "report.html"
    shutil.copyfile(published, page)
    for width in (1440, 800):
        result = _inspect(page, width, 900)
        grid = result["grid"]
        assert grid["bottom"] <= 900 and grid["boxScroll"] <= grid["boxClient"] + 1, (width, grid)
        assert result["scrollWidth"] <= result["clientWidth"] + 1
        # a few screens, not 42: statistics, minimum effects, setup and the second setting's figures are folded (was
        # 38,141 px at 1440; 17,015 px at 800 before the minimum effects and the setup table were folded)
        assert result["height"] < 18 * 900, result["height"]
        assert all(i["w"] > 0 for i in result["images"])  # folded figures still decode


PRINT_HARNESS = """<!DOCTYPE html><html><body>
<iframe id="f" src="SRC" style="width:1000px;height:900px;border:0"></iframe><pre id="result">pending</pre>
<script>
document.getElementById('f').addEventListener('load', function () {
  var out = {};
  try {
    var doc = this.contentDocument;
    // checkVisibility: false inside a closed <details> (content-visibility: hidden), unlike layout queries
    var shown = function (e) { return e.checkVisibility(); };
    var stats = doc.querySelectorAll('table.stats');
    out.stats = stats.length;
    out.statsShown = Array.prototype.filter.call(stats, shown).length;
    var inner = Array.prototype.filter.call(doc.querySelectorAll('details > :not(summary)'),
                                            function (e) { return !shown(e); });
    out.hiddenInDetails = inner.length;
    out.text = doc.body.innerText.indexOf('95% t-interval') >= 0;
  } catch (e) { out.error = String(e); }
  document.getElementById('result').textContent = JSON.stringify(out);
});
</script></body></html>
"""


def _inspect_print(page: Path, name: str) -> dict:
    return _harness_result(page.parent / f"print-{name}.html", PRINT_HARNESS.replace("SRC", name))


def test_print_media_shows_every_folded_block(tmp_path: Path) -> None:
    """Printed, the report shows what the screen folds away: the statistics tables and every other <details>
    body. Print media is emulated by applying the page's own ``@media print`` rules to the screen (a copy of the
    page with ``@media print`` read as ``@media all``); the page as it is serves as the control."""
    from tests.report_fixture import make_hostile

    run = make_hostile(tmp_path / "run")  # the smoke run with one comparison's statistics table
    page = write_report(run, tmp_path / "report.html")
    text = page.read_text(encoding="utf-8")
    assert text.count("@media print {") == 1
    (tmp_path / "printed.html").write_text(text.replace("@media print {", "@media all {"), encoding="utf-8")
    screen = _inspect_print(page, "report.html")
    printed = _inspect_print(page, "printed.html")
    assert screen["stats"] > 0 and screen["statsShown"] == 0 and not screen["text"]  # folded on screen
    assert printed["stats"] == screen["stats"] and printed["statsShown"] == printed["stats"], printed
    assert printed["hiddenInDetails"] == 0 and printed["text"], printed
