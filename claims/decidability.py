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
  (``Profile.pilot_dev_accuracy``). Dev labels come from a local GLUE copy only (``--data-dir`` or
  ``REPRO_DATA_DIR``): the check never reaches the network, and without a copy it says so (unknown).
* With a reference run (a claims run directory evaluated by the current code, e.g. ``tests/fixtures/golden/cpu``
  re-evaluated with ``python -m tests.golden --reevaluate cpu``):

  - ``precision`` -- the 95% half-width the reference's per-pair spread predicts at this profile's seed count,
    ``t_{0.975, n−1} · sd / √n``, must be at most |min effect|: then a null effect is declared not reproduced and
    an effect of twice the threshold reproduced (:data:`PRECISION_RULE`);
  - ``valid pairs`` -- the reference's pairs must not all be excluded (censored on both sides, not converged, not
    generalised, undefined): when they all were and the profile has not changed the size that caused it (grid
    radius for censoring, dev size for the binomial test, the setting's training recipe for convergence), the
    comparison cannot be decided here either;
  - ``constant`` -- a comparison whose reference effects had zero variance is undecidable;
  - ``learned`` -- per task and arm the comparison needs (``Comparison.arms``), the fraction of the reference's
    runs that learned (training loss at θ1 ≤ 0.75 ln C, ``RunSummary.learned``): a reference run that did not learn
    fails the check (which seeds, and their loss against the level); a pair with such an arm is excluded;
  - ``converged`` -- for comparisons that require convergence (a precondition with ``kind == "convergence"``,
    claims.preconditions), whether every reference run of the arms it names converged (``RunSummary.converged``,
    the reason quoted when not); a claims.json written before the record existed says nothing (unknown).

  Without a reference these are unknown. ``repro profiles check NAME`` without ``--reference`` uses the profile's
  committed claims pilot (:func:`committed_pilot`: ``reports/pilots/NAME/claims.json``, a claims run at the tuning
  seeds) when there is one. A reference of another profile (the cpu run for the standard profile) is
  an estimate from a different model and data; the check says so.
* ``scope`` -- a task outside the profile's registered ``generalization_tasks`` for a comparison that needs both
  arms to generalise is not evaluated there (claims.evaluate.in_scope): one ``scoped`` check, nothing else.

Each check is ``pass``, ``fail``, ``unknown`` (not enough information: it says what would settle it, e.g. a pilot or
a reference run) or ``scoped``. A profile passes only when every check is ``pass`` or ``scoped``: an unknown is not
a pass. The thresholds here are the claims' own; the check adds none.
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
from claims.evaluate import in_scope

MIN_SEEDS = 3
PRECISION_RULE = "predicted 95% half-width ≤ |min effect|"
PASS, FAIL, UNKNOWN, SCOPED = "pass", "fail", "unknown", "scoped"
STATUSES = (PASS, FAIL, UNKNOWN, SCOPED)
_REFERENCE = "give --reference RUN_DIR: a claims run (of this profile, or a pilot) to predict from"
PILOTS_DIR = Path(__file__).resolve().parents[1] / "reports" / "pilots"


def committed_pilot(profile_name: str, pilots_dir: Path | None = None) -> Path | None:
    """The profile's committed claims pilot (a claims run at its tuning seeds, results only: ``claims.json``),
    the default reference of ``repro profiles check NAME``; None when the profile has none (a checkout without
    ``reports/``, e.g. an installed wheel, has none either)."""
    d = (PILOTS_DIR if pilots_dir is None else pilots_dir) / profile_name
    return d if (d / "claims.json").is_file() else None


@dataclass(frozen=True)
class Check:
    claim: str
    comparison: str
    task: str  # "*" for a check that does not depend on the task
    check: str
    status: str  # pass / fail / unknown / scoped
    detail: str
    settle: str = ""  # for an unknown: what would settle it


@dataclass(frozen=True)
class Decidability:
    profile: str
    reference: str | None  # the reference run directory and its profile, when one was given
    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == FAIL)

    @property
    def unknown(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == UNKNOWN)

    @property
    def passes(self) -> bool:
        """Every check passed or was scoped out: an unknown is not a pass."""
        return all(c.status in (PASS, SCOPED) for c in self.checks)

    def summary(self) -> dict[str, int]:
        """Checks by status, every status (zeros included)."""
        counts = Counter(c.status for c in self.checks)
        return {s: counts.get(s, 0) for s in STATUSES}


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
    """The dev split's labels from a local GLUE copy (``data_dir``, else ``REPRO_DATA_DIR``); None when there is
    none or it lacks the split (the check then says so). Never the hub: the check needs no network."""
    from repro.data import get_task, load_split, resolve_data_dir
    from repro.errors import ReproError

    local = resolve_data_dir(data_dir)
    if local is None:
        return None
    try:
        return [int(x) for x in load_split(task, get_task(task).dev_split, local)["label"]]
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
    chosen = _reference_setting(ref, claim, setting)
    if chosen is None:
        return None
    return next((r for r in chosen.comparisons if r.name == comparison), None)


def _reference_setting(ref: ClaimsReport, claim: str, setting: str | None):  # noqa: ANN202
    """The reference's result of ``claim`` in ``setting``, else in its first setting with comparisons."""
    c = next((c for c in ref.claims if c.id == claim), None)
    if c is None:
        return None
    settings = [s for s in c.settings if s.comparisons]
    return next((s for s in settings if s.setting == setting), settings[0] if settings else None)


def _recipe(profile: Profile | dict, setting: str | None) -> tuple | None:
    """Both arms' training hyperparameters in ``setting`` (None when the profile cannot be read or lacks it)."""
    try:
        prof = profile if isinstance(profile, Profile) else Profile.from_json(profile)
    except (TypeError, ValueError, KeyError):
        return None
    chosen = next((s for s in prof.settings if s.name == setting), None)
    if chosen is None:
        return None
    return tuple(prof.hyper(arm, chosen) for arm in ("pretrained", "scratch"))


def _reasons_changed(profile: Profile, ref_profile: dict, reasons: Sequence[str], setting: str | None = None
                     ) -> str | None:
    """Why the reference's exclusions (in its ``setting``) may not carry over: a size or recipe the profile changed
    that caused them."""
    ls, rls = profile.landscape, ref_profile.get("landscape", {})
    text = " ".join(reasons)
    if "censored" in text and (ls.surface_radius > rls.get("surface_radius", ls.surface_radius)
                               or ls.random_width_radius > rls.get("random_width_radius", ls.random_width_radius)):
        return (f"the reference was censored at radius {rls.get('surface_radius')}/{rls.get('random_width_radius')}; "
                f"this profile's grid radius is {ls.surface_radius}/{ls.random_width_radius}")
    if "generalise" in text and profile.dev_size != ref_profile.get("dev_size"):
        return f"dev size {ref_profile.get('dev_size')} in the reference, {profile.dev_size} here"
    if "not converged" in text and _recipe(profile, setting) != _recipe(ref_profile, setting):
        return f"the training recipe (setting {setting}: both arms' rates, epochs, batch) differs from the reference's"
    if "version" in text and "predates" in text:
        return "the reference's analyses predate this measure"
    return None


def same_design(stored: dict, profile: Profile) -> bool:
    """Whether a run's stored profile is ``profile``'s (its own run, not an estimate from another profile's): the
    same name, or one of the names it was registered under before (``Profile.former_names``: cpu -> cpu-2026-11),
    and the same model and tasks -- so the runs of an old profile are not taken for those of the new one that took
    its name."""
    return (stored.get("name") in (profile.name, *profile.former_names) and stored.get("model") == profile.model
            and tuple(stored.get("tasks") or ()) == tuple(profile.tasks))


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
    other = ref is not None and not same_design(ref_profile, profile)
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

            def add(task: str, check: str, status: str, detail: str, settle: str = "", _c=comp,  # noqa: ANN001
                    _id=claim_id) -> None:
                out.append(Check(_id, _c.name, task, check, status, detail, settle))

            add("*", "seeds", PASS if n >= MIN_SEEDS else FAIL,
                f"{n} seeds per task (t multiplier {t:.2f}); needs ≥ {MIN_SEEDS}")
            gens = [r for r in comp.requires if getattr(r, "kind", "") == "generalization"]
            convs = [r for r in comp.requires if getattr(r, "kind", "") == "convergence"]
            scope = in_scope(comp, profile.generalization_tasks)
            for task in profile.tasks:
                if scope is not None and task not in scope:
                    # not evaluated on this task at all (claims.evaluate): nothing else to check here
                    add(task, "scope", SCOPED, "out of the registered scope: "
                        + (profile.generalization_scope_reason or "Profile.generalization_tasks"))
                    continue
                for req in gens:
                    out.append(_generalisation_check(claim_id, comp.name, task, req, profile, labels[task], k_ext,
                                                     ref if not other else None))
                out.append(_learned_check(claim_id, comp, task, ref, est))
                for req in convs:
                    out.append(_converged_check(claim_id, comp.name, task, req, ref, est))
                if ref is None:
                    add(task, "precision", UNKNOWN, "no reference run: the interval's width at this size cannot be "
                        "predicted", _REFERENCE)
                    continue
                res = _comparison_result(ref, claim_id, comp.name, None)
                st = res.per_task.get(task) if res is not None else None
                if st is None:
                    add(task, "valid pairs", UNKNOWN, f"the reference has no {comp.name} result for {task}{est}",
                        f"a reference run that measured {comp.name} on {task}")
                    continue
                if st.verdict == UNDECIDABLE:
                    add(task, "constant", FAIL, f"the reference's effects were constant ({st.note}){est}")
                    continue
                if st.n == 0:
                    reasons = [e.split(": ", 1)[-1] for e in res.excluded if e.startswith(f"{task}/")]
                    common = Counter(reasons).most_common(1)[0][0] if reasons else "no pairs"
                    setting = _reference_setting(ref, claim_id, None)
                    changed = _reasons_changed(profile, ref_profile, reasons,
                                               setting.setting if setting is not None else None)
                    add(task, "valid pairs", UNKNOWN if changed else FAIL,
                        f"every reference pair was excluded ({common[:160]}){est}"
                        + (f"; may change here: {changed}" if changed else ""),
                        "a pilot or reference run at this profile's size" if changed else "")
                    continue
                if st.n < 2 or not math.isfinite(st.sd):
                    add(task, "precision", UNKNOWN, f"{st.n} valid reference pair(s): no spread to predict from{est}",
                        "a reference run with at least 2 valid pairs on this task")
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
                     "no local dev data: the majority rate is unknown",
                     f"a local GLUE copy with {task}'s dev split (--data-dir or REPRO_DATA_DIR)")
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
    settle = "" if status != UNKNOWN else (f"a pilot on the tuning seed giving the dev accuracy of each {task} arm "
                                           "without an expectation (Profile.pilot_dev_accuracy), or a reference "
                                           "run of this profile")
    return Check(claim_id, comp, task, "generalisation", status, f"{req.arms} arm(s) {where}; expected {shown}",
                 settle)


def _reference_runs(ref: ClaimsReport, task: str, arm: str) -> list:
    """The reference's runs of ``task`` and ``arm`` that have a result (a failed run says nothing either way)."""
    return [r for r in ref.runs if r.task == task and r.init == arm and r.status != "failed"]


def _where(runs: Sequence) -> str:
    return ", ".join(f"{r.setting} seed {r.seed}" for r in runs)


def _learned_check(claim_id: str, comp, task: str, ref: ClaimsReport | None, est: str) -> Check:  # noqa: ANN001
    """Did every reference run of the arms ``comp`` needs learn (claims.base.LEARNED_FRACTION_OF_CHANCE)?"""
    if ref is None:
        return Check(claim_id, comp.name, task, "learned", UNKNOWN,
                     "no reference run: whether the arms learn at this size is not known", _REFERENCE)
    from repro.data import get_task

    frac = ref.learned_fraction_of_chance
    level = frac * math.log(get_task(task).num_labels)
    rule = f"training loss at θ1 ≤ {frac:g} ln C = {level:.3f}"
    shares, missing, failed = [], [], []
    for arm in comp.arms:
        runs = _reference_runs(ref, task, arm)
        if not runs:
            missing.append(arm)
            continue
        shares.append(f"{arm} {sum(r.learned for r in runs)}/{len(runs)} learned")
        bad = [r for r in runs if not r.learned]
        if bad:
            losses = ", ".join(f"{r.setting} seed {r.seed}: " + (f"{r.train_loss_theta1:.3f}"
                                                                  if r.train_loss_theta1 is not None else r.status)
                               for r in bad)
            failed.append(f"{arm} did not learn in {len(bad)} run(s) ({losses}; needs ≤ {level:.3f})")
    detail = "; ".join(shares) + f" ({rule}){est}"
    if failed:
        return Check(claim_id, comp.name, task, "learned", FAIL, detail + "; " + "; ".join(failed)
                     + ": such a pair is excluded")
    if missing:
        return Check(claim_id, comp.name, task, "learned", UNKNOWN,
                     (detail + "; " if shares else "")
                     + f"the reference has no {task} run of {', '.join(missing)}{est}",
                     f"a reference run that trained {', '.join(missing)} on {task}")
    return Check(claim_id, comp.name, task, "learned", PASS, detail)


def _precondition_arms(req) -> tuple[str, ...]:  # noqa: ANN001
    arms = getattr(req, "arms", "both")
    if arms in ("both", "any"):
        return ("pretrained", "scratch")
    return (arms,) if isinstance(arms, str) else tuple(arms)


def _converged_check(claim_id: str, comp: str, task: str, req, ref: ClaimsReport | None,  # noqa: ANN001
                     est: str) -> Check:
    """Did every reference run of the arms a convergence precondition names converge (RunSummary.converged)?"""
    if ref is None:
        return Check(claim_id, comp, task, "converged", UNKNOWN,
                     "no reference run: whether the arms converge at this size is not known", _REFERENCE)
    arms = _precondition_arms(req)
    shares, missing, unrecorded, failing = [], [], [], {}
    for arm in arms:
        runs = _reference_runs(ref, task, arm)
        if not runs:
            missing.append(arm)
            continue
        known = [r for r in runs if r.converged is not None]
        gaps = [r for r in runs if r.converged is None]
        shares.append(f"{arm} {sum(bool(r.converged) for r in known)}/{len(known)} converged"
                      + (f" ({len(gaps)} more without a record)" if gaps else "") if known
                      else f"{arm}: no convergence record in its {len(gaps)} run(s)")
        unrecorded += gaps
        bad = [r for r in known if not r.converged]
        if bad:
            failing[arm] = bad
    # "any": the pair qualifies when one arm converged, so only every arm failing somewhere is a failure
    fails = (len(failing) == len(arms)) if getattr(req, "arms", "both") == "any" else bool(failing)
    detail = "; ".join(shares) + est
    if fails:
        reasons = []
        for arm, bad in failing.items():
            by_reason: dict[str, list] = {}
            for r in bad:
                by_reason.setdefault(r.convergence or "no reason recorded", []).append(r)
            reasons += [f'{arm} {_where(rs)}: "{why}"' for why, rs in by_reason.items()]
        return Check(claim_id, comp, task, "converged", FAIL, detail + "; not converged: " + "; ".join(reasons)
                     + "; such a pair is excluded")
    if unrecorded:
        return Check(claim_id, comp, task, "converged", UNKNOWN,
                     detail + "; the reference's claims.json was written before runs recorded convergence",
                     "the reference re-evaluated by the current code (e.g. python -m tests.golden --reevaluate "
                     "NAME for a golden run), or a new reference run")
    if missing:
        return Check(claim_id, comp, task, "converged", UNKNOWN,
                     (detail + "; " if shares else "") + f"the reference has no {task} run of {', '.join(missing)}"
                     + ("" if shares else est),
                     f"a reference run that trained {', '.join(missing)} on {task}")
    return Check(claim_id, comp, task, "converged", PASS, detail)


def format_decidability(d: Decidability) -> str:
    """A table a person reads before spending GPU time, then the failed and the unknown checks by name (an
    unknown is not a pass: each says what would settle it)."""
    lines = [f"decidability of profile {d.profile}" + (f", reference {d.reference}" if d.reference else ""),
             f"{'claim':27s} {'comparison':34s} {'task':5s} {'check':15s} {'status':8s} detail"]
    for c in d.checks:
        lines.append(f"{c.claim:27s} {c.comparison:34s} {c.task:5s} {c.check:15s} {c.status:8s} {c.detail}")
    if d.failed:
        lines += ["", f"failed ({len(d.failed)}):"]
        lines += [f"  {c.claim} / {c.comparison} / {c.task}: {c.check} -- {c.detail}" for c in d.failed]
    if d.unknown:
        lines += ["", f"unknown ({len(d.unknown)}), not a pass; what would settle each:"]
        lines += [f"  {c.claim} / {c.comparison} / {c.task}: {c.check} -- {c.settle or c.detail}" for c in d.unknown]
    s = d.summary()
    if d.passes:
        verdict = "every primary can be decided as far as the evidence shows"
    elif d.failed:
        verdict = "some primaries cannot come out either way at this size"
    else:
        verdict = "not shown decidable: some checks are unknown, and an unknown is not a pass"
    lines += ["", f"{s[PASS]} pass, {s[FAIL]} fail, {s[UNKNOWN]} unknown, {s[SCOPED]} scoped: {verdict}"]
    return "\n".join(lines)
