"""PKU-MMD's text files, read line by line with errors naming file and line: label files (one
`label,start,end,confidence` row per action instance, `read_labels`), the screening of suspicious rows
(`screen_rows`: reversed, empty or overlapping), and the split files of the protocols (`read_split`).
The dataset reader (`data.pkummd`) turns them into samples.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from arctic_kd.config import PkuMmdConfig
from arctic_kd.errors import DataError

NUM_CLASSES = 51
RECORDING_NAME = re.compile(r"(\d{4})-([LMR])")  # e.g. 0002-L: recording 2 seen from the left
_TRAIN_HEADER = re.compile(r"training videos:?", re.IGNORECASE)
_TEST_HEADER = re.compile(r"(validation|validataion|test|testing) videos:?", re.IGNORECASE)


@dataclass(frozen=True)
class LabelRow:
    """One action instance exactly as its label file lists it (frames as in the file, end may be first)."""

    label: int  # 1-based, as in the file
    start: int
    end: int
    confidence: int
    line: int

    @property
    def first(self) -> int:
        return min(self.start, self.end)

    @property
    def last(self) -> int:
        return max(self.start, self.end)


@dataclass(frozen=True)
class RowProblem:
    """A label row that `arctic check` lists: what is wrong with it and what training does with it."""

    path: Path
    line: int
    row: str  # the row as written, e.g. "1,4925,4036,2"
    problem: str
    action: str  # "dropped", "kept" or "swapped"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.row}: {self.problem} ({self.action})"


def read_labels(path: str | Path, num_classes: int = NUM_CLASSES) -> list[LabelRow]:
    """The rows of a label file; any malformed row is a `DataError` naming the file and line."""
    rows = []
    for number, text in _numbered_lines(path):
        fields = [f.strip() for f in text.split(",")]
        if fields[-1] == "":
            fields.pop()  # a trailing comma
        if len(fields) != 4:
            raise DataError(path, f"expected 'label,start,end,confidence', found {text!r}", line=number)
        try:
            label, start, end, confidence = map(int, fields)
        except ValueError:
            raise DataError(path, f"expected four integers, found {text!r}", line=number) from None
        if not 1 <= label <= num_classes:
            raise DataError(path, f"label {label} is outside 1–{num_classes}", line=number)
        if min(start, end) < 0:
            raise DataError(path, f"negative frame number in {text!r}", line=number)
        rows.append(LabelRow(label, start, end, confidence, number))
    return rows


def screen_rows(
    rows: Sequence[LabelRow], layout: PkuMmdConfig, path: str | Path
) -> tuple[list[LabelRow], list[RowProblem], int]:
    """(rows to train on, suspicious rows, rows under `min_confidence`) of one label file (module doc).

    Reversed and zero-length rows are judged first, so that with "drop" a typo like 0043-L line 21 does
    not also take the rows it would overlap with it.
    """
    keep = layout.suspicious_rows == "keep"
    confident = [row for row in rows if row.confidence >= layout.min_confidence]
    problems: dict[int, tuple[LabelRow, str, str]] = {}  # line -> (row, problem, action): its first problem

    def flag(row: LabelRow, problem: str, kept_as: str = "kept") -> None:
        problems.setdefault(row.line, (row, problem, kept_as if keep else "dropped"))

    for row in confident:
        if row.start > row.end:
            flag(row, f"end {row.end} before start {row.start}", kept_as="swapped")
        elif row.start == row.end:
            flag(row, f"zero length (start = end = {row.start})")
    candidates = [row for row in confident if keep or row.line not in problems]
    for row, other, shared in _overlaps(candidates, layout.max_overlap):
        flag(row, f"shares {shared} frames with line {other.line}")
    if layout.first_frame == 1:
        for row in confident:
            if row.first == 0 and row.line not in problems:
                problems[row.line] = (row, "frame 0, but rows count from 1 (data.pkummd.first_frame)", "kept")
    listed = [
        RowProblem(Path(path), row.line, _row_text(row), problem, action)
        for row, problem, action in sorted(problems.values(), key=lambda item: item[0].line)
    ]
    dropped = {p.line for p in listed if p.action == "dropped"}
    return [row for row in confident if row.line not in dropped], listed, len(rows) - len(confident)


def _overlaps(rows: Sequence[LabelRow], max_overlap: float) -> Iterable[tuple[LabelRow, LabelRow, int]]:
    """(row, other row, shared frames) for both rows of every pair sharing more than `max_overlap` of the
    shorter row's frames (ends inclusive, so rows that meet at one frame share little)."""
    ordered = sorted(rows, key=lambda row: row.first)
    for i, row in enumerate(ordered):
        for other in ordered[i + 1 :]:
            if other.first > row.last:
                break
            shared = min(row.last, other.last) - other.first + 1
            shorter = min(row.last - row.first, other.last - other.first) + 1
            if shared > max_overlap * shorter:
                yield row, other, shared
                yield other, row, shared


def _row_text(row: LabelRow) -> str:
    return f"{row.label},{row.start},{row.end},{row.confidence}"


def read_split(path: str | Path) -> tuple[list[str], list[str]]:
    """(training, test) recordings of a split file; a malformed line is a `DataError` naming it."""
    lines = list(_numbered_lines(path))
    if len(lines) != 4:
        raise DataError(
            path,
            f"expected 4 lines ('Training videos:', a list, 'Validation videos:', a list), "
            f"found {len(lines)} non-empty lines",
        )
    for (number, text), header, wanted in (
        (lines[0], _TRAIN_HEADER, "Training videos:"),
        (lines[2], _TEST_HEADER, "Validation videos:"),
    ):
        if not header.fullmatch(text):
            raise DataError(path, f"expected {wanted!r}, found {text!r}", line=number)
    train, test = _video_list(path, *lines[1]), _video_list(path, *lines[3])
    both = sorted(set(train) & set(test))
    if both:
        raise DataError(
            path, f"{len(both)} recording(s) both train and test, e.g. {both[0]}", line=lines[3][0]
        )
    return train, test


def _video_list(path: str | Path, number: int, text: str) -> list[str]:
    """The recording names of one split-file line, each checked (a trailing comma is fine)."""
    items = [item.strip() for item in text.split(",")]
    if items[-1] == "":
        items.pop()  # a trailing comma
    for item in items:
        if not RECORDING_NAME.fullmatch(item):
            raise DataError(path, f"{item!r} is not a recording name like 0002-L", line=number)
    return items


def _numbered_lines(path: str | Path) -> Iterable[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers (any line ending)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot read: {error}") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
