"""`tox -e claims`: verify the paper's claims on this machine's default profile (``standard`` with a GPU, ``cpu``
without; ``REPRO_PROFILE`` overrides). One test per registered claim; a claim that is not reproduced fails with
its numbers. The plan is computed once (and reused from ``REPRO_OUT``, default ./runs, on later calls)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from claims import CLAIMS
from claims.base import REPRODUCED
from repro.pipeline.runner import claims_dir, run_claims
from repro.results import ClaimsReport, load_claims
from repro.config import get_profile

pytestmark = pytest.mark.claims


@pytest.fixture(scope="module")
def report() -> ClaimsReport:
    name = os.environ.get("REPRO_PROFILE") or ("standard" if torch.cuda.is_available() else "cpu")
    profile = get_profile(name)
    out = Path(os.environ.get("REPRO_OUT", "runs"))
    data_dir = os.environ.get("REPRO_DATA_DIR")
    beside = Path(__file__).resolve().parents[2] / "shared" / "glue"
    if not data_dir and beside.is_dir():  # this workspace's GLUE copy; elsewhere the hub
        data_dir = str(beside)
    run_claims(profile, out, data_dir=data_dir, progress=True)
    return load_claims(claims_dir(profile, out))


@pytest.mark.parametrize("claim_id", CLAIMS.names())
def test_claim_reproduces(report: ClaimsReport, claim_id: str) -> None:
    result = next(c for c in report.claims if c.id == claim_id)
    per_task = ", ".join(f"{t}: {v}" for t, v in result.per_task.items())
    assert result.verdict == REPRODUCED, (
        f"{claim_id} ({result.section}) is {result.verdict} on profile {report.profile['name']} "
        f"[{per_task}]: {result.reason}"
    )
