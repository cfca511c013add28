"""PKU-MMD phase 1: long untrimmed recordings and their label files, cut into trimmed recognition clips.

A recording `NNNN-V` (view L, M or R) has an RGB video, an IR video (an AVI or a folder of per-frame
PNGs) and a label file with one row per action instance, `label,start,end,confidence`: label 1–51, frames
numbered from 1 with `end` inclusive (the common reading; codebases differ by one frame, so
`data.pkummd.first_frame: 0` reads 0-based rows). A row becomes a `PairedSample` with the 0-based,
end-exclusive range [start − 1, end) of the RGB stream. Sample ids follow the public PKU-MMD instance
naming, `F<video>V<view>C<label>L<row>` (view L = 1, M = 2, R = 3; row = line of the label file), e.g.
F292V003C002L005.

Suspicious rows are reported (`PkuIndex.row_problems`, listed by `arctic check`) and left out of training
unless `data.pkummd.suspicious_rows: keep`: end before start (the download's one such row, `0043-L` line
21 `1,4925,4036,2`, is a typo — swapped it becomes an 890-frame "bow" spanning four other actions, while
the other views put it at 55 and 36 frames), zero length, and two rows of a recording that share more than
`max_overlap` of the shorter one (the file cannot tell which is right, so both go). Confidence is "1 or 2
for slight and strong recommendation respectively" (ECHO960/PKU-MMD README); 135 of the 21,545 real rows
say 0, which no public source explains; `min_confidence` filters on it (default 0: keep all).

Copies of the download are laid out in more than one way (labels under `Label/Train_Label_PKU_final/` or
`Label/`, split files named `cross-subject.txt` or `cross_subject.txt`): when a configured pattern finds
nothing, the known layouts (`KNOWN_LAYOUTS`, `KNOWN_SPLIT_NAMES`) are tried in order and the one used is
said in `PkuIndex.notes`; when none fits, the patterns tried are named.

The protocols come from the split files `cross-subject.txt` and `cross-view.txt`: four lines,
"Training videos:", a comma-separated list of recordings, "Validation videos:" (spelt "Validataion" in
the download), the test list; a trailing comma is fine. Class names: the official 51 (shipped with the
package, alphabetical as in the label ids), or `data.class_names`, or the root's `class_names.txt`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from arctic_kd.config import PkuMmdConfig
from arctic_kd.data.ntu import CLASS_NAMES_FILE, read_class_names
from arctic_kd.data.pkufiles import (
    RECORDING_NAME,
    LabelRow,
    RowProblem,
    read_labels,
    read_split,
    screen_rows,
)
from arctic_kd.data.registration import NOMINAL
from arctic_kd.data.samples import PairedSample
from arctic_kd.errors import DataError

VIEWS = {"L": 1, "M": 2, "R": 3}
# protocol -> (split file name, description)
PROTOCOLS = {
    "pkummd-xsub": ("cross-subject", "PKU-MMD cross-subject, from Split/cross-subject.txt"),
    "pkummd-xview": ("cross-view", "PKU-MMD cross-view, from Split/cross-view.txt"),
}
MODALITIES = ("rgb", "ir", "labels")
# path patterns seen in public copies and loaders, tried in this order when the configured one finds nothing
KNOWN_LAYOUTS = {
    "rgb": ("Data/RGB_VIDEO/{video}.avi",),
    "ir": ("Data/IR_VIDEO/{video}-infrared.avi", "Data/IR_VIDEO/{video}"),
    "labels": (
        "Label/Train_Label_PKU_final/{video}.txt",
        "Label/{video}.txt",
        "Train_Label_PKU_final/{video}.txt",
    ),
}
KNOWN_SPLIT_FOLDERS = ("Split/{split}.txt",)
KNOWN_SPLIT_NAMES = (("cross-subject", "cross-view"), ("cross_subject", "cross_view"))


@dataclass(frozen=True)
class Recording:
    """The files of one recording; None where that file is absent."""

    name: str
    rgb: Path | None
    ir: Path | None
    labels: Path | None


@dataclass
class PkuIndex:
    """The recordings named by the split files, with the files each has, and the class names.

    `layout` holds the patterns in use (found ones where the configured found nothing); `notes` says
    which were found or not found; `row_problems` lists the suspicious label rows of the recordings whose
    clips were read.
    """

    root: Path
    layout: PkuMmdConfig
    recordings: dict[str, Recording]
    splits: dict[str, tuple[list[str], list[str]]]  # protocol -> (train, test) recordings
    class_names: list[str]
    notes: list[str] = field(default_factory=list)
    split_files: dict[str, list[str]] = field(default_factory=dict)  # protocol -> paths tried, found last
    _clips: dict[str, list[PairedSample]] = field(default_factory=dict, repr=False)
    _problems: dict[str, list[RowProblem]] = field(default_factory=dict, repr=False)
    _unconfident: dict[str, int] = field(default_factory=dict, repr=False)

    def complete(self, modalities: Sequence[str]) -> list[str]:
        """Recordings with a label file and every one of `modalities`."""
        return [
            r.name for r in self.recordings.values() if r.labels and all(getattr(r, m) for m in modalities)
        ]

    def missing(self, modalities: Sequence[str] = MODALITIES) -> dict[str, list[str]]:
        gaps = {r.name: [m for m in modalities if getattr(r, m) is None] for r in self.recordings.values()}
        return {name: lacking for name, lacking in gaps.items() if lacking}

    def clips(self, name: str) -> list[PairedSample]:
        """The trimmed clips of one recording, one per label row that passes `screen_rows` (read once)."""
        if name not in self._clips:
            recording = self.recordings[name]
            rows = read_labels(recording.labels, len(self.class_names))
            kept, self._problems[name], self._unconfident[name] = screen_rows(
                rows, self.layout, recording.labels
            )
            self._clips[name] = [self._clip(recording, row) for row in kept]
        return self._clips[name]

    def row_problems(self) -> list[RowProblem]:
        """The suspicious rows of every label file read so far, in recording order."""
        return [problem for name in sorted(self._problems) for problem in self._problems[name]]

    def row_summary(self) -> str:
        """One line: how many rows of the label files read so far were dropped, kept or filtered."""
        problems = self.row_problems()
        counts = {
            action: sum(p.action == action for p in problems) for action in ("dropped", "swapped", "kept")
        }
        parts = [f"{n} {action}" for action, n in counts.items() if n]
        unconfident = sum(self._unconfident.values())
        if unconfident:
            parts.append(
                f"{unconfident} under data.pkummd.min_confidence {self.layout.min_confidence} left out"
            )
        rows = f"{len(problems)} suspicious label row(s)" + (f": {', '.join(parts)}" if parts else "")
        return f"{rows} (data.pkummd.suspicious_rows: {self.layout.suspicious_rows})"

    def _clip(self, recording: Recording, row: LabelRow) -> PairedSample:
        number, view = RECORDING_NAME.fullmatch(recording.name).groups()
        start = max(row.first - self.layout.first_frame, 0)
        end = max(row.last + 1 - self.layout.first_frame, start + 1)
        sample_id = f"F{int(number):03d}V{VIEWS[view]:03d}C{row.label:03d}L{row.line:03d}"
        # no pixel coordinates in PKU-MMD skeletons: the nominal map is all there is (README)
        # no subject ids either: validation holds out whole takes (every view of recording F<number>)
        return PairedSample(
            sample_id,
            row.label - 1,
            recording.rgb,
            recording.ir,
            start,
            end,
            registration_source=NOMINAL,
            subject=f"F{int(number):03d}",
        )

    def split(
        self, protocol: str, modalities: Sequence[str]
    ) -> tuple[list[PairedSample], list[PairedSample]]:
        """(train, test) clips of the recordings that have labels and every needed modality."""
        if _check_protocol(protocol) not in self.splits:
            tried = ", ".join(self.split_files.get(protocol, []))
            raise DataError(self.root, f"protocol {protocol} needs its split file (tried {tried})")
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
    """Read the split files present under `root` and locate every recording they name, searching the
    known layouts for any file kind the configured pattern finds none of (module doc)."""
    root = Path(root)
    layout = layout or PkuMmdConfig()
    splits, split_files, notes = {}, {}, []
    for position, protocol in enumerate(PROTOCOLS):
        tried = _split_candidates(layout, position)
        split_files[protocol] = tried
        found = next((path for path in tried if (root / path).is_file()), None)
        if found is None:
            continue
        splits[protocol] = read_split(root / found)
        split_files[protocol] = tried[: tried.index(found) + 1]
        if found != tried[0]:
            notes.append(f"{protocol}: no {tried[0]}; using {found} (set data.pkummd.splits / split_names)")
    if not splits:
        wanted = ", ".join(path for paths in split_files.values() for path in paths)
        raise DataError(root, f"no PKU-MMD split files found; tried {wanted}")
    names = sorted({name for train, test in splits.values() for name in (*train, *test)})
    for key in ("labels", "rgb", "ir"):
        layout, note = _found_layout(root, layout, key, names)
        notes += [note] if note else []
    recordings = {name: _recording(root, layout, name) for name in names}
    return PkuIndex(root, layout, recordings, splits, _class_names(root, class_names), notes, split_files)


def _split_candidates(layout: PkuMmdConfig, position: int) -> list[str]:
    """The configured split file of the protocol at `position` (0 xsub, 1 xview), then the known ones."""
    configured = _fill(layout, "splits", split=layout.split_names[position])
    known = [
        folder.format(split=names[position]) for folder in KNOWN_SPLIT_FOLDERS for names in KNOWN_SPLIT_NAMES
    ]
    return [configured, *(path for path in known if path != configured)]


def _found_layout(
    root: Path, layout: PkuMmdConfig, key: str, names: Sequence[str]
) -> tuple[PkuMmdConfig, str]:
    """`layout` with the pattern for `key` that finds files (the configured one when it finds any), and a
    note when another was used or none fits."""
    configured = getattr(layout, key)
    patterns = [configured, *(p for p in KNOWN_LAYOUTS[key] if p != configured)]
    for pattern in patterns:
        candidate = dataclasses.replace(layout, **{key: pattern})
        found = sum((root / _fill(candidate, key, video=name)).exists() for name in names)
        if found and pattern == configured:
            return layout, ""
        if found:
            return candidate, (
                f"data.pkummd.{key}: nothing at {configured!r}; using {pattern!r} "
                f"({found} of {len(names)} recordings)"
            )
    tried = ", ".join(repr(p) for p in patterns)
    return layout, f"data.pkummd.{key}: no file for any recording; tried {tried}"


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
