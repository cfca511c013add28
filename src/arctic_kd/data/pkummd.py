"""PKU-MMD phase 1: long untrimmed recordings and their label files, cut into trimmed recognition clips.

A recording `NNNN-V` (view L, M or R) has an RGB video, an IR video (an AVI or a folder of per-frame
PNGs) and a label file with one row per action instance, `label,start,end,confidence`: label 1–51, frames
numbered from 1 with `end` inclusive (the common reading; codebases differ by one frame, so
`data.pkummd.first_frame: 0` reads 0-based rows). A row becomes a `PairedSample` with the 0-based,
end-exclusive range [start − 1, end) of the RGB stream; rows listing end before start are swapped, as
the real files need. Sample ids follow the public PKU-MMD instance naming, `F<video>V<view>C<label>L<row>`
(view L = 1, M = 2, R = 3; row = line of the label file), e.g. F292V003C002L005.

The protocols come from the split files `cross-subject.txt` and `cross-view.txt`: four lines,
"Training videos:", a comma-separated list of recordings, "Validation videos:" (spelt "Validataion" in
the download), the test list; a trailing comma is fine. Class names: the official 51 (shipped with the
package, alphabetical as in the label ids), or `data.class_names`, or the root's `class_names.txt`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from arctic_kd.config import PkuMmdConfig
from arctic_kd.data.dataset import PairedSample
from arctic_kd.data.ntu import CLASS_NAMES_FILE, read_class_names
from arctic_kd.errors import DataError

VIEWS = {"L": 1, "M": 2, "R": 3}
NUM_CLASSES = 51
# protocol -> (split file name, description)
PROTOCOLS = {
    "pkummd-xsub": ("cross-subject", "PKU-MMD cross-subject, from Split/cross-subject.txt"),
    "pkummd-xview": ("cross-view", "PKU-MMD cross-view, from Split/cross-view.txt"),
}
_VIDEO = re.compile(r"(\d{4})-([LMR])")
_TRAIN_HEADER = re.compile(r"training videos:?", re.IGNORECASE)
_TEST_HEADER = re.compile(r"(validation|validataion|test|testing) videos:?", re.IGNORECASE)
MODALITIES = ("rgb", "ir", "labels")


@dataclass(frozen=True)
class LabelRow:
    """One action instance as its label file lists it (start ≤ end after repair; frames as in the file)."""

    label: int  # 1-based, as in the file
    start: int
    end: int
    confidence: int
    line: int


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
        start, end = min(start, end), max(start, end)
        rows.append(LabelRow(label, start, end, confidence, number))
    return rows


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
    items = [item.strip() for item in text.split(",")]
    if items[-1] == "":
        items.pop()  # a trailing comma
    for item in items:
        if not _VIDEO.fullmatch(item):
            raise DataError(path, f"{item!r} is not a recording name like 0002-L", line=number)
    return items


def _numbered_lines(path: str | Path) -> Iterable[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers (any line ending)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot read: {error}") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


@dataclass(frozen=True)
class Recording:
    """The files of one recording; None where that file is absent."""

    name: str
    rgb: Path | None
    ir: Path | None
    labels: Path | None


@dataclass
class PkuIndex:
    """The recordings named by the split files, with the files each has, and the class names."""

    root: Path
    layout: PkuMmdConfig
    recordings: dict[str, Recording]
    splits: dict[str, tuple[list[str], list[str]]]  # protocol -> (train, test) recordings
    class_names: list[str]
    _clips: dict[str, list[PairedSample]] = field(default_factory=dict, repr=False)

    def complete(self, modalities: Sequence[str]) -> list[str]:
        """Recordings with a label file and every one of `modalities`."""
        return [
            r.name for r in self.recordings.values() if r.labels and all(getattr(r, m) for m in modalities)
        ]

    def missing(self, modalities: Sequence[str] = MODALITIES) -> dict[str, list[str]]:
        gaps = {r.name: [m for m in modalities if getattr(r, m) is None] for r in self.recordings.values()}
        return {name: lacking for name, lacking in gaps.items() if lacking}

    def clips(self, name: str) -> list[PairedSample]:
        """The trimmed clips of one recording, one per label row (read once)."""
        if name not in self._clips:
            recording = self.recordings[name]
            rows = read_labels(recording.labels, len(self.class_names))
            self._clips[name] = [self._clip(recording, row) for row in rows]
        return self._clips[name]

    def _clip(self, recording: Recording, row: LabelRow) -> PairedSample:
        number, view = _VIDEO.fullmatch(recording.name).groups()
        start = max(row.start - self.layout.first_frame, 0)
        end = max(row.end + 1 - self.layout.first_frame, start + 1)
        sample_id = f"F{int(number):03d}V{VIEWS[view]:03d}C{row.label:03d}L{row.line:03d}"
        return PairedSample(sample_id, row.label - 1, recording.rgb, recording.ir, start, end)

    def split(
        self, protocol: str, modalities: Sequence[str]
    ) -> tuple[list[PairedSample], list[PairedSample]]:
        """(train, test) clips of the recordings that have labels and every needed modality."""
        if _check_protocol(protocol) not in self.splits:
            split_file = _fill(self.layout, "splits", split=PROTOCOLS[protocol][0])
            raise DataError(self.root / split_file, f"protocol {protocol} needs this split file")
        train, test = self.splits[protocol]
        usable = set(self.complete(modalities))
        return (
            [clip for name in train if name in usable for clip in self.clips(name)],
            [clip for name in test if name in usable for clip in self.clips(name)],
        )


def _check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise DataError(
            "data.protocol", f"{protocol!r} is not a PKU-MMD protocol; use {' or '.join(PROTOCOLS)}"
        )
    return protocol


def index_pkummd(root: str | Path, layout: PkuMmdConfig | None = None, class_names: str = "") -> PkuIndex:
    """Read the split files present under `root` and locate every recording they name."""
    root = Path(root)
    layout = layout or PkuMmdConfig()
    splits = {}
    for protocol, (split_name, _) in PROTOCOLS.items():
        path = root / _fill(layout, "splits", split=split_name)
        if path.is_file():
            splits[protocol] = read_split(path)
    if not splits:
        wanted = ", ".join(_fill(layout, "splits", split=s) for s, _ in PROTOCOLS.values())
        raise DataError(root, f"no PKU-MMD split files ({wanted}) found")
    names = sorted({name for train, test in splits.values() for name in (*train, *test)})
    recordings = {name: _recording(root, layout, name) for name in names}
    return PkuIndex(root, layout, recordings, splits, _class_names(root, class_names))


def _recording(root: Path, layout: PkuMmdConfig, name: str) -> Recording:
    def existing(key: str) -> Path | None:
        path = root / _fill(layout, key, video=name)
        return path if path.exists() else None

    return Recording(name, existing("rgb"), existing("ir"), existing("labels"))


def _fill(layout: PkuMmdConfig, key: str, **values: str) -> str:
    """A path pattern with its placeholder filled; a pattern with any other placeholder is a config error."""
    pattern = getattr(layout, key)
    try:
        return pattern.format(**values)
    except (KeyError, IndexError, ValueError):
        wanted = ", ".join(f"{{{v}}}" for v in values)
        raise DataError(f"data.pkummd.{key}", f"{pattern!r}: the only placeholder is {wanted}") from None


def _class_names(root: Path, names_file: str) -> list[str]:
    """`data.class_names` if set, else the root's class_names.txt (synthetic data), else the official 51."""
    if names_file:
        return read_class_names(names_file)
    if (root / CLASS_NAMES_FILE).is_file():
        return read_class_names(root / CLASS_NAMES_FILE)
    return official_class_names()


def official_class_names() -> list[str]:
    """PKU-MMD phase 1's 51 actions in label order (label 1 = 'bow')."""
    resource = resources.files("arctic_kd.data") / "resources" / "pkummd_class_names.txt"
    with resources.as_file(resource) as path:
        return read_class_names(path)
