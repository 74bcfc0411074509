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
from repro.report.markup import Safe, badge, el, fmt, fmt_signed, join, kv_table, png_img, slug, table

_PAIR_KEYS = ("task", "seed", "effect")


def claim_anchor(claim_id: str) -> str:
    return f"claim-{slug(claim_id)}"


def figure_id(claim_id: str, setting: str, kind: str, task: str | None) -> str:
    base = f"fig-{slug(claim_id)}-{slug(setting)}-{slug(kind)}"
    return base if task is None else f"{base}-{slug(task)}"


# -- summary ---------------------------------------------------------------------------------------------------------
def verdict_table(data: ReportData) -> Safe:
    rep = data.claims
    tasks = list(rep.tasks)
    rows = []
    for c in rep.claims:
        survived = [s.setting for s in c.settings if s.verdict == "reproduced"]
        rows.append([c.section, el("a", c.id, href=f"#{claim_anchor(c.id)}"),
                     *[badge(c.per_task.get(t, "inconclusive")) if t in c.per_task else "—" for t in tasks],
                     badge(c.verdict), ", ".join(survived) or "none"])
    return table(["§", "claim", *tasks, "overall", "reproduced under"], rows,
                 caption="Verdicts (claims × tasks; overall = every setting)", class_="verdicts")


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


def _durations(d: Mapping[str, float]) -> str:
    def hms(x: float) -> str:
        if not isinstance(x, (int, float)) or not math.isfinite(x):
            return "—"
        if x < 60:
            return f"{x:.3g} s"
        h, rem = divmod(int(round(x)), 3600)
        m, s = divmod(rem, 60)
        return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"
    return ", ".join(f"{k.replace('_seconds', '')} {hms(v)}" for k, v in d.items()) or "—"


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
        ("data sizes (profile)", f"train {prof.get('train_size', '—')}, dev {prof.get('dev_size', '—')}, "
                                 f"max length {prof.get('max_length', '—')}"),
        ("data sizes (runs)", _sizes(data)),
        ("learned (precondition)", f"training loss at θ1 ≤ {rep.learned_fraction_of_chance} × ln(#classes)"),
        ("device", f"{prov.device} (torch threads {prov.torch_threads})"),
        ("created", prov.created),
        ("git revision", join(el("code", prov.git_revision), " (uncommitted changes)" if prov.git_dirty else "")),
        ("python", prov.python),
        ("packages", ", ".join(f"{k} {v}" for k, v in sorted(prov.packages.items()))),
        ("durations", _durations(rep.durations)),
    ]
    land = prof.get("landscape")
    if isinstance(land, Mapping):
        items.append(("landscape settings", ", ".join(f"{k} {v}" for k, v in land.items())))
    return kv_table(items, caption="Setup and provenance")


def runs_table(data: ReportData) -> Safe:
    rows = []
    for r in data.runs:
        s = r.summary
        rows.append([s.setting, s.task, el("span", s.init, class_=f"arm-{slug(s.init)}"), s.seed, s.status,
                     fmt(s.learned), fmt(s.train_loss_theta1), fmt(s.dev_accuracy), s.total_steps,
                     fmt(s.wall_seconds, 4), "; ".join(filter(None, (getattr(s, "error", ""), *r.notes)))])
    return table(["setting", "task", "arm", "seed", "status", "learned", "train loss θ1", "dev acc", "steps",
                  "wall s", "notes"], rows, caption="Training runs")


# -- claims ----------------------------------------------------------------------------------------------------------
def _mean_sd(values: Iterable[Any]) -> str:
    v = np.asarray([x for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "—"
    if v.size == 1:
        return f"{v[0]:.4g}"
    return f"{v.mean():.4g} ± {v.std(ddof=1):.2g}"


def _stat_row(scope: str, st: Any, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[Any]:
    ci = f"[{fmt_signed(st.ci_low)}, {fmt_signed(st.ci_high)}]" if st.n >= 2 else "n/a (fewer than 2 pairs)"
    p = f"{st.positive}/{st.n}" if st.n else "—"
    return [scope, badge(st.verdict), st.n, fmt_signed(st.mean), ci, p,
            *[_mean_sd(r.get(k) for r in rows) for k in keys]]


def comparison_table(comp: Any) -> Safe:
    """Overall and per-task statistics of one comparison, with each arm's raw values (mean ± sd over pairs)."""
    pairs = list(comp.per_pair)
    keys = list(dict.fromkeys(k for r in pairs for k in r if k not in _PAIR_KEYS))
    rows = [_stat_row("all tasks (pooled interval; verdict per task)", comp.overall, pairs, keys)]
    for task, st in comp.per_task.items():
        rows.append(_stat_row(task, st, [r for r in pairs if r.get("task") == task], keys))
    caption = join(el("code", comp.name), " — ", comp.description, " ",
                   el("span", f"[{'primary' if comp.primary else 'secondary'}; effect = {comp.effect_unit}; "
                              f"needs mean ≥ {fmt_signed(comp.min_effect)}]", class_="muted"))
    head = ["scope", "verdict", "n", "mean effect", "95% t-interval", "effects > 0", *[f"{k} (mean ± sd)" for k in keys]]
    parts = [table(head, rows, caption=caption, class_="stats")]
    if comp.excluded:
        parts.append(el("p", f"Excluded pairs ({len(comp.excluded)}):", class_="muted"))
        parts.append(el("ul", [el("li", e) for e in comp.excluded], class_="excluded"))
    return join(parts)


def figure_block(rendered: Any, claim_id: str) -> Safe:
    fid = figure_id(claim_id, rendered.setting, rendered.kind, rendered.task)
    title = rendered.kind.replace("_", " ") + (f" — {rendered.task}" if rendered.task is not None else "")
    return el("figure", png_img(rendered.png, alt=f"{title} ({rendered.setting})", id_=f"{fid}-img"),
              el("figcaption", el("strong", title), ". ", rendered.caption), id=fid, class_="fig",
              data_kind=rendered.kind)


def claim_section(data: ReportData, claim: Any, renderer: FigureRenderer, first: bool = False) -> Safe:
    tasks = list(data.claims.tasks)
    setting_rows = [[s.setting, badge(s.verdict), *[badge(s.per_task[t]) if t in s.per_task else "—" for t in tasks]]
                    for s in claim.settings]
    parts: list[Any] = [
        el("h2", f"{claim.section} · {claim.id} ", badge(claim.verdict), id=claim_anchor(claim.id),
           class_="first" if first else None),
        el("blockquote", claim.statement),
        el("p", el("strong", "Why: "), claim.reason),
        *([el("details", el("summary", "How this claim is measured (thresholds and their justification)"),
              el("pre", str(claim.rationale).strip(), class_="rationale"))] if getattr(claim, "rationale", "") else []),
        table(["setting", "verdict", *tasks], setting_rows, caption="Verdict per training setting and task"),
    ]
    if claim.thresholds:
        parts.append(el("p", "Thresholds fixed before the runs (min effect): ",
                        ", ".join(f"{k} {fmt_signed(v)}" for k, v in claim.thresholds.items()), class_="muted"))
    for s in claim.settings:
        parts.append(el("h3", f"Setting {s.setting} ", badge(s.verdict)))
        parts.extend(comparison_table(c) for c in s.comparisons)
        figs = renderer.for_claim(claim.id, s.setting)
        if figs:
            parts.append(el("h4", "Figures"))
            parts.extend(figure_block(f, claim.id) for f in figs)
    return el("section", parts, class_="claim", data_claim=claim.id)
