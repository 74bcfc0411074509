"""The GLUE tasks the paper studies, declared once.

Everything else in ``repro.data`` (loading from JSONL, TSV or the hub; tokenizing pairs; label checks) is driven by
these specs, so adding a task means adding one entry here, not editing if/elif chains. Label ids follow the Hugging
Face GLUE schema (``datasets.load_dataset("nyu-mll/glue", task)``) so that every source gives the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from repro.registry import Registry

LabelEncoding = Literal["index", "name"]


@dataclass(frozen=True)
class TsvLayout:
    """Where a task lives in the classic GLUE TSV layout (as written by ``download_glue_data.py``).

    ``text_columns`` are the header names holding the task's text fields, in the order of ``TaskSpec.text_fields``
    (MNLI calls them ``sentence1``/``sentence2`` while the hub calls them ``premise``/``hypothesis``).
    ``label_encoding`` says whether the label column holds the class index ("0", "1") or the class name
    ("entailment"). ``split_files`` maps a split name to its file; GLUE's test TSVs carry no labels, so they are
    deliberately absent.
    """

    directory: str
    text_columns: tuple[str, ...]
    label_column: str
    label_encoding: LabelEncoding
    split_files: tuple[tuple[str, str], ...] = (("train", "train.tsv"), ("validation", "dev.tsv"))

    def file_for(self, split: str) -> str | None:
        return dict(self.split_files).get(split)


@dataclass(frozen=True)
class TaskSpec:
    """A GLUE classification task: its text fields, label names (in id order), splits and where to find it."""

    name: str
    text_fields: tuple[str, ...]
    label_names: tuple[str, ...]
    tsv: TsvLayout
    train_split: str = "train"
    dev_split: str = "validation"
    hub_path: str = "nyu-mll/glue"
    hub_config: str = ""  # empty means "same as name" (filled in by __post_init__)

    def __post_init__(self) -> None:
        if not self.hub_config:
            object.__setattr__(self, "hub_config", self.name)
        if len(self.tsv.text_columns) != len(self.text_fields):
            raise ValueError(f"task {self.name!r}: TSV text columns do not match text_fields")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    @property
    def tsv_dir(self) -> str:
        return self.tsv.directory

    def resolve_split(self, split: str) -> str:
        """``"dev"`` is accepted as an alias for the task's dev split (``validation_matched`` for MNLI)."""
        return self.dev_split if split == "dev" else split


TASKS: Registry[TaskSpec] = Registry("task")

TASKS.add(
    "sst2",
    TaskSpec(
        name="sst2",
        text_fields=("sentence",),
        label_names=("negative", "positive"),
        tsv=TsvLayout("SST-2", ("sentence",), "label", "index"),
    ),
)
TASKS.add(
    "mrpc",
    TaskSpec(
        name="mrpc",
        text_fields=("sentence1", "sentence2"),
        label_names=("not_equivalent", "equivalent"),
        tsv=TsvLayout("MRPC", ("#1 String", "#2 String"), "Quality", "index"),
    ),
)
TASKS.add(
    "rte",
    TaskSpec(
        name="rte",
        text_fields=("sentence1", "sentence2"),
        label_names=("entailment", "not_entailment"),
        tsv=TsvLayout("RTE", ("sentence1", "sentence2"), "label", "name"),
    ),
)
TASKS.add(
    "mnli",
    TaskSpec(
        name="mnli",
        text_fields=("premise", "hypothesis"),
        label_names=("entailment", "neutral", "contradiction"),
        dev_split="validation_matched",
        tsv=TsvLayout(
            "MNLI",
            ("sentence1", "sentence2"),
            "gold_label",
            "name",
            split_files=(
                ("train", "train.tsv"),
                ("validation_matched", "dev_matched.tsv"),
                ("validation_mismatched", "dev_mismatched.tsv"),
            ),
        ),
    ),
)


def get_task(task: str | TaskSpec) -> TaskSpec:
    """The spec for a task name (a spec passes through); unknown names raise ``UnknownNameError``."""
    if isinstance(task, TaskSpec):
        return task
    return TASKS.get(task)
