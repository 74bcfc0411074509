"""Saved results and how to read them back: ``claims.json`` (:class:`ClaimsReport`, :func:`load_claims`).

This package sits below :mod:`claims` (the science), :mod:`repro.pipeline` (running a plan) and :mod:`repro.report`
(the HTML page): it imports none of them, so each can read results without importing the others.
"""

from repro.results.records import (
    CLAIMS_FILE,
    SCHEMA_VERSION,
    ClaimResult,
    ClaimsReport,
    ComparisonResult,
    RunSummary,
    SettingResult,
    Stat,
    load_claims,
    schema_notice,
)

__all__ = ["CLAIMS_FILE", "SCHEMA_VERSION", "ClaimResult", "ClaimsReport", "ComparisonResult", "RunSummary",
           "SettingResult", "Stat", "load_claims", "schema_notice"]
