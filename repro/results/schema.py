"""The JSON Schema of ``claims.json``, generated from the dataclasses that write it, and a check that the committed
schema file is current.

Why generated: the dataclasses in :mod:`repro.results.records` are the layout; a hand-written schema would drift
from them. ``python -m repro.results.schema`` rewrites ``repro/results/claims.schema.json``; ``--check`` exits 1
when the file differs from what the dataclasses give (run by the tests, so a field added without regenerating the
schema fails CI). A reader validates a file with any JSON Schema validator (draft 2020-12), e.g.
``jsonschema.validate(json.load(f), json.load(open(SCHEMA_PATH)))``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from repro.results.records import SCHEMA_VERSION, ClaimsReport
from repro.storage import atomic_write_text

SCHEMA_PATH = Path(__file__).resolve().parent / "claims.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# storage.dumps writes a non-finite float as one of these strings (strict JSON has no NaN literal)
_NUMBER = {"anyOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf"]}]}

# what a reader needs to know about the fields they read (the rest are described in README "Reading claims.json")
DESCRIPTIONS: dict[str, str] = {
    "ClaimsReport.schema_version": "layout version of this file; absent (read as 0) in files written before it",
    "ClaimsReport.science_revision": "science revision (repro.pipeline.revision: a hash of the code that computes "
                                     "the numbers) of the code that evaluated these claims; empty before schema 3",
    "ClaimsReport.verdict": "reproduced when every claim is reproduced, else not_all_reproduced",
    "ClaimsReport.provenance": "when, where and with which code and packages the run was made",
    "ClaimsReport.durations": "seconds per phase of this invocation (train_seconds counts only training done now; "
                              "training_compute_seconds is the recorded training time of every run the claims use)",
    "ClaimResult.verdict": "reproduced / not_reproduced / inconclusive over every setting and task",
    "ClaimResult.reason": "why the verdict, in words",
    "ComparisonResult.min_effect": "the minimum mean paired effect: the project's registered choice "
                                   "(registered says when)",
    "ComparisonResult.overall": "pooled over all pairs (descriptive); its verdict follows the per-task rule",
    "ComparisonResult.excluded": "pairs left out, each with its reason",
    "Stat.mean": "mean paired effect (pretrained vs scratch, one pair per seed)",
    "Stat.ci_low": "lower end of the 95% Student-t interval of the mean",
    "Stat.ci_high": "upper end of the 95% Student-t interval of the mean",
    "Stat.verdict": "reproduced / not_reproduced / inconclusive / undecidable",
}


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a, defs) for a in args]}
    if tp is type(None):
        return {"type": "null"}
    if dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # reserve: recursion terminates
            defs[name] = _dataclass_schema(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type_schema(args[0], defs)}
        return {"type": "array", "prefixItems": [_type_schema(a, defs) for a in args], "items": False}
    if origin is list or tp is list:
        return {"type": "array", "items": _type_schema(args[0], defs)} if args else {"type": "array"}
    if origin is dict or tp is dict:
        return ({"type": "object", "additionalProperties": _type_schema(args[1], defs)} if args
                else {"type": "object"})
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return dict(_NUMBER)
    if tp is str:
        return {"type": "string"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _dataclass_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        sch = _type_schema(hints[f.name], defs)
        desc = DESCRIPTIONS.get(f"{cls.__name__}.{f.name}")
        if desc:
            sch = {**sch, "description": desc}
        props[f.name] = sch
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    out: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                           "additionalProperties": False}
    if doc and not doc.startswith(f"{cls.__name__}("):  # not the dataclass-generated signature
        out["description"] = doc
    return out


def claims_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``claims.json`` at :data:`SCHEMA_VERSION`."""
    defs: dict[str, Any] = {}
    root = _dataclass_schema(ClaimsReport, defs)
    root["properties"]["schema_version"] = {**root["properties"]["schema_version"], "minimum": 0,
                                            "maximum": SCHEMA_VERSION}
    return {"$schema": DIALECT, "$id": f"repro-bert-landscape/claims.schema.json/v{SCHEMA_VERSION}",
            "title": f"claims.json (schema_version {SCHEMA_VERSION})", **root,
            "$defs": dict(sorted(defs.items()))}


def validate(data: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` (parsed claims.json) matches the committed schema.

    Needs ``jsonschema`` (the ``test`` extra); repro itself does not, since reading a file needs only
    :func:`~repro.results.load_claims`.
    """
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(data)


def schema_text() -> str:
    return json.dumps(claims_schema(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = schema_text()
    if "--check" in args:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is out of date: run python -m repro.results.schema", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is current (schema_version {SCHEMA_VERSION})")
        return 0
    atomic_write_text(SCHEMA_PATH, text)
    print(SCHEMA_PATH)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
