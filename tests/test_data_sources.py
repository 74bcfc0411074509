"""repro.data task specs and split loading: JSONL, GLUE TSV and (monkeypatched) hub give the same data, and every
kind of bad input fails with one DataError that says where and how to fix it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest

from repro.data import (
    MNLI_MISMATCHED_TRAIN_NOTE,
    TASKS,
    data_notes,
    describe_source,
    features_for,
    get_task,
    load_split,
    locate_split,
    resolve_data_dir,
    source_notes,
)
from repro.errors import DataError, UnknownNameError
from tests.conftest import START_ENV, require_glue


@pytest.fixture(scope="module")
def real_glue() -> Path:
    """The real GLUE copy, looked up in the environment as the session started: the autouse fixture below
    deletes REPRO_DATA_DIR from each test's environment, so reading it inside the test would always miss it.
    Skipped where absent, a failure where CI is set."""
    return require_glue(START_ENV, "sst2/train.jsonl")


# ---------------------------------------------------------------- handmade example, written in both layouts

ROWS: dict[str, list[dict[str, Any]]] = {
    "sst2": [
        {"sentence": "a gorgeous , witty film .", "label": 1},
        {"sentence": 'it is "so bad', "label": 0},  # unbalanced quote: TSV must be read unquoted
        {"sentence": "flat and dull", "label": 0},
    ],
    "mrpc": [
        {"sentence1": 'He said "yes.', "sentence2": "He agreed.", "label": 1},
        {"sentence1": "Shares fell 3%.", "sentence2": "Stocks rose.", "label": 0},
    ],
    "rte": [
        {"sentence1": "Paris is in France.", "sentence2": "Paris is French.", "label": 0},
        {"sentence1": "A cat sat.", "sentence2": "A dog ran.", "label": 1},
        {"sentence1": "It rained.", "sentence2": "The ground is wet.", "label": 0},
    ],
    "mnli": [
        {"premise": "You ca n't take it .", "hypothesis": "You cannot bring it .", "label": 0},
        {"premise": 'The "book has an index', "hypothesis": "Indexes matter .", "label": 1},
        {"premise": "He left early .", "hypothesis": "He stayed late .", "label": 2},
    ],
}

MNLI_TRAIN_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                     "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]


def write_jsonl(root: Path, task: str, split: str, rows: list[dict[str, Any]]) -> Path:
    path = root / task / f"{split}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({**r, "idx": i}) + "\n" for i, r in enumerate(rows)), encoding="utf-8")
    return path


def tsv_lines(task: str, rows: list[dict[str, Any]], dev: bool = False) -> list[list[str]]:
    names = get_task(task).label_names
    if task == "sst2":
        return [["sentence", "label"]] + [[r["sentence"], str(r["label"])] for r in rows]
    if task == "mrpc":
        return [["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]] + [
            [str(r["label"]), str(100 + i), str(200 + i), r["sentence1"], r["sentence2"]] for i, r in enumerate(rows)
        ]
    if task == "rte":
        return [["index", "sentence1", "sentence2", "label"]] + [
            [str(i), r["sentence1"], r["sentence2"], names[r["label"]]] for i, r in enumerate(rows)
        ]
    header = MNLI_DEV_HEADER if dev else MNLI_TRAIN_HEADER
    out = [header]
    for i, r in enumerate(rows):
        gold = names[r["label"]]
        parses = ["( x )", "( y )", "(ROOT x)", "(ROOT y)"]
        extra = [gold] * (5 if dev else 1)
        out.append([str(i), str(i), f"{i}e", "fiction", *parses, r["premise"], r["hypothesis"], *extra, gold])
    return out


def write_tsv(root: Path, task: str, filename: str, lines: list[list[str]]) -> Path:
    path = root / get_task(task).tsv_dir / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their source explicitly; a developer's REPRO_DATA_DIR must not leak in."""
    monkeypatch.delenv("REPRO_DATA_DIR", raising=False)


# ---------------------------------------------------------------- tasks


def test_task_registry_specs() -> None:
    assert sorted(TASKS) == ["mnli", "mrpc", "rte", "sst2"]
    assert get_task("sst2").num_labels == 2 and get_task("mnli").num_labels == 3
    assert get_task("mnli").dev_split == "validation_matched"
    assert get_task("rte").dev_split == "validation"
    assert get_task("mrpc").hub_config == "mrpc" and get_task("mrpc").hub_path == "nyu-mll/glue"
    assert get_task("mnli").text_fields == ("premise", "hypothesis")
    assert [get_task(t).tsv_dir for t in ("sst2", "mrpc", "rte", "mnli")] == ["SST-2", "MRPC", "RTE", "MNLI"]
    spec = get_task("rte")
    assert get_task(spec) is spec
    with pytest.raises(Exception):  # frozen
        spec.name = "x"  # type: ignore[misc]


def test_unknown_task_lists_known_names() -> None:
    with pytest.raises(UnknownNameError) as exc:
        get_task("sst-2")
    msg = str(exc.value)
    assert "'sst-2'" in msg and "Did you mean 'sst2'?" in msg and "mnli, mrpc, rte, sst2" in msg
    with pytest.raises(UnknownNameError):
        load_split("cola", "train")


# ---------------------------------------------------------------- layouts agree


@pytest.mark.parametrize("task", ["sst2", "mrpc", "rte", "mnli"])
def test_jsonl_and_tsv_layouts_give_identical_datasets(tmp_path: Path, task: str) -> None:
    spec = get_task(task)
    rows = ROWS[task]
    jdir, tdir = tmp_path / "jsonl", tmp_path / "tsv"
    write_jsonl(jdir, task, spec.dev_split, rows)
    dev_file = spec.tsv.file_for(spec.dev_split)
    assert dev_file is not None
    write_tsv(tdir, task, dev_file, tsv_lines(task, rows, dev=True))
    write_tsv(tdir, task, "train.tsv", tsv_lines(task, rows))

    from_jsonl = load_split(task, spec.dev_split, jdir)
    from_tsv = load_split(task, "dev", tdir)  # "dev" is an alias for the task's dev split
    from_tsv_train = load_split(spec, "train", str(tdir))
    assert from_jsonl.features == from_tsv.features == features_for(task)
    assert from_jsonl.column_names == [*spec.text_fields, "label", "idx"]
    expected = [{**r, "idx": i} for i, r in enumerate(rows)]
    assert from_jsonl.to_list() == from_tsv.to_list() == from_tsv_train.to_list() == expected
    assert locate_split(task, "dev", jdir).kind == "jsonl" and locate_split(task, "dev", tdir).kind == "tsv"


def test_jsonl_preferred_when_both_layouts_present(tmp_path: Path) -> None:
    write_jsonl(tmp_path, "rte", "train", ROWS["rte"][:1])
    write_tsv(tmp_path, "rte", "train.tsv", tsv_lines("rte", ROWS["rte"]))
    assert len(load_split("rte", "train", tmp_path)) == 1


def test_jsonl_without_idx_uses_row_number_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "sst2" / "train.jsonl"
    path.parent.mkdir()
    path.write_text('{"sentence": "a", "label": 1}\n\n{"sentence": "b", "label": 0}\n\n', encoding="utf-8")
    assert load_split("sst2", "train", tmp_path)["idx"][:] == [0, 1]


# ---------------------------------------------------------------- source selection


def test_source_precedence_argument_env_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_dir() is None
    assert describe_source() == "hub:nyu-mll/glue"
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert describe_source(tmp_path / "arg") == f"local:{(tmp_path / 'arg').resolve()}"
    monkeypatch.setenv("REPRO_DATA_DIR", "")
    assert resolve_data_dir() is None


def test_env_data_dir_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_jsonl(tmp_path, "sst2", "validation", ROWS["sst2"])
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path))
    assert len(load_split("sst2", "validation")) == 3


# ---------------------------------------------------------------- bad input: one clear DataError each


def test_missing_directory_from_argument(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError) as exc:
        load_split("sst2", "train", missing)
    msg = str(exc.value)
    assert str(missing) in msg and "--data-dir" in msg and "REPRO_DATA_DIR" in msg and "unset" in msg
    assert "hub" in msg


def test_missing_directory_from_env_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="environment variable REPRO_DATA_DIR"):
        load_split("rte", "train")


def test_missing_split_lists_every_path_looked_at(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_split("mnli", "dev", tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "mnli" / "validation_matched.jsonl") in msg
    assert str(tmp_path / "MNLI" / "dev_matched.tsv") in msg
    assert "--data-dir" in msg and "REPRO_DATA_DIR" in msg and "unset" in msg


def test_missing_test_split_notes_tsv_has_no_labels(tmp_path: Path) -> None:
    write_tsv(tmp_path, "sst2", "train.tsv", tsv_lines("sst2", ROWS["sst2"]))
    with pytest.raises(DataError, match=r"GLUE TSV layout has no labelled 'test' split"):
        load_split("sst2", "test", tmp_path)


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, "sst2", "train", ROWS["sst2"])
    lines = path.read_text().splitlines()
    lines[2] = '{"sentence": "broken", "label": 1'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{path}:3: invalid JSON"):
        load_split("sst2", "train", tmp_path)


def test_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    rows = [ROWS["rte"][0], {"sentence1": "only one", "label": 0}]
    path = write_jsonl(tmp_path, "rte", "train", rows)
    with pytest.raises(DataError) as exc:
        load_split("rte", "train", tmp_path)
    assert f"{path}:2: missing field 'sentence2'" in str(exc.value)
    write_jsonl(tmp_path, "rte", "train", [{"sentence1": "a", "sentence2": "b"}])
    with pytest.raises(DataError, match=rf"{path}:1: missing field 'label'"):
        load_split("rte", "train", tmp_path)


def test_non_string_text_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, "sst2", "train", [{"sentence": 3, "label": 0}])
    with pytest.raises(DataError, match=rf"{path}:1: field 'sentence' must be a string"):
        load_split("sst2", "train", tmp_path)


@pytest.mark.parametrize("bad", [2, -1, "1", True, 0.0])
def test_jsonl_label_outside_label_set(tmp_path: Path, bad: object) -> None:
    path = write_jsonl(tmp_path, "sst2", "train", [ROWS["sst2"][0], {"sentence": "x", "label": bad}])
    with pytest.raises(DataError) as exc:
        load_split("sst2", "train", tmp_path)
    msg = str(exc.value)
    assert f"{path}:2: label {bad!r}" in msg and "allowed: 0 (negative), 1 (positive)" in msg
    if bad == -1 and not isinstance(bad, bool):
        assert "GLUE hides test-set labels" in msg


def test_tsv_label_outside_label_set(tmp_path: Path) -> None:
    lines = tsv_lines("rte", ROWS["rte"])
    lines[2][3] = "maybe"
    path = write_tsv(tmp_path, "rte", "train.tsv", lines)
    with pytest.raises(DataError) as exc:
        load_split("rte", "train", tmp_path)
    msg = str(exc.value)
    assert f"{path}:3: label 'maybe'" in msg and "0 (entailment), 1 (not_entailment)" in msg

    lines = tsv_lines("mrpc", ROWS["mrpc"])
    lines[1][0] = "2"
    path = write_tsv(tmp_path, "mrpc", "train.tsv", lines)
    with pytest.raises(DataError, match=rf"{path}:2: label '2'.*0 \(not_equivalent\), 1 \(equivalent\)"):
        load_split("mrpc", "train", tmp_path)


def test_tsv_header_missing_columns(tmp_path: Path) -> None:
    lines = tsv_lines("rte", ROWS["rte"])
    lines[0][1] = "premise"
    path = write_tsv(tmp_path, "rte", "train.tsv", lines)
    with pytest.raises(DataError, match=rf"{path}:1: header lacks column\(s\) \['sentence1'\]"):
        load_split("rte", "train", tmp_path)


def test_tsv_truncated_row(tmp_path: Path) -> None:
    lines = tsv_lines("mnli", ROWS["mnli"])
    lines[3] = lines[3][:9]
    path = write_tsv(tmp_path, "mnli", "train.tsv", lines)
    with pytest.raises(DataError, match=rf"{path}:4: 9 tab-separated fields, need at least 12"):
        load_split("mnli", "train", tmp_path)


def test_empty_split_jsonl_and_tsv(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, "sst2", "validation", [])
    with pytest.raises(DataError, match=rf"{path} contains no examples.*'validation' split of sst2 is empty"):
        load_split("sst2", "validation", tmp_path)
    path = write_tsv(tmp_path, "rte", "dev.tsv", tsv_lines("rte", []))  # header only
    with pytest.raises(DataError, match=rf"{path} contains no examples"):
        load_split("rte", "validation", tmp_path)


# ---------------------------------------------------------------- hub (monkeypatched: no network in tests)


def _hub_dataset(task: str, rows: list[dict[str, Any]]) -> datasets.Dataset:
    """What the hub returns: the GLUE features, built from our handmade rows (plus an extra column to drop)."""
    feats = features_for(task).copy()
    feats["extra"] = datasets.Value("string")
    return datasets.Dataset.from_list([{**r, "idx": i, "extra": "x"} for i, r in enumerate(rows)], features=feats)


def test_hub_path_calls_load_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_load_dataset(path: str, name: str, split: str) -> datasets.Dataset:
        calls.append((path, name, split))
        return _hub_dataset("mnli", ROWS["mnli"])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_split("mnli", "dev")
    assert calls == [("nyu-mll/glue", "mnli", "validation_matched")]
    write_jsonl(tmp_path, "mnli", "validation_matched", ROWS["mnli"])
    local = load_split("mnli", "validation_matched", tmp_path)
    assert ds.features == local.features and ds.to_list() == local.to_list()
    assert locate_split("mnli", "dev").identity()["kind"] == "hub"


def test_hub_failure_says_use_local_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as exc:
        load_split("sst2", "train")
    msg = str(exc.value)
    assert "nyu-mll/glue/sst2" in msg and "ConnectionError" in msg
    assert "Set REPRO_DATA_DIR or pass --data-dir" in msg


def test_hub_unlabelled_test_split_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    feats = features_for("sst2")
    unlabelled = datasets.Dataset.from_list([{"sentence": "a", "label": -1, "idx": 0}], features=feats)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: unlabelled)
    with pytest.raises(DataError, match=r"label -1 .*GLUE hides test-set labels"):
        load_split("sst2", "test")


def test_hub_missing_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = datasets.Dataset.from_dict({"text": ["a"], "label": [0]})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: wrong)
    with pytest.raises(DataError, match=r"columns \['sentence', 'idx'\] missing"):
        load_split("sst2", "train")


# ---------------------------------------------------------------- the real local copy (skipped if absent)

REAL_COUNTS = [
    ("sst2", "train", 67349), ("sst2", "validation", 872), ("sst2", "test", 1821),
    ("mrpc", "train", 3668), ("mrpc", "validation", 408),
    ("rte", "train", 2490), ("rte", "validation", 277),
    ("mnli", "train", 1000), ("mnli", "validation_matched", 1000),
]


@pytest.mark.parametrize(("task", "split", "rows"), REAL_COUNTS)
def test_real_local_glue_row_counts(real_glue: Path, task: str, split: str, rows: int) -> None:
    root = real_glue
    ds = load_split(task, split, root)
    assert len(ds) == rows
    assert ds.features == features_for(task)
    labels = ds["label"][:]
    assert set(labels) == set(range(get_task(task).num_labels))
    assert ds["idx"][:] == list(range(rows))


# ---------------------------------------------------------------- data notes


def test_the_shared_mnli_excerpt_carries_its_note(real_glue: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared copy's PROVENANCE.md says mnli/train is from the mismatched dev set: every MNLI result must say so.
    Not SST-2 from the same copy, not MNLI from the hub."""
    assert data_notes("mnli", real_glue) == (MNLI_MISMATCHED_TRAIN_NOTE,)
    assert MNLI_MISMATCHED_TRAIN_NOTE.startswith("MNLI: the 1,000 training pairs of this local excerpt come from the "
                                                 "MNLI mismatched dev set (PROVENANCE.md)")
    for task in ("sst2", "mrpc", "rte"):
        assert data_notes(task, real_glue) == ()
    assert data_notes("mnli", None) == ()  # the hub (REPRO_DATA_DIR unset by the autouse fixture)
    monkeypatch.setenv("REPRO_DATA_DIR", str(real_glue))  # the source is chosen as load_split chooses it
    assert data_notes("mnli") == (MNLI_MISMATCHED_TRAIN_NOTE,)
    # a finished run knows only its source string
    assert source_notes(("sst2", "mnli", "rte"), describe_source(real_glue)) == (MNLI_MISMATCHED_TRAIN_NOTE,)
    assert source_notes(("sst2", "rte"), describe_source(real_glue)) == ()
    assert source_notes(("mnli",), "hub:nyu-mll/glue") == () == source_notes(("mnli",), "local:")


@pytest.mark.parametrize(("text", "noted"), [
    ("Here `mnli/train`\nis 1,000 pairs from the mismatched dev set.", True),
    ("MNLI/TRAIN.jsonl: the Mismatched\n  Dev Set, 1,000 pairs", True),
    ("`mnli/train` is the full MNLI training set.", False),
    ("mnli/train: the full training set." + " filler" * 60 + " The mismatched dev set is not used.", False),
    ("", False),
])
def test_the_mnli_note_reads_provenance_near_mnli_train(tmp_path: Path, text: str, noted: bool) -> None:
    if text:
        (tmp_path / "PROVENANCE.md").write_text(text, encoding="utf-8")
    assert data_notes("mnli", tmp_path) == ((MNLI_MISMATCHED_TRAIN_NOTE,) if noted else ())
    assert data_notes("sst2", tmp_path) == ()
