"""Minimal HTML building where escaping is the default, not something each caller must remember.

Every string that reaches the page goes through :func:`el` / :func:`esc`, which apply ``html.escape`` unless the
value is already :class:`Safe` (markup this module produced). Task names, model paths, reasons and configuration
values come from files and the command line, so none of them is trusted.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

VERDICT_TEXT = {"reproduced": "reproduced", "not_reproduced": "not reproduced", "inconclusive": "inconclusive",
                "undecidable": "undecidable", "not_all_reproduced": "not all reproduced"}


class Safe(str):
    """A string that is already markup (produced here) and must not be escaped again."""


def esc(value: Any) -> Safe:
    if isinstance(value, Safe):
        return value
    return Safe(html.escape("" if value is None else str(value), quote=True))


def _children(items: Iterable[Any]) -> Iterable[Safe]:
    for c in items:
        if c is None:
            continue
        if isinstance(c, (list, tuple)):
            yield from _children(c)
        else:
            yield esc(c)


def el(tag: str, *children: Any, **attrs: Any) -> Safe:
    """``<tag attrs>children</tag>``; attribute names lose a trailing ``_`` (``class_``) and ``_`` → ``-``."""
    parts = [tag]
    for k, v in attrs.items():
        if v is None or v is False:
            continue
        key = k.rstrip("_").replace("_", "-")
        parts.append(key if v is True else f'{key}="{esc(v)}"')
    return Safe(f"<{' '.join(parts)}>" + "".join(_children(children)) + f"</{tag}>")


def void(tag: str, **attrs: Any) -> Safe:
    """A void element (``<img>``, ``<meta>``): attributes only, escaped."""
    parts = [tag] + [f'{k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None]
    return Safe(f"<{' '.join(parts)}>")


def join(*parts: Any) -> Safe:
    return Safe("".join(_children(parts)))


def slug(text: str) -> str:
    """An id fragment: letters, digits, ``_`` and ``-`` only (any task name becomes a valid, inert id)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def fmt(x: Any, digits: int = 3) -> str:
    """A number for a table: ``—`` for missing or non-finite values, signed-free general format otherwise."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        if isinstance(x, float) and not math.isfinite(x):
            return "—"
        return f"{x:.{digits}g}" if isinstance(x, float) else str(x)
    return str(x)


def fmt_signed(x: Any, digits: int = 3) -> str:
    """A signed number with ``digits`` significant digits, never in exponent notation (one notation per column)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        text = f"{x:+.{digits}g}"
        if "e" in text and x != 0:
            text = f"{x:+.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"
        return text
    return "—"


def badge(verdict: str) -> Safe:
    cls = verdict if verdict in VERDICT_TEXT else "unknown"
    return el("span", VERDICT_TEXT.get(verdict, verdict), class_=f"badge {cls}")


def table(head: Sequence[Any], rows: Iterable[Sequence[Any]], *, caption: Any = None, class_: str | None = None
          ) -> Safe:
    """A table wrapped in a horizontally scrolling box, so wide tables never widen a phone screen."""
    thead = el("thead", el("tr", [el("th", h, scope="col") for h in head]))
    tbody = el("tbody", [el("tr", [el("td", c) for c in r]) for r in rows])
    return el("div", el("table", el("caption", caption) if caption is not None else None, thead, tbody,
                        class_=class_), class_="scroll")


def kv_table(items: Mapping[str, Any] | Iterable[tuple[str, Any]], *, caption: Any = None) -> Safe:
    pairs = items.items() if isinstance(items, Mapping) else items
    rows = el("tbody", [el("tr", el("th", k, scope="row"), el("td", v)) for k, v in pairs])
    return el("div", el("table", el("caption", caption) if caption is not None else None, rows, class_="kv"),
              class_="scroll")


def png_img(png: bytes, *, alt: str, id_: str | None = None) -> Safe:
    """An embedded PNG (data URI): the page stays one self-contained file with no network requests."""
    return img_tag(png, "image/png", alt=alt, id_=id_)


def img_tag(data: bytes, mime: str, *, alt: str, id_: str | None = None) -> Safe:
    """An embedded image (PNG or SVG) as a data URI. An SVG in ``<img>`` runs no scripts and loads nothing."""
    if mime not in ("image/png", "image/svg+xml"):
        raise ValueError(f"unsupported image type {mime!r}")
    b64 = base64.b64encode(data).decode("ascii")
    return void("img", src=f"data:{mime};base64,{b64}", alt=alt, id=id_)


_CODE = re.compile(r"``(.+?)``", re.DOTALL)
_STRONG = re.compile(r"(?<![\w*])\*\*(\S(?:.*?\S)?)\*\*(?![\w*])", re.DOTALL)
_EMPHASIS = re.compile(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])", re.DOTALL)
_DASH = re.compile(r"(?<=\s)--(?=\s)|(?<=\w)--(?=\w)")
_ITEM = re.compile(r"^[-*] ")


def _prose(escaped: str) -> str:
    """Emphasis (``*x*``), strong (``**x**``) and a double hyphen as a dash, in escaped text outside code."""
    out = _STRONG.sub(lambda m: f"<strong>{m.group(1)}</strong>", escaped)
    out = _EMPHASIS.sub(lambda m: f"<em>{m.group(1)}</em>", out)
    return _DASH.sub("–", out)


def rst_inline(text: str) -> Safe:
    """Escape ``text`` and render reStructuredText inline markup: literals (double backticks) as ``<code>``,
    ``*emphasis*`` and ``**strong**``, and ``--`` as a dash, so no raw markup characters reach the reader."""
    escaped = str(esc(text))
    out, last = [], 0
    for m in _CODE.finditer(escaped):
        out += [_prose(escaped[last:m.start()]), f"<code>{m.group(1)}</code>"]
        last = m.end()
    out.append(_prose(escaped[last:]))
    return Safe("".join(out))


def _items(lines: list[str]) -> list[str] | None:
    """The list items of a block whose first line starts with ``- `` or ``* `` (continuation lines join the item
    above); None when the block is a paragraph."""
    if not lines or not _ITEM.match(lines[0]):
        return None
    items: list[str] = []
    for ln in lines:
        if _ITEM.match(ln):
            items.append(ln[2:])
        else:
            items[-1] += " " + ln
    return items


def rst_blocks(text: str) -> Safe:
    """A docstring as paragraphs (blank-line separated) and bullet lists (``-`` or ``*`` items, continuation lines
    indented; consecutive list blocks make one list), with inline markup rendered (:func:`rst_inline`)."""
    out: list[Safe] = []
    pending: list[str] = []
    for block in re.split(r"\n\s*\n", str(text).strip()):
        lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
        items = _items(lines)
        if items is not None:
            pending += items
            continue
        if pending:
            out.append(el("ul", [el("li", rst_inline(x)) for x in pending]))
            pending = []
        if lines:
            out.append(el("p", rst_inline(" ".join(lines))))
    if pending:
        out.append(el("ul", [el("li", rst_inline(x)) for x in pending]))
    return join(out)


CSS = """
:root { --fg:#1b1f24; --muted:#5b6470; --line:#d8dde3; --bg:#ffffff; --soft:#f5f7f9;
        --ok:#1e7b34; --bad:#b3261e; --maybe:#9a6700; --pre:#1f5fa8; --scr:#d1495b; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:var(--bg); font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
       "Helvetica Neue",Arial,sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 1rem clamp(0.6rem, 3vw, 2rem) 3rem; }
h1 { font-size: clamp(1.35rem, 4vw, 2rem); margin: .4rem 0 .2rem; }
h2 { font-size: 1.35rem; margin-top: 2.4rem; padding-top: .6rem; border-top: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
h4 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
p, li { max-width: 80ch; }
.muted { color: var(--muted); }
.scroll { overflow-x: auto; margin: .6rem 0 1rem; }
table { border-collapse: collapse; font-size: .88rem; min-width: 40%; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; caption-side: top; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
thead th { background: var(--soft); }
table.kv th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td { font-variant-numeric: tabular-nums; }
.badge { display:inline-block; padding:.05rem .5rem; border-radius:999px; font-size:.8rem; font-weight:600;
         color:#fff; white-space:nowrap; }
.badge.reproduced { background: var(--ok); }
.badge.not_reproduced, .badge.not_all_reproduced { background: var(--bad); }
.badge.inconclusive { background: var(--maybe); }
.badge.unknown, .badge.neutral { background: var(--muted); }
.badge.rv-reproduced { background: var(--ok); }
.badge.rv-against { background: var(--bad); }
.badge.rv-below-minimum { background: #8a4b08; }
.badge.rv-inconclusive { background: var(--maybe); }
.badge.rv-excluded, .badge.rv-undecidable, .badge.rv-unknown { background: var(--muted); }
td.rv-excluded, td.rv-undecidable { background: var(--soft); }
table.grid td.cell .reason { font-size: .7rem; }
table.grid td.cell .unit { color: var(--muted); }
section.scope, section.disclosure { border: 1px solid var(--line); border-radius: 6px; padding: .2rem .7rem;
  margin: .3rem 0; background: var(--soft); font-size: .8rem; line-height: 1.35; }
section.scope p { margin: .15rem 0; max-width: none; }
section.disclosure h2 { font-size: 1rem; margin: .2rem 0; padding: 0; border: none; }
p.banner.schema { margin: .1rem 0 .3rem; }
blockquote { margin: .6rem 0; padding: .4rem .9rem; border-left: 4px solid var(--line); background: var(--soft); }
figure { margin: 1rem 0 1.6rem; break-inside: avoid; page-break-inside: avoid; }
figure img { display:block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: .85rem; color: var(--muted); margin-top: .3rem; max-width: 90ch; }
.arm-pretrained { color: var(--pre); font-weight: 600; }
pre.rationale { white-space: pre-wrap; font-size: .85em; background: #f6f8fa; padding: .6em; }
.arm-scratch { color: var(--scr); font-weight: 600; }
ul.excluded { font-size: .85rem; color: var(--muted); }
nav.toc ol { padding-left: 1.2rem; }
header.first-screen h1 { margin: .2rem 0 .1rem; font-size: clamp(1.2rem, 2.6vw, 1.9rem); }
.banner { padding: .45rem .8rem; border-radius: 6px; margin: .3rem 0; font-size: .9rem; }
.banner.superseded { background: #fdecea; border: 1px solid var(--bad); }
.banner.smoke { background: #fff6e0; border: 1px solid var(--maybe); }
.banner.data, .banner.missing { background: #fff6e0; border: 1px solid var(--maybe); }
.banner.schema { background: var(--soft); border: 1px solid var(--line); color: var(--muted); }
p.overall { margin: .1rem 0 .3rem; font-size: 1.05rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0 .8rem; margin: .2rem 0; font-size: .82rem; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; }
.grid-box { margin: .4rem 0; }
table.grid { width: 100%; font-size: .76rem; table-layout: fixed; }
table.grid td, table.grid th { overflow-wrap: anywhere; }
table.grid caption { font-size: .8rem; font-weight: 600; padding: .1rem 0; }
table.grid th[scope=row] { width: 13%; font-weight: 600; }
table.grid th, table.grid td { padding: .2rem .3rem; }
table.grid .badge { font-size: .7rem; white-space: normal; padding: 0 .4rem; }
table.grid thead th:last-child { width: 8.5rem; }
table.grid .badge { overflow-wrap: normal; word-break: keep-all; }
table.grid td.cell .what { font-weight: 600; margin-top: .1rem; line-height: 1.2; }
table.grid td.cell .num { font-variant-numeric: tabular-nums; line-height: 1.2; }
td.v-reproduced { background: #e7f4ea; } td.v-not_reproduced { background: #fbe9e7; }
td.v-inconclusive, td.v-undecidable { background: #fdf3dc; }
ul.findings { margin: .3rem 0; padding-left: 1.1rem; font-size: .84rem; }
ul.findings li { max-width: none; }
p.counts, p.links { margin: .2rem 0; font-size: .84rem; }
p.empty-stats { font-size: .85rem; margin: .3rem 0; }
code.id { color: var(--muted); font-size: .75em; }
table.stats td:nth-child(n+3), table.runs td:nth-child(n+4) { text-align: right; white-space: nowrap; }
.badge.undecidable { background: var(--muted); }
footer { margin-top: 2rem; border-top: 1px solid var(--line); padding-top: .5rem; font-size: .8rem; }
code { font-size: .85em; background: var(--soft); padding: 0 .2rem; border-radius: 3px; word-break: break-all; }
@media (max-width: 600px) { body { font-size: 14px; } th, td { padding: .25rem .35rem; }
  table.grid { table-layout: auto; } }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  h2 { break-before: page; page-break-before: always; border-top: none; }
  h2.first { break-before: auto; page-break-before: auto; }
  .scroll { overflow: visible; }
  table, figure, blockquote { break-inside: avoid; page-break-inside: avoid; }
  .badge { border: 1px solid #000; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
  nav.toc { display: none; }
  header h2, section.health-section h2 { break-before: auto; page-break-before: auto; }
  /* a printed report shows every collapsed block: statistics, exclusions, runs and figures */
  details > summary { list-style: none; font-weight: 600; }
  details > summary::-webkit-details-marker { display: none; }
  details > *:not(summary) { display: block !important; }
  details::details-content { content-visibility: visible; display: block; }
}
"""


def page(title: str, body: Any) -> str:
    """A complete document: inline styles only, no scripts, no external resources."""
    return ("<!DOCTYPE html>\n" + el(
        "html",
        el("head", void("meta", charset="utf-8"),
           void("meta", name="viewport", content="width=device-width, initial-scale=1"),
           el("title", title), el("style", Safe(CSS))),
        el("body", el("main", body)),
        lang="en") + "\n")
