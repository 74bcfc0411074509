"""Checks that need no work, made before a plan prints, creates a directory or starts a job (issue 40).

A claims run on 2 CPU cores takes hours; an input that cannot work should fail in seconds with one line naming the
fix, not after the first job started (a missing data directory used to error after "started, 60 jobs" and leave an
empty run directory) nor after minutes of network retries (a hub model id with no network retried for over 200 s).
Offline first: the local data files are located without reading them, a hub model is looked up in the local Hugging
Face cache first, and only then is the hub probed -- with one short TCP connection, not the libraries' retry loop.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from repro.errors import ReproError

PROBE_TIMEOUT_SECONDS = 3.0
OFFLINE_DEFAULT = "minilm-l6"


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@lru_cache(maxsize=4)
def hub_reachable(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """One TCP connection to the hub's host (DNS included), at most ``timeout`` seconds: enough to tell a machine
    without network from one with it, without the libraries' retries."""
    url = urlparse(endpoint or hub_endpoint())
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_env() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def in_hub_cache(repo_id: str, filename: str = "config.json") -> bool:
    """Whether ``repo_id``'s ``filename`` is in the local Hugging Face cache (any snapshot)."""
    folder = _hub_cache() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return folder.is_dir() and any((s / filename).is_file() for s in folder.iterdir())


def check_model(name: str, reachable: Callable[[], bool] | None = None) -> None:
    """A named model, a local checkpoint directory, or a hub id that is cached or reachable; else one ReproError.
    ``reachable`` (default :func:`hub_reachable`) is asked only when the answer matters."""
    from repro.models.zoo import resolve_spec

    reachable = reachable or hub_reachable
    spec = resolve_spec(name)  # an unknown name is its own clear error
    if spec.source != "hub":
        return
    if os.path.isdir(name):
        if not (Path(name) / "config.json").is_file():
            raise ReproError(f"model directory {name} has no config.json: pass a Hugging Face checkpoint directory "
                             f"(config.json and weights), or the offline default --set model={OFFLINE_DEFAULT}")
        return
    fixes = (f"pass a local checkpoint directory (--set model=/path/to/{name.split('/')[-1]}), or use the offline "
             f"default (--set model={OFFLINE_DEFAULT})")
    cached = in_hub_cache(name)
    if _offline_env():
        if not cached:
            raise ReproError(f"model {name!r} is not in the local Hugging Face cache ({_hub_cache()}) and offline mode "
                             f"is on (HF_HUB_OFFLINE): download it on a machine with network access, {fixes}")
        return
    if not reachable():
        if cached:
            raise ReproError(f"model {name!r} is in the local Hugging Face cache but {hub_endpoint()} cannot be "
                             f"reached: set HF_HUB_OFFLINE=1 to use the cached copy without minutes of network "
                             f"retries, or {fixes}")
        raise ReproError(f"model {name!r} is not in the local Hugging Face cache and {hub_endpoint()} cannot be "
                         f"reached (no network?): {fixes}")


def check_data(tasks: Sequence[str], data_dir: str | os.PathLike[str] | None,
               reachable: Callable[[], bool] | None = None) -> None:
    """Every task's training and dev split is where the data directory says (files located, not read), or -- with
    no data directory -- the hub can be reached or the datasets library is offline on purpose."""
    from repro.data import get_task
    from repro.data.sources import locate_split, resolve_data_dir

    local = resolve_data_dir(data_dir)
    reachable = reachable or hub_reachable
    for t in dict.fromkeys(tasks):
        spec = get_task(t)
        if local is not None:
            for split in dict.fromkeys((spec.train_split, spec.dev_split)):
                locate_split(spec, split, data_dir)  # DataError naming the paths it looked at and the fix
    if local is None and tasks and not os.environ.get("HF_DATASETS_OFFLINE") and not _offline_env() \
            and not reachable():
        raise ReproError(f"no --data-dir (and no REPRO_DATA_DIR), and {hub_endpoint()} cannot be reached to download "
                         f"GLUE: point --data-dir at a local copy (one folder per task with <split>.jsonl), or set "
                         f"HF_DATASETS_OFFLINE=1 to read the datasets cache")


def preflight(profile, data_dir: str | os.PathLike[str] | None = None,  # noqa: ANN001 -- a repro.config.Profile
              reachable: Callable[[], bool] | None = None) -> None:
    """All checks of a claims run that need no work: the data of every task and partner task, then the model."""
    check_data((*profile.tasks, *profile.partner_tasks), data_dir, reachable)
    check_model(profile.model, reachable)
