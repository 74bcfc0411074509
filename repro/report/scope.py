"""What a run is and what it can decide, on the first screen: the scope box (model against the paper's BERT-large,
data, updates, seeds, settings, hardware), the limits of what this run can decide, the comparisons registered after
a result had been seen, and the revision line; further down, the limitations and the table of deviations from the
paper (as an ML Reproducibility Challenge report has).

Why: a reader who sees "0 of 5 reproduced" must learn on the same screen whether this run *could* have reproduced
anything (a 3-layer model on 256 examples with one seed cannot), and which thresholds were chosen after results were
seen. Everything is read from claims.json and the run's saved metrics; the model sizes are architecture arithmetic
over the registered model's configuration (the run does not record a parameter count).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repro.report.data import ReportData
from repro.report.markup import Safe, el, join, table
from repro.report.summary import readable

PAPER_LAYERS, PAPER_PARAMS = 24, 335_000_000  # BERT-large (Devlin et al. 2019), the paper's model
# The paper's side of the deviations table is read from the ``paper`` profile (repro.config: the project's reading of
# the paper's setup, the one place it is written down), so the table and the profile cannot disagree; what the paper
# does not state is said to be not stated.
PAPER_HARDWARE = "GPUs (not stated further)"
PAPER_INSTRUMENTS = "1D loss curves and 2D loss surfaces, optimisation trajectories, layer-wise curves"


def paper_side() -> dict[str, str]:
    """The paper column of the deviations table, from the ``paper`` profile."""
    from repro.config import get_profile

    p = get_profile("paper")
    return {
        "tasks": "GLUE: " + ", ".join(readable_task(t) for t in p.tasks),
        "data size": "full training sets" if p.train_size is None else f"{p.train_size} training examples",
        "epochs / updates": (f"{p.pretrained.epochs} epochs (both arms), batch {p.pretrained.batch_size}; §5.3's "
                             f"extended training ×{p.overfit_epoch_factor:g} (the paper profile)"),
        "learning rates": (f"pretrained {p.pretrained.learning_rate:g} (within BERT's fine-tuning grid); scratch "
                           f"{p.scratch.learning_rate:g}"),
        "seeds": f"not stated (the paper profile uses {len(p.seeds)})",
    }


def readable_task(task: str) -> str:
    return {"mnli": "MNLI", "rte": "RTE", "sst2": "SST-2", "mrpc": "MRPC"}.get(task, task)


MIN_SEEDS = 3  # claims.base: an interval of the mean effect rests on one pair per seed; fewer decide nothing
SEEN = re.compile(r"after [^;]*results? (?:were|was|had been) seen", re.IGNORECASE)
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
COMMIT = re.compile(r"\b[0-9a-f]{7,40}\b")


@dataclass(frozen=True)
class ModelFacts:
    """A model's size from its registered configuration: layers, hidden width and parameter count (encoder,
    embeddings and pooler; the task head of a few hundred parameters is left out)."""

    name: str
    description: str
    layers: int | None
    hidden: int | None
    parameters: int | None


def bert_parameters(layers: int, hidden: int, intermediate: int, vocab: int = 30522, positions: int = 512,
                    types: int = 2) -> int:
    """The parameter count of a BERT encoder with its embeddings and pooler (BERT-large: 24, 1024, 4096 → 335M)."""
    embeddings = (vocab + positions + types) * hidden + 2 * hidden
    layer = 4 * (hidden * hidden + hidden) + 2 * hidden + (hidden * intermediate + intermediate) \
        + (intermediate * hidden + hidden) + 2 * hidden
    return embeddings + layers * layer + hidden * hidden + hidden


MINILM = {"hidden": 384, "intermediate": 1536, "layers": 6}  # all-MiniLM-L6-v2's config.json


def model_facts(name: str) -> ModelFacts:
    """Facts of a registered model (repro.models.zoo); an unregistered one (a hub id or a path) is named only."""
    from repro.models.zoo import MODELS

    if name not in MODELS:
        return ModelFacts(name, "not a registered model: its size is not recorded", None, None, None)
    spec = MODELS.get(name)
    over = dict(spec.config_overrides)
    if spec.source == "minilm-package" or over:
        layers = int(over.get("num_hidden_layers", spec.num_hidden_layers or MINILM["layers"]))
        hidden = int(over.get("hidden_size", MINILM["hidden"]))
        inter = int(over.get("intermediate_size", MINILM["intermediate"]))
        pos = int(over.get("max_position_embeddings", 512))
        return ModelFacts(name, spec.description, layers, hidden, bert_parameters(layers, hidden, inter, positions=pos))
    return ModelFacts(name, spec.description, spec.num_hidden_layers, None, None)


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n < 1e8 else f"{n / 1e6:.0f}M"


def model_line(name: str) -> str:
    f = model_facts(name)
    size = []
    if f.layers is not None:
        size.append(f"{f.layers} layers" + (f" × {f.hidden} hidden" if f.hidden else ""))
    if f.parameters is not None:
        size.append(f"≈ {_millions(f.parameters)} parameters")
    versus = []
    if f.layers:
        versus.append(f"{f.layers / PAPER_LAYERS:.0%} of the layers")
    if f.parameters:
        versus.append(f"{f.parameters / PAPER_PARAMS:.1%} of the parameters")
    rel = (f"; the paper's BERT-large has {PAPER_LAYERS} layers and {_millions(PAPER_PARAMS)} parameters"
           + (f" (this model: {', '.join(versus)})" if versus else ""))
    return f"{name}: {', '.join(size) or 'size not recorded'} — {f.description}{rel}"


def _per_task(data: ReportData) -> tuple[str, str]:
    """("sst2 256, mrpc 256", "sst2 160 (pretrained) / 160 (scratch), ...") from the runs' saved records."""
    sizes: dict[str, int] = {}
    steps: dict[str, dict[str, set[int]]] = {}
    for r in data.runs:
        if r.metrics is not None:
            sizes.setdefault(r.summary.task, r.metrics.num_train)
        if r.summary.total_steps:
            steps.setdefault(r.summary.task, {}).setdefault(r.summary.init, set()).add(int(r.summary.total_steps))

    def span(v: set[int]) -> str:
        return str(min(v)) if min(v) == max(v) else f"{min(v)}–{max(v)}"
    examples = ", ".join(f"{t} {n}" for t, n in sizes.items()) or "not recorded"
    updates = "; ".join(f"{t}: " + ", ".join(f"{span(v)} ({arm})" for arm, v in arms.items())
                        for t, arms in steps.items()) or "not recorded"
    return examples, updates


def _settings(profile: Mapping[str, Any], names: tuple[str, ...]) -> str:
    out = []
    for s in profile.get("settings", ()):
        if isinstance(s, Mapping):
            extra = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.items() if k != "name" and v is not None)
            out.append(f"{s.get('name', '?')} ({extra})" if extra else str(s.get("name", "?")))
    return "; ".join(out) or ", ".join(names)


def limits(data: ReportData) -> list[str]:
    """What this run cannot decide, from its scale: seeds, arms that did not learn, a smoke profile."""
    rep = data.claims
    out = []
    if len(rep.seeds) < MIN_SEEDS:
        out.append(f"{len(rep.seeds)} seed{'s' if len(rep.seeds) != 1 else ''} per task: fewer than {MIN_SEEDS} "
                   f"seeds decide nothing")
    failed = []
    for task in rep.tasks:
        for arm in ("pretrained", "scratch"):
            runs = [r for r in rep.runs if r.task == task and r.init == arm]
            n = sum(1 for r in runs if not r.learned)
            if runs and n:
                failed.append(f"{task} {arm} {n} of {len(runs)}")
    if failed:
        out.append(f"pairs with a run that did not learn decide nothing ({', '.join(failed)})")
    if rep.profile.get("name") == "smoke":
        out.append("a smoke profile checks the pipeline, not the paper")
    return out


def data_line(data: ReportData) -> str:
    """Examples per task (train/dev, from the runs' metrics), whether they are capped subsets, length, source."""
    rep, prof = data.claims, data.claims.profile
    sizes: dict[str, tuple[int, int]] = {}
    for r in data.runs:
        if r.metrics is not None:
            sizes.setdefault(r.summary.task, (r.metrics.num_train, r.metrics.num_dev))
    per_task = ", ".join(f"{t} {n}/{d}" for t, (n, d) in sizes.items()) or "unknown"
    # the profile caps each split: a split larger than the cap is a subset (an excerpt of the GLUE task)
    cap = (f" — capped at train ≤ {prof.get('train_size', 'all')}, dev ≤ {prof.get('dev_size', 'all')} per task: "
           f"subsets of the GLUE splits that are larger" if prof.get("train_size") or prof.get("dev_size") else "")
    return (f"train/dev examples {per_task}{cap}; max length {prof.get('max_length', '—')}; "
            f"source {rep.data_source}")


def _short_model(name: str) -> str:
    f = model_facts(name)
    size = ", ".join(x for x in (f"{f.layers} layers × {f.hidden}" if f.layers and f.hidden else
                                 f"{f.layers} layers" if f.layers else "",
                                 f"≈ {_millions(f.parameters)} parameters" if f.parameters else "") if x)
    share = f"; {f.parameters / PAPER_PARAMS:.1%} of its parameters" if f.parameters else ""
    return (f"{name} ({size or 'size not recorded'}) — the paper's BERT-large has {PAPER_LAYERS} layers, "
            f"{_millions(PAPER_PARAMS)} parameters{share}")


def scope_box(data: ReportData) -> Safe:
    """The first-screen box: what was run, and what it can and cannot decide. One compact paragraph per question,
    not a table: the verdict grid below it must stay on the first screen (tests/test_report_browser.py)."""
    rep, prov, prof = data.claims, data.claims.provenance, data.claims.profile
    _, updates = _per_task(data)
    lim = limits(data)
    seeds = f"{len(rep.seeds)} seed{'s' if len(rep.seeds) != 1 else ''} ({', '.join(map(str, rep.seeds))})"
    run = join(el("strong", "Scope: "), "model ", el("span", _short_model(str(prof.get("model", "?"))), class_="model"),
               " · ", data_line(data), " · updates per run ", updates, " · ", seeds, " · settings ",
               _settings(prof, rep.settings), " · hardware ", f"{prov.device}, torch threads {prov.torch_threads}",
               " · revision ", el("code", prov.git_revision[:12], title=prov.git_revision),
               " (uncommitted changes)" if prov.git_dirty else "", f", {prov.created}.")
    can = join(el("strong", "Cannot decide: "), "; ".join(lim) + "." if lim else
               f"nothing ruled out by scale ({len(rep.seeds)} seeds, every arm learned); the limits of a model and "
               f"data far smaller than the paper's are under Limitations.")
    return el("section", el("p", run), el("p", can, class_="can-decide"), class_="scope", id="scope",
              aria_label="Scope of this run")


def deviations(data: ReportData) -> Safe:
    """Deviations from the paper, one row per aspect (an ML Reproducibility Challenge report's table)."""
    rep, prov, prof = data.claims, data.claims.provenance, data.claims.profile
    examples, updates = _per_task(data)
    hyper = {arm: prof.get(arm) if isinstance(prof.get(arm), Mapping) else {} for arm in ("pretrained", "scratch")}
    paper = paper_side()
    rows = [
        ["model", f"BERT-large: {PAPER_LAYERS} layers, {_millions(PAPER_PARAMS)} parameters",
         model_line(str(prof.get("model", "?")))],
        ["data size", paper["data size"], f"{examples} training examples per task; dev ≤ "
                                                   f"{prof.get('dev_size', 'all')}; max length "
                                                   f"{prof.get('max_length', '—')}"],
        ["tasks", paper["tasks"], ", ".join(rep.tasks)],
        ["epochs / updates", paper["epochs / updates"], "epochs " + ", ".join(f"{a} {h.get('epochs', '—')}"
                                                                 for a, h in hyper.items()) + f"; updates {updates}"],
        ["learning rates", paper["learning rates"], ", ".join(f"{a} {h.get('learning_rate', '—')}" for a, h in hyper.items())],
        ["seeds", paper["seeds"], f"{len(rep.seeds)} per task and arm"],
        ["hardware", PAPER_HARDWARE, prov.device],
        ["instruments", PAPER_INSTRUMENTS, "the paper's curves and surfaces, plus Hessian λ_max, trace and "
                                          "sharpness measures, each a registered comparison (see each claim)"],
    ]
    return table(["aspect", "paper", "this run"], rows, class_="deviations",
                 caption="Deviations from the paper (the paper's side as the project's paper profile reads it: repro profiles show paper)")


def limitations(data: ReportData) -> Safe:
    """The "Limitations" section: the scale limits and what no run of this project can settle."""
    examples, _ = _per_task(data)
    scale = (f"scale: model {_short_model(str(data.claims.profile.get('model', '?')))}; training examples per task "
             f"{examples}. A verdict here is about this scale, not about BERT-large on the full tasks")
    items = [*limits(data), scale,
             "every minimum effect is the project's registered choice: the paper states its claims in words, "
             "without thresholds",
             "this project decides on paired seeds and 95% intervals; the paper shows figures, so a verdict here "
             "can differ from the paper's picture without contradicting the runs behind it"]
    return el("section", el("h2", "Limitations", id="limitations"), el("ul", [el("li", x) for x in items]),
              deviations(data), class_="limitations")


@dataclass(frozen=True)
class LateRegistration:
    """A comparison whose measure or threshold was registered after some result had been seen."""

    name: str
    text: str
    dates: tuple[str, ...]
    commits: tuple[str, ...]


def late_registrations(data: ReportData) -> list[LateRegistration]:
    """Every comparison (once) whose ``registered`` text says it was fixed after results were seen."""
    out: dict[str, LateRegistration] = {}
    for c in data.claims.claims:
        for s in c.settings:
            for comp in s.comparisons:
                text = str(getattr(comp, "registered", "") or "")
                if comp.name in out or not SEEN.search(text):
                    continue
                commits = tuple(dict.fromkeys(m for m in COMMIT.findall(text) if not m.isdigit()))
                out[comp.name] = LateRegistration(comp.name, text, tuple(dict.fromkeys(DATE.findall(text))),
                                                  commits)
    return list(out.values())


def disclosure(data: ReportData) -> Safe | None:
    """The late registrations, open on the first screen (not inside a collapsed block)."""
    late = late_registrations(data)
    if not late:
        return None
    rows = [[readable(x.name), ", ".join(x.dates) or "—", ", ".join(x.commits) or "—", x.text] for x in late]
    return el("section",
              el("h2", "Registered after results were seen", class_="disclosure-title"),
              el("p", f"{len(late)} comparison{'s' if len(late) != 1 else ''} of this run had its measure, threshold "
                      "or precondition registered after results of earlier runs had been seen. Their verdicts are "
                      "shown as computed; read them as less independent of the data than the others.",
                 class_="muted"),
              table(["comparison", "date", "commit", "registered (as recorded)"], rows, class_="late"),
              class_="disclosure", id="disclosure")


def revision_line(data: ReportData, code_revision: str | None = None) -> str:
    """One line when the claims.json cannot be tied to this code's science: no schema version, or a recorded
    science revision other than ``code_revision`` (the code's, repro.pipeline.revision.science_revision, passed in
    by the caller: the report reads saved results and does not import the pipeline). ``""`` when neither applies."""
    from repro.results.records import SCHEMA_VERSION, UNVERSIONED

    rep = data.claims
    parts = []
    if rep.schema_version == UNVERSIONED:
        parts.append(f"claims.json has no schema_version (written before versioning; read by the version "
                     f"{SCHEMA_VERSION} loader, newer fields take their defaults)")
    recorded = str(getattr(rep, "science_revision", "") or "")
    if recorded and code_revision and recorded != code_revision:
        parts.append(f"its verdicts were computed at science revision {recorded}; this code is at "
                     f"{code_revision}, so rerunning the claims may give other numbers")
    return "; ".join(parts)
