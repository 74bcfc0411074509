"""Atomic file writes, JSON round-trips of frozen dataclasses, and content-keyed run directories.

Nothing is ever half-written: every file goes to a temporary name in the same directory and is renamed into place
(``os.replace`` is atomic on POSIX), so an interrupted run leaves either the old file or the new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _umask_mode() -> int:
    """rw for whoever the umask allows: mkstemp creates 0600 files, but results are meant to be shared."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save(path: str | os.PathLike[str], writer: Callable[[str], None]) -> None:
    """Call ``writer(tmp_path)`` (e.g. ``torch.save`` or ``safetensors.save_file``) then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# Field metadata key: a dataclass field marked ``field(default=..., metadata={OMIT_AT_DEFAULT: True})`` is left out
# of the JSON form (and so of :func:`config_hash`) while it holds its default. A field added to a config this way
# keeps every existing config's JSON and hash -- and so its run and claims directories -- unchanged; reading the
# JSON back gives the default again. Only a non-default value joins the JSON and changes the hash.
OMIT_AT_DEFAULT = "omit_at_default"


def _omitted(f: dataclasses.Field, value: Any) -> bool:
    return (bool(f.metadata.get(OMIT_AT_DEFAULT)) and f.default is not dataclasses.MISSING
            and type(value) is type(f.default) and value == f.default)


def _jsonable(obj: Any, full: bool = False) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name), full) for f in dataclasses.fields(obj)
                if full or not _omitted(f, getattr(obj, f.name))}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, full) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, full) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)  # "nan", "inf", "-inf": strict JSON has no such literals
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _jsonable(obj.item())
    return obj


def to_json_dict(obj: Any, *, full: bool = False) -> Any:
    """Plain-JSON form of a (nested) dataclass; non-finite floats become strings. Fields marked
    :data:`OMIT_AT_DEFAULT` are left out while at their default, unless ``full`` (e.g. to list every field that
    ``--set`` can override)."""
    return _jsonable(obj, full)


def dumps(obj: Any) -> str:
    return json.dumps(to_json_dict(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, dumps(obj))


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _coerce(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(non_none[0], value)
        return value
    if dataclasses.is_dataclass(tp):
        return from_json_dict(tp, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(_coerce(a, v) for a, v in zip(args, value, strict=True))
    if origin is list:
        return [_coerce(args[0], v) for v in value] if args else list(value)
    if origin is dict:
        return {k: _coerce(args[1], v) for k, v in value.items()} if args else dict(value)
    if tp is float:
        return float(value)  # accepts "nan"/"inf" strings written by dumps
    return value


def from_json_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a (nested, frozen) dataclass from :func:`to_json_dict` output; unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    kwargs = {k: _coerce(hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def config_hash(obj: Any, length: int = 12) -> str:
    """Stable short hash of a config's JSON form; names run directories so equal configs reuse results."""
    canon = json.dumps(to_json_dict(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:length]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def link_identical(path: str | os.PathLike[str], candidates: list[Path]) -> Path | None:
    """Replace ``path`` by a hard link to the first candidate file with identical bytes; return that candidate.

    Why: the runs of a claims run that share an initialisation (same model, init, seed and label count: the base,
    long and extended-training runs, and tasks with the same number of labels) start from byte-identical θ0 files,
    up to a third of a smoke run's disk. Linking keeps every run directory self-contained (deleting one run frees
    nothing the others need) while storing the bytes once. Safe because such files are only ever replaced
    atomically (a new inode), never modified in place. Nothing happens where hard links are not supported.
    """
    path = Path(path)
    st = path.stat()
    digest: str | None = None
    seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    for cand in candidates:
        try:
            cs = cand.stat()
        except OSError:
            continue
        if cs.st_size != st.st_size or (cs.st_dev, cs.st_ino) in seen or cs.st_dev != st.st_dev:
            continue
        seen.add((cs.st_dev, cs.st_ino))
        digest = digest or _sha256(path)
        if _sha256(cand) != digest:
            continue
        tmp = path.with_name(f".{path.name}.link.tmp")
        try:
            tmp.unlink(missing_ok=True)
            os.link(cand, tmp)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return None
        return cand
    return None
