"""Report/plot test data: the committed smoke run (a trimmed real ``repro claims --profile smoke`` directory:
claims.json, analysis JSONs and training metrics, no weights or grid stores) and a hostile variant of it.

The hostile variant renames a task to ``<script>alert(1)</script>``, puts markup in the model path, adds paired
raw values to one comparison (the smoke run has none: no arm learned) and removes one run's surface, so one
rendered page exercises escaping, the statistics table and the missing-surface path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

SMOKE = Path(__file__).resolve().parent / "fixtures" / "report" / "smoke"
XSS = "<script>alert(1)</script>"
XSS_MODEL = f"/models/{XSS}/bert-base"
RENAMED_TASK = "mrpc"


def _rename(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, dict):
        return {(new if k == old else k): _rename(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rename(v, old, new) for v in obj]
    return new if obj == old else obj


def copy_smoke(dst: Path) -> Path:
    shutil.copytree(SMOKE, dst)
    return dst


def make_hostile(dst: Path) -> Path:
    """Copy the smoke run to ``dst`` and rewrite it as described in the module docstring."""
    root = copy_smoke(dst)
    claims = _rename(json.loads((root / "claims.json").read_text()), RENAMED_TASK, XSS)
    claims["profile"]["model"] = XSS_MODEL
    claims["profile"]["description"] = f"hostile {XSS} description"
    comp = claims["claims"][0]["settings"][0]["comparisons"][0]
    comp["per_pair"] = [
        {"task": "sst2", "seed": 0, "effect": 0.5, "pretrained": 1.0, "scratch": 2.0},
        {"task": "sst2", "seed": 1, "effect": 0.7, "pretrained": 1.5, "scratch": 2.5},
    ]
    stats = dict(n=2, mean=0.6, sd=0.14, ci_low=0.5, ci_high=0.7, positive=2, verdict="reproduced",
                 effects=[0.5, 0.7])
    comp["overall"].update(stats)
    comp["per_task"]["sst2"].update(stats)  # the pairs are sst2's: its row holds them (no pooled row over one task)
    (root / "claims.json").write_text(json.dumps(claims))
    for path in (root / "analysis").glob("*.json"):
        a = _rename(json.loads(path.read_text()), RENAMED_TASK, XSS)
        if a["task"] == "sst2" and a["init"] == "scratch":
            a["surface"] = None
            a["projection"] = None
        path.write_text(json.dumps(a))
    return root
