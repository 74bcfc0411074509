"""The golden claims run: a trimmed copy of a real ``repro claims`` run whose arms learned, and the means to rebuild
its evidence from the copy.

The committed run, ``tiny``, is made by ``python -m tests.golden --make-tiny OUT`` (:func:`make_tiny_run`, about
ten minutes on 2 cores): tiny-random (its "pretrained" weights are a fixed random draw, so nothing about
pretraining follows from it) on the toy GLUE copy of tests/conftest.py, 2 tasks × 3 seeds × 2 settings, every arm
learned. It is a regression oracle for the pipeline, not evidence about the paper.

``python -m tests.golden RUN_DIR [NAME]`` copies, from a finished claims run directory, only what the claims read --
``profile.json``, ``claims.json``, every training run's ``config.json`` and ``metrics.json`` and every
``analysis/*.json`` -- into ``tests/fixtures/golden/<profile>/`` (no weights, no grid stores). The golden test
(tests/test_golden.py) then rebuilds the pairs from those files with the plan's own loader and checks that
``evaluate_claim`` gives the stored claims.json value for value. Regenerate the copy (and say so in the commit)
whenever a measurement or a threshold changes on purpose: a diff in the golden test is otherwise a regression.
``python -m tests.golden --reevaluate NAME`` rewrites only the stored verdicts from the committed analyses, for a
change in how evidence is judged that leaves the measurements alone.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "golden"


def trim(run_dir: Path, dst: Path) -> Path:
    run_dir, dst = Path(run_dir), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in ("profile.json", "claims.json"):
        shutil.copyfile(run_dir / name, dst / name)
    for f in sorted((run_dir / "train").glob("*/*.json")):
        if f.name in ("config.json", "metrics.json"):
            (dst / "train" / f.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst / "train" / f.parent.name / f.name)
    (dst / "analysis").mkdir()
    for f in sorted((run_dir / "analysis").glob("*.json")):
        shutil.copyfile(f, dst / "analysis" / f.name)
    return dst


def rebuild_pairs(root: Path):  # noqa: ANN201
    """The pairs of the run stored under ``root``, rebuilt from its JSON files exactly as the plan assembles them."""
    from repro.pipeline.jobs import plan_jobs
    from claims.evidence import pairs_of
    from repro.pipeline.plan import Outcomes, collect_evidence
    from repro.results import load_claims
    from repro.config import Profile
    from repro.storage import read_json

    profile = Profile.from_json(read_json(root / "profile.json"))
    report = load_claims(root)
    _, jobs = plan_jobs(profile, report.data_source)
    # a committed run keeps the analysis version it was measured with (measures it predates are excluded)
    evidence = collect_evidence(jobs, root, Outcomes({}, {}), analysis_versions=(2, 3, 4))
    return profile, report, pairs_of(profile, evidence)


def reevaluate(root: Path) -> Path:
    """Rewrite the claims of ``root/claims.json`` from its stored analyses (nothing is retrained or re-measured):
    for a deliberate change in how evidence is judged (a gate, a threshold), which leaves the analyses as they are."""
    import dataclasses

    from claims import CLAIMS
    from claims.evaluate import evaluate_claim
    from repro.storage import write_json

    from repro.pipeline.runner import convergence_fields

    profile, report, pairs = rebuild_pairs(root)
    claims = tuple(evaluate_claim(CLAIMS.get(c.id), pairs, profile.generalization_tasks) for c in report.claims)
    # the run records' judgements that the rules make (science v3: convergence) are refreshed with the claims
    arms = {(e.setting, e.task, e.init, e.seed): e for p in pairs for e in (p.pretrained, p.scratch)}

    runs = tuple(dataclasses.replace(r, **convergence_fields(arms[r.setting, r.task, r.init, r.seed]))
                 if (r.setting, r.task, r.init, r.seed) in arms else r for r in report.runs)
    from repro.pipeline.revision import science_revision
    from repro.results import SCHEMA_VERSION

    # evaluated now, by this code: the file says so (schema version and science revision of the evaluating code)
    write_json(root / "claims.json", dataclasses.replace(report, claims=claims, runs=runs,
                                                         schema_version=SCHEMA_VERSION,
                                                         science_revision=science_revision()))
    return root / "claims.json"


def make_tiny_run(out: Path) -> Path:
    """Run the golden ``tiny`` claims plan under ``out``; returns its claims run directory."""
    import dataclasses

    from repro.pipeline.runner import claims_dir, run_claims
    from repro.config import LandscapeSettings, Setting, TrainHyper, get_profile
    from tests.conftest import make_tiny_glue

    data = make_tiny_glue(Path(out) / "glue")
    h = TrainHyper(learning_rate=5e-3, epochs=20, batch_size=16)
    prof = dataclasses.replace(
        get_profile("smoke"), name="tiny", description="golden test run: tiny-random on the toy GLUE copy",
        model="tiny-random", seeds=(0, 1, 2), train_size=96, dev_size=48, pretrained=h, scratch=h, snapshots=7,
        overfit_epoch_factor=2.0, settings=(Setting("base"), Setting("long", lr_factor=0.6, epoch_factor=1.5)),
        extended_setting="base",
        landscape=LandscapeSettings(curve_points=7, surface_points=5, random_width_points=7, random_directions=1,
                                    eval_train_size=48, eval_dev_size=48, eval_batch_size=48, hessian_top_k=2,
                                    hessian_max_iter=10, trace_samples=4, hessian_batch_size=16,
                                    hessian_examples=16, layer_surface_points=5))
    run_claims(prof, Path(out) / "out", data_dir=str(data), progress=False, write_html=False)
    return claims_dir(prof, Path(out) / "out")


if __name__ == "__main__":
    if sys.argv[1] == "--reevaluate":
        print(reevaluate(FIXTURES / sys.argv[2]))
        sys.exit(0)
    if sys.argv[1] == "--make-tiny":
        print(trim(make_tiny_run(Path(sys.argv[2])), FIXTURES / "tiny"))
        sys.exit(0)
    src = Path(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else src.name.split("-")[0]
    print(trim(src, FIXTURES / name))
