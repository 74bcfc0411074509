"""Can each primary comparison come out either way at a profile's size? A check to run *before* the verdict runs.

Issue 27 found that the design decided most verdicts before any data: at the cpu profile §5.1, §5.3 and §6 could
never be reproduced (every basin censored, MRPC's pretrained runs never at the matched loss, neither arm beating
the majority rate), whatever the runs showed. ``repro profiles check NAME [--reference RUN]`` says, for every
primary comparison and task, whether it can be decided, and why not:

* ``seeds`` -- at least :data:`MIN_SEEDS` seeds per task: with 2 the t multiplier is 12.7 and no interval excludes
  anything of a plausible size.
* ``generalisation`` -- for comparisons that need one or both arms to beat the majority rate: the dev accuracy the
  binomial test needs at this dev size (and Bonferroni k for the best of k extended-training evaluations), against
  the accuracy each arm is expected to reach -- from the reference run when given, else the profile's pilot
  (``Profile.pilot_dev_accuracy``). A task outside the profile's registered ``generalization_tasks`` is reported
  as out of scope.
* With a reference run (a claims run directory evaluated by the current code, e.g. ``tests/fixtures/golden/cpu``
  re-evaluated with ``python -m tests.golden --reevaluate cpu``):

  - ``precision`` -- the 95% half-width the reference's per-pair spread predicts at this profile's seed count,
    ``t_{0.975, n−1} · sd / √n``, must be at most |min effect|: then a null effect is declared not reproduced and
    an effect of twice the threshold reproduced (:data:`PRECISION_RULE`);
  - ``valid pairs`` -- the reference's pairs must not all be excluded (censored on both sides, not converged, not
    generalised, undefined): when they all were and the profile has not changed the size that caused it (grid
    radius for censoring, dev size for the binomial test), the comparison cannot be decided here either;
  - ``constant`` -- a comparison whose reference effects had zero variance is undecidable.

  A reference of another profile (the cpu run for the standard profile) is an estimate from a different model and
  data; the check says so.

Each check is ``pass``, ``fail`` or ``unknown`` (not enough information: say what would settle it, e.g. a pilot).
A profile passes when nothing fails. The thresholds here are the claims' own; the check adds none.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

from repro.config import Profile
from repro.results import ClaimsReport

from claims.base import CLAIMS, CONFIDENCE, GENERALIZATION_ALPHA, UNDECIDABLE

MIN_SEEDS = 3
PRECISION_RULE = "predicted 95% half-width ≤ |min effect|"
PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


@dataclass(frozen=True)
class Check:
    claim: str
    comparison: str
    task: str  # "*" for a check that does not depend on the task
    check: str
    status: str  # pass / fail / unknown
    detail: str


@dataclass(frozen=True)
class Decidability:
    profile: str
    reference: str | None  # the reference run directory and its profile, when one was given
    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == FAIL)

    @property
    def passes(self) -> bool:
        return not self.failed

    def summary(self) -> dict[str, int]:
        return dict(Counter(c.status for c in self.checks))


def needed_accuracy(n_dev: int, majority: float, alpha: float) -> float:
    """The smallest dev accuracy k/n whose one-sided exact binomial p-value against ``majority`` is below
    ``alpha`` (claims.base.generalization_p_value), or nan when even n/n is not enough."""
    if n_dev <= 0:
        return float("nan")
    # the tail P(X ≥ k) falls with k: find the first k with P(X ≥ k) < alpha
    for k in range(int(math.floor(majority * n_dev)), n_dev + 1):
        if stats.binom.sf(k - 1, n_dev, majority) < alpha:
            return k / n_dev
    return float("nan")


def dev_labels(task: str, data_dir: str | Path | None) -> list[int] | None:
    """The dev split's labels (None when the data cannot be found: the check then says so)."""
    from repro.data import get_task, load_split
    from repro.errors import ReproError

    try:
        return [int(x) for x in load_split(task, get_task(task).dev_split, data_dir)["label"]]
    except (ReproError, OSError):
        return None


def _extended_evaluations(profile: Profile) -> int:
    """How many dev evaluations after step 0 an extended-training run records (the Bonferroni k of §5.3)."""
    setting = next((s for s in profile.settings if s.name == profile.extended_setting), profile.settings[0])
    cfg = profile.train_config(profile.tasks[0], "pretrained", profile.seeds[0] if profile.seeds else 0, setting,
                               overfit=True)
    return max(1, cfg.hyper.epochs * max(1, cfg.evals_per_epoch))


def _reference_accuracy(ref: ClaimsReport | None, task: str, init: str, point: str) -> float | None:
    if ref is None:
        return None
    # claims.json keeps each run's final dev accuracy; for the best of the extended-training evaluations (§5.3) it
    # is a conservative stand-in (the best is at least the last evaluation of the standard schedule)
    runs = [r for r in ref.runs if r.task == task and r.init == init and r.status == "complete"]
    accs = [r.dev_accuracy for r in runs if math.isfinite(r.dev_accuracy)]
    return sum(accs) / len(accs) if accs else None


def _comparison_result(ref: ClaimsReport, claim: str, comparison: str, setting: str | None):  # noqa: ANN202
    c = next((c for c in ref.claims if c.id == claim), None)
    if c is None:
        return None
    settings = [s for s in c.settings if s.comparisons]
    chosen = next((s for s in settings if s.setting == setting), settings[0] if settings else None)
    if chosen is None:
        return None
    return next((r for r in chosen.comparisons if r.name == comparison), None)


def _reasons_changed(profile: Profile, ref_profile: dict, reasons: Sequence[str]) -> str | None:
    """Why the reference's exclusions may not carry over: a size the profile changed that caused them."""
    ls, rls = profile.landscape, ref_profile.get("landscape", {})
    text = " ".join(reasons)
    if "censored" in text and (ls.surface_radius > rls.get("surface_radius", ls.surface_radius)
                               or ls.random_width_radius > rls.get("random_width_radius", ls.random_width_radius)):
        return (f"the reference was censored at radius {rls.get('surface_radius')}/{rls.get('random_width_radius')}; "
                f"this profile's grid radius is {ls.surface_radius}/{ls.random_width_radius}")
    if "generalise" in text and profile.dev_size != ref_profile.get("dev_size"):
        return f"dev size {ref_profile.get('dev_size')} in the reference, {profile.dev_size} here"
    if "not converged" in text and (profile.pretrained != ref_profile.get("pretrained")):
        return "the training recipe differs from the reference's"
    if "version" in text and "predates" in text:
        return "the reference's analyses predate this measure"
    return None


def check_profile(profile: Profile, reference: Path | None = None, *,
                  data_dir: str | Path | None = None) -> Decidability:
    """Run every check for every primary comparison of every registered claim (see the module docstring)."""
    ref: ClaimsReport | None = None
    ref_profile: dict = {}
    ref_label = None
    if reference is not None:
        from repro.results import load_claims

        ref = load_claims(Path(reference))
        ref_profile = ref.profile
        ref_label = f"{reference} (profile {ref_profile.get('name')})"
    other = ref is not None and ref_profile.get("name") != profile.name
    est = " (estimate from another profile's run)" if other else ""
    n = len(profile.seeds)
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) if n >= 2 else float("inf")
    labels = {task: dev_labels(task, data_dir) for task in profile.tasks}
    k_ext = _extended_evaluations(profile)
    out: list[Check] = []
    for claim_id in CLAIMS.names():
        claim = CLAIMS.get(claim_id)
        for comp in claim.comparisons:
            if not comp.primary:
                continue

            def add(task: str, check: str, status: str, detail: str, _c=comp, _id=claim_id) -> None:  # noqa: ANN001
                out.append(Check(_id, _c.name, task, check, status, detail))

            add("*", "seeds", PASS if n >= MIN_SEEDS else FAIL,
                f"{n} seeds per task (t multiplier {t:.2f}); needs ≥ {MIN_SEEDS}")
            gens = [r for r in comp.requires if getattr(r, "kind", "") == "generalization"]
            for task in profile.tasks:
                for req in gens:
                    if (req.arms == "both" and profile.generalization_tasks is not None
                            and task not in profile.generalization_tasks):
                        add(task, "generalisation", PASS, "out of the registered scope: "
                            + (profile.generalization_scope_reason or "Profile.generalization_tasks"))
                        continue
                    out.append(_generalisation_check(claim_id, comp.name, task, req, profile, labels[task], k_ext,
                                                     ref if not other else None))
                if ref is None:
                    add(task, "precision", UNKNOWN, "no reference run: give --reference RUN_DIR to predict the "
                        "interval's width from its per-pair spread")
                    continue
                res = _comparison_result(ref, claim_id, comp.name, None)
                st = res.per_task.get(task) if res is not None else None
                if st is None:
                    add(task, "valid pairs", UNKNOWN, f"the reference has no {comp.name} result for {task}{est}")
                    continue
                if st.verdict == UNDECIDABLE:
                    add(task, "constant", FAIL, f"the reference's effects were constant ({st.note}){est}")
                    continue
                if st.n == 0:
                    reasons = [e.split(": ", 1)[-1] for e in res.excluded if e.startswith(f"{task}/")]
                    common = Counter(reasons).most_common(1)[0][0] if reasons else "no pairs"
                    changed = _reasons_changed(profile, ref_profile, reasons)
                    add(task, "valid pairs", UNKNOWN if changed else FAIL,
                        f"every reference pair was excluded ({common[:160]}){est}"
                        + (f"; may change here: {changed}" if changed else ""))
                    continue
                if st.n < 2 or not math.isfinite(st.sd):
                    add(task, "precision", UNKNOWN, f"{st.n} valid reference pair(s): no spread to predict from{est}")
                    continue
                half = t * st.sd / math.sqrt(n)
                ok = half <= abs(comp.min_effect)
                add(task, "precision", PASS if ok else FAIL,
                    f"reference sd {st.sd:.3g} over {st.n} pairs -> half-width {half:.3g} at {n} seeds vs |min "
                    f"effect| {abs(comp.min_effect):.3g}{est}")
    return Decidability(profile.name, ref_label, tuple(out))


def _generalisation_check(claim_id: str, comp: str, task: str, req, profile: Profile,  # noqa: ANN001
                          labels: list[int] | None, k_ext: int, ref: ClaimsReport | None) -> Check:
    if labels is None:
        return Check(claim_id, comp, task, "generalisation", UNKNOWN,
                     "dev data not found (set --data-dir or REPRO_DATA_DIR): the majority rate is unknown")
    n_dev = min(len(labels), profile.dev_size) if profile.dev_size else len(labels)
    majority = max(Counter(labels).values()) / len(labels)
    k = k_ext if req.point == "best_extended" else 1
    need = needed_accuracy(n_dev, majority, GENERALIZATION_ALPHA / k)
    arms = ("pretrained", "scratch")
    expected = {}
    source = {}
    for arm in arms:
        acc = _reference_accuracy(ref, task, arm, req.point)
        if acc is not None:
            expected[arm], source[arm] = acc, "reference"
        elif f"{task}/{arm}" in profile.pilot_dev_accuracy:
            expected[arm], source[arm] = profile.pilot_dev_accuracy[f"{task}/{arm}"], "pilot"
    where = f"needs dev accuracy ≥ {need:.3f} (majority {majority:.3f}, {n_dev} examples, α = {GENERALIZATION_ALPHA}"
    where += f"/{k})" if k > 1 else ")"
    shown = ", ".join(f"{a} {v:.3f} ({source[a]})" for a, v in expected.items()) or "no expectation"
    passing = {a: v >= need for a, v in expected.items()}
    if req.arms == "both":
        if any(v is False for v in passing.values()):
            status = FAIL
        elif len(passing) == 2:
            status = PASS
        else:
            status = UNKNOWN
    else:
        if any(passing.values()):
            status = PASS
        elif len(passing) == 2:
            status = FAIL
        else:
            status = UNKNOWN
    hint = "" if status != UNKNOWN else "; a pilot on the tuning seed would settle it"
    return Check(claim_id, comp, task, "generalisation", status, f"{req.arms} arm(s) {where}; expected {shown}{hint}")


def format_decidability(d: Decidability) -> str:
    """A table a person reads before spending GPU time."""
    lines = [f"decidability of profile {d.profile}" + (f", reference {d.reference}" if d.reference else ""),
             f"{'claim':27s} {'comparison':34s} {'task':5s} {'check':15s} {'status':8s} detail"]
    for c in d.checks:
        lines.append(f"{c.claim:27s} {c.comparison:34s} {c.task:5s} {c.check:15s} {c.status:8s} {c.detail}")
    s = d.summary()
    lines.append(f"{s.get(PASS, 0)} pass, {s.get(FAIL, 0)} fail, {s.get(UNKNOWN, 0)} unknown: "
                 + ("every primary can be decided as far as the evidence shows" if d.passes else
                    "some primaries cannot come out either way at this size"))
    return "\n".join(lines)

