"""Golden test: the committed trim of a real claims run (tests/golden.py) must give its own claims.json again.

This catches any change to a measurement's orientation, pairing, precondition or statistics that a synthetic
fixture could miss: the numbers come from real runs whose arms learned, and every per-pair raw value is checked
arm by arm.
"""

from __future__ import annotations

import json
import math

import pytest

from claims import CLAIMS
from claims.evaluate import evaluate_claim
from repro.storage import to_json_dict
from tests.golden import FIXTURES, rebuild_pairs

RUNS = sorted(p for p in FIXTURES.glob("*") if (p / "claims.json").exists()) if FIXTURES.exists() else []
pytestmark = pytest.mark.skipif(not RUNS, reason="no golden run committed under tests/fixtures/golden")


def _close(a, b, path: str = "") -> None:  # noqa: ANN001
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.fixture(scope="module", params=RUNS, ids=[p.name for p in RUNS])
def golden(request):  # noqa: ANN001, ANN201
    return rebuild_pairs(request.param)


def test_golden_run_learned(golden) -> None:  # noqa: ANN001
    _, report, pairs = golden
    base = [p for p in pairs if p.setting == report.settings[0]]
    assert base and all(p.pretrained.learned and p.scratch.learned for p in base)


def test_pairs_are_the_arms_they_claim_to_be(golden) -> None:  # noqa: ANN001
    profile, _, pairs = golden
    assert len(pairs) == len(profile.settings) * len(profile.tasks) * len(profile.seeds)
    for p in pairs:
        for arm in ("pretrained", "scratch"):
            ev = getattr(p, arm)
            assert ev.init == arm and ev.analysis.init == arm and f"-{arm}-" in ev.run_dir
            assert ev.task == p.task == ev.analysis.task and ev.seed == p.seed == ev.analysis.seed
            assert ev.analysis.partner_task not in (None, p.task)


@pytest.mark.parametrize("claim_id", CLAIMS.names())
def test_claims_json_is_reproduced_value_for_value(golden, claim_id: str) -> None:  # noqa: ANN001
    _, report, pairs = golden
    stored = next(c for c in report.claims if c.id == claim_id)
    again = evaluate_claim(CLAIMS.get(claim_id), pairs)
    a, b = (json.loads(json.dumps(to_json_dict(x))) for x in (again, stored))
    a.pop("rationale"), b.pop("rationale")  # prose (the module docstring), not a result
    _close(a, b, claim_id)
