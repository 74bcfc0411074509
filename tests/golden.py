"""The golden claims run: a trimmed copy of a real ``repro claims`` run whose arms learned, and the means to rebuild
its evidence from the copy.

``python -m tests.golden RUN_DIR`` copies, from a finished claims run directory, only what the claims read --
``profile.json``, ``claims.json``, every training run's ``config.json`` and ``metrics.json`` and every
``analysis/*.json`` -- into ``tests/fixtures/golden/<profile>/`` (no weights, no grid stores). The golden test
(tests/test_golden.py) then rebuilds the pairs from those files with the plan's own loader and checks that
``evaluate_claim`` gives the stored claims.json value for value. Regenerate the copy (and say so in the commit)
whenever a measurement or a threshold changes on purpose: a diff in the golden test is otherwise a regression.
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
    from claims.jobs import plan_jobs
    from claims.plan import Outcomes, collect_evidence, pairs_of
    from claims.runner import load_claims
    from repro.config import Profile
    from repro.storage import read_json

    profile = Profile.from_json(read_json(root / "profile.json"))
    report = load_claims(root)
    _, jobs = plan_jobs(profile, report.data_source)
    evidence = collect_evidence(jobs, root, Outcomes({}, {}))
    return profile, report, pairs_of(profile, evidence)


if __name__ == "__main__":
    src = Path(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else src.name.split("-")[0]
    print(trim(src, FIXTURES / name))
