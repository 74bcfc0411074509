"""Load a GLUE split from a local copy (HF-schema JSONL or classic GLUE TSV) or from the Hugging Face hub.

Why three sources: CI and offline machines read a local mirror, users who already ran ``download_glue_data.py``
have the TSV layout, and everyone else has the hub. All three produce the same ``datasets.Dataset`` (same columns,
same features, same label ids), so nothing downstream knows or cares where the data came from -- except the
provenance string (:func:`describe_source`) and the cache key (:meth:`SplitSource.identity`).

Source selection, first match wins: the ``data_dir`` argument (the CLI's ``--data-dir``), the ``REPRO_DATA_DIR``
environment variable, the hub. A local directory that lacks the split is an error, never a silent fall-back to the
network: a run should read exactly the data its user pointed it at.

Every data problem raises one :class:`~repro.errors.DataError` that names the file, the 1-based line and the fix.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets

from repro.data.tasks import TaskSpec, get_task
from repro.errors import DataError

DATA_DIR_ENV = "REPRO_DATA_DIR"
SourceKind = Literal["jsonl", "tsv", "hub"]

_HOW_TO_POINT = (
    f"Point --data-dir or {DATA_DIR_ENV} at a local GLUE copy (one folder per task with <split>.jsonl in the "
    "Hugging Face GLUE schema, or the classic GLUE TSV folders SST-2/, MRPC/, RTE/, MNLI/), "
    f"or unset {DATA_DIR_ENV} and omit --data-dir to download from the Hugging Face hub."
)


def _chosen_dir(data_dir: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The local directory to read (or None for the hub) and where that choice came from, for messages."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "--data-dir / data_dir argument"
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser(), f"environment variable {DATA_DIR_ENV}"
    return None, "hub (no --data-dir and no REPRO_DATA_DIR)"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The local GLUE directory that will be read (argument, else ``REPRO_DATA_DIR``), or None for the hub.

    Existence is not checked here; :func:`load_split` reports a missing directory with the full list of paths.
    """
    return _chosen_dir(data_dir)[0]


def describe_source(data_dir: str | os.PathLike[str] | None = None, task: str | TaskSpec | None = None) -> str:
    """Provenance string for results: ``"local:/abs/path"`` or ``"hub:nyu-mll/glue"``."""
    local = resolve_data_dir(data_dir)
    if local is not None:
        return f"local:{local.resolve()}"
    hub_path = get_task(task).hub_path if task is not None else "nyu-mll/glue"
    return f"hub:{hub_path}"


PROVENANCE_FILE = "PROVENANCE.md"
MNLI_MISMATCHED_TRAIN_NOTE = (
    "MNLI: the 1,000 training pairs of this local excerpt come from the MNLI mismatched dev set (PROVENANCE.md), "
    "not the MNLI training set; treat MNLI results as small-data results."
)
# how close (in characters, whitespace collapsed) "mismatched dev set" must stand to "mnli/train" in PROVENANCE.md
_NEAR = 200


def _mnli_train_is_mismatched_dev(local: Path) -> bool:
    """Does the local copy's PROVENANCE.md say its ``mnli/train`` split comes from the mismatched dev set?"""
    try:
        text = (local / PROVENANCE_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    flat = " ".join(text.lower().split())
    return any("mismatched dev set" in flat[max(0, m.start() - _NEAR):m.end() + _NEAR]
               for m in re.finditer(re.escape("mnli/train"), flat))


def data_notes(task: str | TaskSpec, data_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """What a reader of results on ``task`` from this data source must be told (empty for most).

    The source is chosen as :func:`load_split` chooses it (argument, else ``REPRO_DATA_DIR``, else the hub). Today
    one note exists: MNLI read from a local copy whose ``PROVENANCE.md`` says its ``mnli/train`` comes from the
    mismatched dev set (the shared excerpt: 1,000 pairs, not MNLI's training set). The hub has no notes.
    """
    spec = get_task(task)
    local = resolve_data_dir(data_dir)
    if local is None or spec.name != "mnli":
        return ()
    return (MNLI_MISMATCHED_TRAIN_NOTE,) if _mnli_train_is_mismatched_dev(local) else ()


def source_notes(tasks: Sequence[str | TaskSpec], source: str) -> tuple[str, ...]:
    """:func:`data_notes` of every task for a recorded source string (:func:`describe_source`: ``local:PATH`` or
    ``hub:...``), each note once: a run's notes where only its source string is known (a merge of shards). A hub
    source has none; neither has a local directory that is not there any more."""
    if not source.startswith("local:") or not source[len("local:"):]:
        return ()
    local = Path(source[len("local:"):])
    return tuple(dict.fromkeys(n for t in tasks for n in data_notes(t, local)))


@dataclass(frozen=True)
class SplitSource:
    """Where one split of one task will be read from, found without reading it (so the cache can key on it)."""

    task: TaskSpec
    split: str
    kind: SourceKind
    path: Path | None = None  # None for the hub

    def identity(self) -> dict[str, Any]:
        """What makes this source's content distinct: the file and its size and mtime, or the hub coordinates.

        Size and mtime rather than a content hash: hashing SST-2's 67k lines on every call would cost more than
        the cache saves, and any real edit changes one of the two.
        """
        if self.path is None:
            return {"kind": "hub", "hub_path": self.task.hub_path, "hub_config": self.task.hub_config,
                    "split": self.split}
        st = self.path.stat()
        return {"kind": self.kind, "path": str(self.path.resolve()), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "split": self.split}

    def describe(self) -> str:
        if self.path is None:
            return f"hub:{self.task.hub_path}/{self.task.hub_config}[{self.split}]"
        return f"{self.kind}:{self.path.resolve()}"


def locate_split(task: str | TaskSpec, split: str, data_dir: str | os.PathLike[str] | None = None) -> SplitSource:
    """Find the file for ``(task, split)`` in the chosen local directory, or name the hub.

    JSONL (``<dir>/<task>/<split>.jsonl``) wins over TSV (``<dir>/<TSV dir>/<file>.tsv``) when both exist.
    """
    spec = get_task(task)
    split = spec.resolve_split(split)
    local, origin = _chosen_dir(data_dir)
    if local is None:
        return SplitSource(spec, split, "hub")
    if not local.is_dir():
        raise DataError(
            f"data directory {local} (from {origin}) does not exist or is not a directory. {_HOW_TO_POINT}"
        )
    candidates: list[tuple[SourceKind, Path]] = [("jsonl", local / spec.name / f"{split}.jsonl")]
    tsv_file = spec.tsv.file_for(split)
    if tsv_file is not None:
        candidates.append(("tsv", local / spec.tsv.directory / tsv_file))
    for kind, path in candidates:
        if path.is_file():
            return SplitSource(spec, split, kind, path)
    looked = ", ".join(str(p) for _, p in candidates)
    note = "" if tsv_file is not None else (
        f" (the GLUE TSV layout has no labelled {split!r} split for {spec.name})"
    )
    known = ", ".join(dict.fromkeys([spec.train_split, spec.dev_split, *(s for s, _ in spec.tsv.split_files)]))
    raise DataError(
        f"no {split!r} split of task {spec.name!r} in {local} (from {origin}); looked at: {looked}{note}. "
        f"Splits of {spec.name}: {known}. {_HOW_TO_POINT}"
    )


def features_for(task: str | TaskSpec) -> datasets.Features:
    """The Hugging Face GLUE features of a task: text fields as strings, ``label`` a ClassLabel, ``idx`` int32."""
    spec = get_task(task)
    feats: dict[str, Any] = {f: datasets.Value("string") for f in spec.text_fields}
    feats["label"] = datasets.ClassLabel(names=list(spec.label_names))
    feats["idx"] = datasets.Value("int32")
    return datasets.Features(feats)


def _allowed(spec: TaskSpec) -> str:
    return ", ".join(f"{i} ({n})" for i, n in enumerate(spec.label_names))


def _bad_label(spec: TaskSpec, where: str, label: object) -> DataError:
    hint = " GLUE hides test-set labels (-1): use a labelled split." if label in (-1, "-1") else ""
    return DataError(f"{where}: label {label!r} is not a {spec.name} label; allowed: {_allowed(spec)}.{hint}")


def _read_jsonl(spec: TaskSpec, path: Path) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {f: [] for f in (*spec.text_fields, "label", "idx")}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue  # a trailing blank line is not an example
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{where}: invalid JSON ({e.msg} at column {e.colno}); fix or remove the line."
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object per line, got {type(row).__name__}.")
            for field in spec.text_fields:
                if field not in row:
                    raise DataError(
                        f"{where}: missing field {field!r}; a {spec.name} line needs "
                        f"{', '.join(repr(f) for f in (*spec.text_fields, 'label'))}; found {sorted(row)}."
                    )
                if not isinstance(row[field], str):
                    raise DataError(f"{where}: field {field!r} must be a string, got {type(row[field]).__name__}.")
                cols[field].append(row[field])
            if "label" not in row:
                raise DataError(f"{where}: missing field 'label'; found {sorted(row)}.")
            label = row["label"]
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < spec.num_labels:
                raise _bad_label(spec, where, label)
            cols["label"].append(label)
            idx = row.get("idx", len(cols["idx"]))  # HF schema has idx; without it, the row number is the id
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise DataError(f"{where}: field 'idx' must be an integer, got {idx!r}.")
            cols["idx"].append(idx)
    return cols


def _read_tsv(spec: TaskSpec, path: Path) -> dict[str, list[Any]]:
    layout = spec.tsv
    cols: dict[str, list[Any]] = {f: [] for f in (*spec.text_fields, "label", "idx")}
    with open(path, encoding="utf-8", newline="") as fh:
        # GLUE TSVs are not CSV-quoted (MNLI and MRPC text contains bare quotes): QUOTE_NONE, as GLUE's own readers.
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header: list[str] | None = None
        positions: list[int] = []
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row or row == [""]:
                continue
            if header is None:
                header = [h.strip().lstrip("\ufeff") for h in row]
                wanted = [*layout.text_columns, layout.label_column]
                missing = [c for c in wanted if c not in header]
                if missing:
                    raise DataError(
                        f"{where}: header lacks column(s) {missing} needed for {spec.name}; header is {header}. "
                        f"Expected the GLUE TSV layout ({layout.directory}/ with columns {wanted})."
                    )
                positions = [header.index(c) for c in wanted]
                continue
            if len(row) <= max(positions):
                raise DataError(
                    f"{where}: {len(row)} tab-separated fields, need at least {max(positions) + 1} "
                    f"(header has {len(header)}); is the line truncated or its tabs missing?"
                )
            *texts, raw_label = (row[p] for p in positions)
            for field, text in zip(spec.text_fields, texts, strict=True):
                cols[field].append(text)
            cols["label"].append(_tsv_label(spec, where, raw_label.strip()))
            cols["idx"].append(len(cols["idx"]))  # as in the HF schema: the row number within the file
    return cols


def _tsv_label(spec: TaskSpec, where: str, raw: str) -> int:
    if spec.tsv.label_encoding == "name":
        if raw in spec.label_names:
            return spec.label_names.index(raw)
        raise _bad_label(spec, where, raw)
    ids = [str(i) for i in range(spec.num_labels)]
    if raw in ids:
        return ids.index(raw)
    raise _bad_label(spec, where, raw)


def _from_hub(source: SplitSource) -> datasets.Dataset:
    spec = source.task
    try:
        ds = datasets.load_dataset(spec.hub_path, spec.hub_config, split=source.split)
    except Exception as e:  # network, auth, unknown split, corrupt cache: all mean "use a local copy instead"
        raise DataError(
            f"could not load {spec.hub_path}/{spec.hub_config} split {source.split!r} from the Hugging Face hub "
            f"({type(e).__name__}: {e}). Set {DATA_DIR_ENV} or pass --data-dir to read a local GLUE copy instead."
        ) from e
    if isinstance(ds, datasets.DatasetDict):  # pragma: no cover - split= always gives a Dataset
        raise DataError(f"the hub returned several splits for {spec.name}; expected split {source.split!r}.")
    wanted = [*spec.text_fields, "label", "idx"]
    missing = [c for c in wanted if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{source.describe()}: columns {missing} missing (has {ds.column_names}); is {spec.hub_path} the GLUE "
            f"dataset? Set {DATA_DIR_ENV} or pass --data-dir to read a local GLUE copy instead."
        )
    ds = ds.select_columns(wanted)
    labels = list(ds["label"])
    for row, label in enumerate(labels):
        if not 0 <= int(label) < spec.num_labels:
            raise _bad_label(spec, f"{source.describe()} row {row}", int(label))
    features = features_for(spec)
    return ds if ds.features == features else ds.cast(features)


def load_split(
    task: str | TaskSpec, split: str, data_dir: str | os.PathLike[str] | None = None
) -> datasets.Dataset:
    """One split as a ``datasets.Dataset`` with columns ``*text_fields, label, idx`` in the HF GLUE schema.

    ``split`` is a GLUE split name (``train``, ``validation``, ``validation_matched``...) or ``"dev"`` for the
    task's dev split. See the module docstring for how the source is chosen.
    """
    source = locate_split(task, split, data_dir)
    return read_source(source)


def read_source(source: SplitSource) -> datasets.Dataset:
    """Read a located split; local files are parsed and validated line by line."""
    if source.kind == "hub":
        ds = _from_hub(source)
    else:
        assert source.path is not None
        reader = _read_jsonl if source.kind == "jsonl" else _read_tsv
        cols = reader(source.task, source.path)
        if not cols["label"]:
            raise DataError(
                f"{source.path} contains no examples: the {source.split!r} split of {source.task.name} is empty. "
                f"Restore the file or point --data-dir / {DATA_DIR_ENV} at a complete GLUE copy."
            )
        ds = datasets.Dataset.from_dict(cols, features=features_for(source.task))
    if len(ds) == 0:
        raise DataError(f"{source.describe()}: the {source.split!r} split of {source.task.name} is empty.")
    return ds
