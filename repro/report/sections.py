"""The parts of a report page: summary (verdicts, setup, provenance, runs) and one section per claim (statement,
verdicts per setting and task, the statistics of every comparison, excluded pairs, and the figures).

Everything here returns :class:`~repro.report.markup.Safe` markup built with :func:`el`, which escapes every value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from repro.report.data import ReportData
from repro.report.figures import FigureRenderer
from repro.report.markup import (
    Safe,
    badge,
    el,
    fmt,
    fmt_signed,
    img_tag,
    join,
    kv_table,
    rst_blocks,
    slug,
    table,
)
from repro.report.reasons import plain_numbers, split_top_level
from repro.report.summary import cells, finding, readable, readable_text
from repro.report.verdicts import reader_badge, reader_verdict

_PAIR_KEYS = ("task", "seed", "effect")


def claim_anchor(claim_id: str) -> str:
    return f"claim-{slug(claim_id)}"


def figure_id(claim_id: str, setting: str, kind: str, task: str | None) -> str:
    base = f"fig-{slug(claim_id)}-{slug(setting)}-{slug(kind)}"
    return base if task is None else f"{base}-{slug(task)}"


# -- summary ---------------------------------------------------------------------------------------------------------
def _sizes(data: ReportData) -> str:
    seen: dict[str, tuple[int, int]] = {}
    for r in data.runs:
        if r.metrics is not None:
            seen.setdefault(r.summary.task, (r.metrics.num_train, r.metrics.num_dev))
    return "; ".join(f"{t}: {n} train / {d} dev" for t, (n, d) in seen.items()) or "—"


def _settings_text(profile: Mapping[str, Any]) -> list[str]:
    out = []
    for s in profile.get("settings", ()):
        if isinstance(s, Mapping):
            extra = ", ".join(f"{k} {v}" for k, v in s.items() if k != "name")
            out.append(f"{s.get('name', '?')} ({extra})" if extra else str(s.get("name", "?")))
        else:
            out.append(str(s))
    return out


# what each recorded duration measures: train_seconds is only the training done by the invocation that wrote
# claims.json (near 0 when it reused finished runs), training_compute_seconds the recorded time of every run used
DURATION_NAMES = {
    "train_seconds": "training in the last invocation (reused runs not counted)",
    "analysis_seconds": "analysis in the last invocation",
    "evaluation_seconds": "claim evaluation",
    "report_seconds": "report",
    "total_seconds": "last invocation in all",
    "training_compute_seconds": "training compute of every run the claims use (as recorded by each run)",
}


def _durations(d: Mapping[str, float]) -> str:
    def hms(x: float) -> str:
        if not isinstance(x, (int, float)) or not math.isfinite(x):
            return "—"
        if x < 60:
            return f"{x:.3g} s"
        h, rem = divmod(round(x), 3600)
        m, s = divmod(rem, 60)
        return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"
    return "; ".join(f"{DURATION_NAMES.get(k, k.replace('_seconds', ''))} {hms(v)}" for k, v in d.items()) or "—"


def setup_table(data: ReportData) -> Safe:
    rep, prov = data.claims, data.claims.provenance
    prof = rep.profile
    hyper = []
    for arm in ("pretrained", "scratch"):
        h = prof.get(arm)
        if isinstance(h, Mapping):
            hyper.append((f"{arm} training", ", ".join(f"{k} {v}" for k, v in h.items())))
    items: list[tuple[str, Any]] = [
        ("profile", f"{prof.get('name', '?')} — {prof.get('description', '')}"),
        ("model", el("code", prof.get("model", "?"))),
        ("tasks", ", ".join(rep.tasks)),
        ("seeds", ", ".join(str(s) for s in rep.seeds)),
        ("settings", "; ".join(_settings_text(prof)) or ", ".join(rep.settings)),
        *hyper,
        ("data source", el("code", rep.data_source)),
        ("data sizes (profile)", (f"train {prof.get('train_size', '—')}, dev {prof.get('dev_size', '—')}, "
                                 f"max length {prof.get('max_length', '—')}")),
        ("data sizes (runs)", _sizes(data)),
        ("learned (precondition)", f"training loss at θ1 ≤ {rep.learned_fraction_of_chance} × ln(#classes)"),
        ("device", (f"{prov.device} — as recorded; torch used {prov.torch_threads} thread(s) (intra-op); the "
                   f"machine's core count is not recorded")),
        ("created", prov.created),
        ("git revision", join(el("code", prov.git_revision), " (uncommitted changes)" if prov.git_dirty else "")),
        ("python", prov.python),
        ("packages", ", ".join(f"{k} {v}" for k, v in sorted(prov.packages.items()))),
        ("durations", _durations(rep.durations)),
    ]
    land = prof.get("landscape")
    if isinstance(land, Mapping):
        items.append(("landscape settings", ", ".join(f"{k} {v}" for k, v in land.items())))
    # folded like the runs table: ~900-1,100 px of reference a reader opens on purpose (issue 39: report length)
    return el("details", el("summary", f"Setup and provenance: {prof.get('name', '?')} on {prov.device}, revision "
                                       f"{prov.git_revision}"),
              kv_table(items, caption="Setup and provenance"))


def _fixed(x: Any, places: int) -> str:
    """One notation per column: fixed decimals (a column of 0.3364 and 1.2e-05 reads as a column of numbers)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return f"{x:.{places}f}"
    return "—"


def runs_table(data: ReportData) -> Safe:
    rows = []
    for r in data.runs:
        s = r.summary
        rows.append([s.setting, s.task, el("span", s.init, class_=f"arm-{slug(s.init)}"), s.seed, s.status,
                     fmt(s.learned), _fixed(s.train_loss_theta1, 4), _fixed(s.dev_accuracy, 3), s.total_steps,
                     f"{s.wall_seconds:.1f}" if isinstance(s.wall_seconds, (int, float)) else "—", "; ".join(filter(None, (getattr(s, "error", ""), *r.notes)))])
    return el("details", el("summary", f"Training runs ({len(rows)})"),
              table(["setting", "task", "arm", "seed", "status", "learned", "train loss θ1", "dev acc", "steps",
                     "wall s", "notes"], rows, caption="Training runs", class_="runs"))


# -- claims ----------------------------------------------------------------------------------------------------------
def _mean_sd(values: Iterable[Any]) -> str:
    v = np.asarray([x for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "—"
    if v.size == 1:
        return _plain(float(v[0]), 4)
    return f"{_plain(float(v.mean()), 4)} ± {_plain(float(v.std(ddof=1)), 2)}"


def _plain(x: float, sig: int) -> str:
    """``sig`` significant digits without exponent notation (tables read 0.000018 and 220, not 1.8e-05, 2.2e+02)."""
    text = f"{x:.{sig}g}"
    if "e" in text and x != 0:
        text = f"{x:.{max(0, sig - 1 - math.floor(math.log10(abs(x))))}f}"
    return text


def _stat_row(scope: str, st: Any, rows: Sequence[Mapping[str, Any]], keys: Sequence[str], comp: Any = None,
              task: str | None = None) -> list[Any]:
    ci = f"[{fmt_signed(st.ci_low)}, {fmt_signed(st.ci_high)}]" if st.n >= 2 else "n/a (fewer than 2 pairs)"
    p = f"{st.positive}/{st.n}" if st.n else "—"
    return [scope, reader_badge(reader_verdict(st.verdict, st, comp, task)), st.n, fmt_signed(st.mean), ci, p,
            *[_mean_sd(r.get(k) for r in rows) for k in keys]]


def _empty(comp: Any) -> bool:
    return comp.overall.n == 0 and all(st.n == 0 for st in comp.per_task.values())


def _exclusion_key(comp: Any) -> tuple[str, ...]:
    return tuple(comp.excluded)


def comparison_table(comp: Any, shown: dict[tuple[str, ...], str] | None = None, anchor: str = "") -> Safe:
    """Overall and per-task statistics of one comparison, with each arm's raw values (mean ± sd over pairs).

    A comparison with no valid pair in any task is one line, not a table of dashes. An exclusion list identical to
    one already shown (``shown``: list → anchor) is referenced instead of repeated."""
    shown = {} if shown is None else shown
    need = f"needs mean ≥ {fmt_signed(comp.min_effect)}"
    label = join(el("strong", readable(comp.name)), " ", el("code", comp.name, class_="id"))
    kind = "primary" if comp.primary else "secondary"
    parts: list[Any] = []
    if _empty(comp):
        parts.append(el("p", label, f" ({kind}; {comp.effect_unit}; {need}): ",
                        reader_badge(reader_verdict(comp.overall.verdict, comp.overall, comp)),
                        " n = 0 valid pairs in every task.", class_="empty-stats", id=anchor or None))
    else:
        pairs = list(comp.per_pair)
        keys = list(dict.fromkeys(k for r in pairs for k in r if k not in _PAIR_KEYS and k != "bound"))
        rows = []
        # pooled only over the tasks that contribute a valid pair, and saying which (a "pooled over 2 tasks" row
        # that held one task's pairs misled, issue 39)
        contributing = [t for t, st in comp.per_task.items() if st.n > 0]
        if len(contributing) > 1:
            rows.append(_stat_row(f"pooled over {', '.join(contributing)} (descriptive; verdict per task)",
                                  comp.overall, pairs, keys, comp))
        for task, st in comp.per_task.items():
            rows.append(_stat_row(task, st, [r for r in pairs if r.get("task") == task], keys, comp, task))
        caption = join(label, " — ", comp.description, " ",
                       el("span", f"[{kind}; effect = {comp.effect_unit}; {need}]", class_="muted"))
        head = ["scope", "verdict", "n", "mean effect", "95% t-interval", "effects > 0",
                *[f"{k} (mean ± sd)" for k in keys]]
        parts.append(join(el("span", id=anchor) if anchor else None, table(head, rows, caption=caption,
                                                                             class_="stats")))
    if comp.excluded:
        key = _exclusion_key(comp)
        if key in shown:
            parts.append(el("p", f"Excluded pairs ({len(comp.excluded)}): the same as ",
                            el("a", "those listed above", href=f"#{shown[key]}"), ".", class_="muted excl-ref"))
        else:
            ex_id = f"excl-{anchor}" if anchor else None
            if ex_id:
                shown[key] = ex_id
            parts.append(el("details", el("summary", f"Excluded pairs ({len(comp.excluded)})"),
                            el("ul", [el("li", plain_numbers(readable_text(e))) for e in comp.excluded],
                               class_="excluded"), id=ex_id,
                            class_="excl"))
    return join(parts)


def figure_block(rendered: Any, claim_id: str) -> Safe:
    fid = figure_id(claim_id, rendered.setting, rendered.kind, rendered.task)
    title = rendered.title + (f" — {rendered.task}" if rendered.task is not None else "")
    return el("figure", img_tag(rendered.data, rendered.mime, alt=f"{title} ({rendered.setting})",
                                id_=f"{fid}-img"),
              el("figcaption", el("strong", title), ". ", rendered.caption), id=fid, class_="fig",
              data_kind=rendered.kind)


def figure_ref(rendered: Any, claim_id: str, first_id: str) -> Safe:
    """A figure already shown in another section: a link, not a second copy of the image."""
    fid = figure_id(claim_id, rendered.setting, rendered.kind, rendered.task)
    title = rendered.title + (f" — {rendered.task}" if rendered.task is not None else "")
    return el("p", el("a", f"{title} ({rendered.setting})", href=f"#{first_id}"), ": shown above.",
              id=fid, class_="fig-ref", data_kind=rendered.kind)


def _why_list(claim: Any) -> Safe:
    """Each setting's stored reason as a short list with readable names (the stored text is one long line)."""
    items = []
    for s in claim.settings:
        parts = split_top_level(plain_numbers(str(s.reason)))
        items.append(el("li", el("strong", s.setting), ": ", badge(s.verdict),
                        el("ul", [el("li", readable_text(p)) for p in parts]) if len(parts) > 1
                        else join(" ", readable_text(parts[0]) if parts else "")))
    return el("ul", items, class_="why")


# notes a reader needs beside a claim's numbers, where two claims apply the same test differently
_BINOMIAL = ("The generalisation precondition is a one-sided exact binomial test of dev accuracy against the "
             "majority-class rate at α = 0.05 in both claims. §6 tests one final accuracy at 0.05; §5.3 tests the "
             "best of k extended-training evaluations, so it divides α by k (Bonferroni): with k = 10 the "
             "exclusions below read p ≥ 0.005. The two numbers are one rule, not two thresholds.")
CLAIM_NOTES: dict[str, str] = {"overfitting_robustness": _BINOMIAL, "generalization_consistency": _BINOMIAL}


def claim_section(data: ReportData, claim: Any, renderer: FigureRenderer, first: bool = False) -> Safe:
    tasks = list(data.claims.tasks)
    anchor = claim_anchor(claim.id)
    parts: list[Any] = [
        el("h2", f"{claim.section} · {readable(claim.id)} ", el("code", claim.id, class_="id"), " ",
           badge(claim.verdict), id=anchor, class_="first" if first else None),
        el("blockquote", claim.statement),
        el("p", el("strong", "Finding: "), finding(data.claims, claim)),
    ]
    effect = renderer.effect_sizes(claim)
    if effect is not None:
        parts.append(figure_block(effect, claim.id))
    parts += [
        el("details", el("summary", "Why, per setting"), _why_list(claim)),
        *([el("details", el("summary", "How this claim is measured (thresholds and their justification)"),
              el("div", rst_blocks(str(claim.rationale)), class_="rationale"))]
          if getattr(claim, "rationale", "") else []),
    ]
    if claim.id in CLAIM_NOTES:
        parts.append(el("p", el("strong", "Note: "), CLAIM_NOTES[claim.id], class_="muted note"))
    if claim.thresholds:
        # each minimum effect is the project's registered choice (the paper gives none); when it was registered,
        # relative to the runs whose results had been seen, is each comparison's `registered` (claims.base)
        when = {c.name: c.registered for s in claim.settings for c in s.comparisons if getattr(c, "registered", "")}
        # folded: up to ~560 px per claim of registration history (issue 39: report length)
        parts.append(el("details", el("summary", f"Minimum effects ({len(claim.thresholds)}), each the project's "
                                                 "registered choice"),
                        el("p", "; ".join(f"{readable(k)} {fmt_signed(v)}"
                                          + (f" (registered {when[k]})" if k in when else "")
                                          for k, v in claim.thresholds.items()), class_="muted")))
    shown: dict[tuple[str, ...], str] = {}
    # each task's words in a setting's heading: those of the comparison that decided its grid cell
    by_cell = {(x.setting, x.task): x for x in cells(data.claims) if x.claim == claim.id}
    if effect is not None:
        renderer.place(effect, figure_id(claim.id, effect.setting, effect.kind, effect.task))
    for i, s in enumerate(claim.settings):
        words = {t: reader_verdict(x.verdict, x.stat, x.comparison, t).words if x.comparison is not None
                 else x.verdict.replace("_", " ") or "—"
                 for t in tasks for x in [by_cell.get((s.setting, t))] if x is not None}
        parts.append(el("h3", f"Setting {s.setting} ", badge(s.verdict),
                        " ", el("span", ", ".join(f"{t}: {words.get(t, '—')}" for t in tasks), class_="muted")))
        if not s.comparisons:  # e.g. §5.3 long: the same extended runs as another setting, not counted again
            parts.append(el("p", readable_text(s.reason), class_="muted shared"))
            continue
        n_primary = sum(1 for c in s.comparisons if c.primary)
        # the statistics are the evidence behind the grid and the effect figure: one click away, not 5 screens
        parts.append(el("details", el("summary", f"Statistics of {len(s.comparisons)} comparisons ({n_primary} "
                                                 f"primary), setting {s.setting}"),
                        [comparison_table(c, shown, f"{anchor}-{slug(s.setting)}-{slug(c.name)}")
                         for c in s.comparisons], class_="stats-block"))
        figs = renderer.for_claim(claim.id, s.setting)
        if figs:
            blocks = []
            for f in figs:
                first_id = renderer.place(f, figure_id(claim.id, f.setting, f.kind, f.task))
                blocks.append(figure_block(f, claim.id) if first_id is None else figure_ref(f, claim.id, first_id))
            if i == 0:  # the first setting's figures are open; the others' are one click away
                parts += [el("h4", "Figures"), *blocks]
            else:
                parts.append(el("details", el("summary", f"Figures, setting {s.setting} ({len(blocks)})"), blocks,
                                class_="figs-block"))
    return el("section", parts, class_="claim", data_claim=claim.id)
