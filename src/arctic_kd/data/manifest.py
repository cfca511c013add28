"""Any paired RGB+IR rig without code: a CSV manifest listing one sample per row.

Columns (a header row names them, in any order): `rgb_path`, `ir_path`, `label`, and optionally `start`,
`end`, `subject`, `camera`, `split`. Paths are relative to the manifest's folder (or absolute); an empty
path means the sample lacks that modality. `start`/`end` trim a clip out of a longer video: 0-based frames
of the RGB video (of the IR video when there is no RGB), `end` exclusive; empty = the whole video.

Labels are class names or 0-based class numbers. With a class-names file (one name per line, in label
order) a label may be either; without one, integer labels give classes "0" … "max", and name labels give
their distinct values in sorted order. Splits: protocol `manifest-split` reads the `split` column (train
or test); `manifest-xsub` trains on the rows whose `subject` is in `data.train_subjects` and tests on the
rest. Every malformed row is a `DataError` naming the manifest and the line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from arctic_kd.data.ntu import read_class_names
from arctic_kd.data.samples import MODALITIES, PairedSample
from arctic_kd.errors import DataError

REQUIRED = ("rgb_path", "ir_path", "label")
OPTIONAL = ("start", "end", "subject", "camera", "split")
SPLITS = ("train", "test")
PROTOCOLS = {
    "manifest-split": "the manifest's split column (train / test)",
    "manifest-xsub": "data.train_subjects train, the other subjects test",
}


@dataclass(frozen=True)
class ManifestRow:
    sample: PairedSample
    subject: str
    camera: str
    split: str
    line: int


@dataclass
class Manifest:
    path: Path
    rows: list[ManifestRow]
    class_names: list[str]

    def missing(self, modalities: Sequence[str] = MODALITIES) -> dict[str, list[str]]:
        """Sample id -> the modalities among `modalities` whose path cell is empty."""
        gaps = {r.sample.sample_id: [m for m in modalities if _path(r.sample, m) is None] for r in self.rows}
        return {name: lacking for name, lacking in gaps.items() if lacking}

    def split(
        self, protocol: str, modalities: Sequence[str], train_subjects: Sequence[str] = ()
    ) -> tuple[list[PairedSample], list[PairedSample]]:
        """(train, test) samples of the rows that list every one of `modalities`."""
        if protocol not in PROTOCOLS:
            raise DataError(
                "data.protocol", f"{protocol!r} is not a manifest protocol; use {' or '.join(PROTOCOLS)}"
            )
        if protocol == "manifest-xsub" and not train_subjects:
            raise DataError("data.train_subjects", "manifest-xsub needs the list of training subjects")
        train: list[PairedSample] = []
        test: list[PairedSample] = []
        for row in self.rows:
            if any(_path(row.sample, m) is None for m in modalities):
                continue
            (train if self._is_train(row, protocol, train_subjects) else test).append(row.sample)
        return train, test

    def _is_train(self, row: ManifestRow, protocol: str, train_subjects: Sequence[str]) -> bool:
        column, value = ("split", row.split) if protocol == "manifest-split" else ("subject", row.subject)
        if not value:
            raise DataError(self.path, f"protocol {protocol} needs the {column} of every row", line=row.line)
        return value == "train" if column == "split" else value in train_subjects


def _path(sample: PairedSample, modality: str) -> Path | None:
    return sample.rgb if modality == "rgb" else sample.ir


def read_manifest(path: str | Path, class_names: str | Path = "") -> Manifest:
    """Parse a manifest; `class_names` is an optional class-names file (see the module docstring)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            lines = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(path, f"cannot read the manifest: {error}") from None
    lines = [(number, [cell.strip() for cell in row]) for number, row in lines if any(c.strip() for c in row)]
    if not lines:
        raise DataError(path, "the manifest is empty (expected a header row and one row per sample)")
    header_line, header = lines[0]
    columns = _columns(path, header, header_line)
    cells = [(number, _cells(path, columns, row, number)) for number, row in lines[1:]]
    if not cells:
        raise DataError(path, "the manifest lists no samples")
    names, labels = _labels(path, cells, class_names)
    rows = [_row(path, number, row, label) for (number, row), label in zip(cells, labels, strict=True)]
    return Manifest(path, rows, names)


def _columns(path: Path, header: list[str], line: int) -> list[str]:
    columns = [name.lower() for name in header]
    for name in columns:
        if name not in REQUIRED + OPTIONAL:
            raise DataError(
                path, f"unknown column {name!r}; columns are {', '.join(REQUIRED + OPTIONAL)}", line=line
            )
        if columns.count(name) > 1:
            raise DataError(path, f"column {name!r} appears twice", line=line)
    absent = [name for name in REQUIRED if name not in columns]
    if absent:
        raise DataError(path, f"the header lacks the column(s) {', '.join(absent)}", line=line)
    return columns


def _cells(path: Path, columns: list[str], row: list[str], line: int) -> dict[str, str]:
    if len(row) != len(columns):
        raise DataError(path, f"expected {len(columns)} fields like the header, found {len(row)}", line=line)
    cells = dict(zip(columns, row, strict=True))
    if not cells["label"]:
        raise DataError(path, "the label is empty", line=line)
    if not cells["rgb_path"] and not cells["ir_path"]:
        raise DataError(path, "neither rgb_path nor ir_path is given", line=line)
    return cells


def _row(path: Path, line: int, cells: dict[str, str], label: int) -> ManifestRow:
    folder = path.parent
    rgb = folder / cells["rgb_path"] if cells["rgb_path"] else None
    ir = folder / cells["ir_path"] if cells["ir_path"] else None
    start = _frame(path, line, cells, "start")
    end = _frame(path, line, cells, "end")
    if end is not None and end <= (start or 0):
        raise DataError(path, f"end {end} is not after start {start or 0} (end is exclusive)", line=line)
    split = cells.get("split", "").lower()
    if split and split not in SPLITS:
        raise DataError(path, f"split {cells['split']!r} is not train or test", line=line)
    subject = cells.get("subject", "")
    sample = PairedSample(f"{path.name}:{line}", label, rgb, ir, start or 0, end, subject=subject)
    return ManifestRow(sample, subject, cells.get("camera", ""), split, line)


def _frame(path: Path, line: int, cells: dict[str, str], column: str) -> int | None:
    text = cells.get(column, "")
    if not text:
        return None
    if not _is_number(text):
        raise DataError(path, f"{column} {text!r} is not a frame number (0, 1, 2, …)", line=line)
    return int(text)


def _labels(
    path: Path, cells: list[tuple[int, dict[str, str]]], class_names: str | Path
) -> tuple[list[str], list[int]]:
    """The class names and each row's class index."""
    texts = [(number, row["label"]) for number, row in cells]
    if class_names:
        names = read_class_names(class_names)
        by_name = {name: i for i, name in enumerate(names)}
        return names, [_known_label(path, number, text, by_name, len(names)) for number, text in texts]
    if all(_is_number(text) for _, text in texts):
        numbers = [int(text) for _, text in texts]
        return [str(i) for i in range(max(numbers) + 1)], numbers
    names = sorted({text for _, text in texts})
    by_name = {name: i for i, name in enumerate(names)}
    return names, [by_name[text] for _, text in texts]


def _known_label(path: Path, line: int, text: str, by_name: dict[str, int], count: int) -> int:
    if text in by_name:
        return by_name[text]
    if _is_number(text) and int(text) < count:
        return int(text)
    raise DataError(
        path, f"label {text!r} is neither a class name nor a class number 0–{count - 1}", line=line
    )


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()
