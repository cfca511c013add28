"""NTU RGB+D sample names, the index of a dataset folder, and class names.

The index looks at file names only: 114k samples must be listed in seconds, and a broken video is
`prepare`'s business, not the index's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from arctic_kd.errors import DataError

_NAME = r"S([0-9]{3})C([0-9]{3})P([0-9]{3})R([0-9]{3})A([0-9]{3})"
_NAME_RE = re.compile(_NAME)
MODALITIES = ("rgb", "ir", "skeleton")
# modality -> (folder as distributed, file name pattern)
_LAYOUT = {
    "rgb": ("nturgb+d_rgb", re.compile(rf"({_NAME})_rgb\.avi")),
    "ir": ("nturgb+d_ir", re.compile(rf"({_NAME})_ir\.avi")),
    "skeleton": ("nturgb+d_skeletons", re.compile(rf"({_NAME})\.skeleton")),
}
CLASS_NAMES_FILE = "class_names.txt"  # optional, in the dataset root (the synthetic generator writes one)
_ID_LINE_RE = re.compile(r"A([0-9]{3})\s+(\S.*)")


@dataclass(frozen=True, order=True)
class SampleName:
    """`SsssCcccPpppRrrrAaaa`; ordering follows the fields, which is also the names' string order."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @classmethod
    def parse(cls, text: str) -> SampleName:
        match = _NAME_RE.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not an NTU sample name like S001C002P003R002A013")
        return cls(*map(int, match.groups()))

    @property
    def label(self) -> int:
        """0-based class index: action A001 is label 0."""
        return self.action - 1

    def __str__(self) -> str:
        return (
            f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}"
            f"R{self.replication:03d}A{self.action:03d}"
        )


@dataclass(frozen=True)
class NtuSample:
    """The files of one sample; None where that modality's file is absent."""

    name: SampleName
    rgb: Path | None
    ir: Path | None
    skeleton: Path | None


@dataclass
class NtuIndex:
    """Every sample seen in any modality folder, so that missing modalities can be reported, not hidden."""

    root: Path
    samples: list[NtuSample]
    class_names: list[str]
    ignored: list[Path] = field(default_factory=list)  # files in the modality folders that are not samples

    def complete(self, modalities: Iterable[str] = ("rgb", "ir")) -> list[NtuSample]:
        """The samples that have a file for every one of `modalities`."""
        wanted = _check_modalities(modalities)
        return [s for s in self.samples if all(getattr(s, m) is not None for m in wanted)]

    def missing(self, modalities: Iterable[str] = ("rgb", "ir")) -> dict[str, list[str]]:
        """Sample name -> the modalities among `modalities` it lacks (only samples that lack some)."""
        wanted = _check_modalities(modalities)
        gaps = {str(s.name): [m for m in wanted if getattr(s, m) is None] for s in self.samples}
        return {name: lacking for name, lacking in gaps.items() if lacking}


def _check_modalities(modalities: Iterable[str]) -> tuple[str, ...]:
    wanted = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    unknown = [m for m in wanted if m not in MODALITIES]
    if unknown:
        raise ValueError(f"unknown modality {unknown[0]!r}; known: {', '.join(MODALITIES)}")
    return wanted


def index_ntu(root: str | Path) -> NtuIndex:
    """Index an NTU RGB+D folder in the distributed layout by file names alone."""
    root = Path(root)
    folders = {m: root / folder for m, (folder, _) in _LAYOUT.items()}
    if not any(f.is_dir() for f in folders.values()):
        names = ", ".join(folder for folder, _ in _LAYOUT.values())
        raise DataError(root, f"no NTU RGB+D folders ({names}) found")
    paths: dict[SampleName, dict[str, Path]] = {}
    ignored: list[Path] = []
    for modality, (_, pattern) in _LAYOUT.items():
        if not folders[modality].is_dir():
            continue
        with os.scandir(folders[modality]) as entries:
            for entry in entries:
                match = pattern.fullmatch(entry.name)
                if match is None or not entry.is_file():
                    ignored.append(Path(entry.path))
                    continue
                paths.setdefault(SampleName.parse(match.group(1)), {})[modality] = Path(entry.path)
    samples = [
        NtuSample(name, **{m: found.get(m) for m in MODALITIES}) for name, found in sorted(paths.items())
    ]
    return NtuIndex(root, samples, _dataset_class_names(root, samples), sorted(ignored))


def _dataset_class_names(root: Path, samples: list[NtuSample]) -> list[str]:
    """The root's own class list if it has one, else the official names of NTU60 or NTU120."""
    top_action = max((s.name.action for s in samples), default=1)
    names_file = root / CLASS_NAMES_FILE
    if names_file.is_file():
        names, source = read_class_names(names_file), names_file
    else:
        names, source = ntu_class_names(120 if top_action > 60 else 60), root
    if top_action > len(names):
        sample = next(s.name for s in samples if s.name.action == top_action)
        raise DataError(source, f"only {len(names)} class names but sample {sample} has action {top_action}")
    return names


def ntu_class_names(num_classes: int = 60) -> list[str]:
    """The official class names (NTU60 = the first 60 of NTU120's), spelled as the dataset's README."""
    if num_classes not in (60, 120):
        raise ValueError(f"NTU RGB+D has 60 or 120 classes, not {num_classes}")
    return list(_official_class_names()[:num_classes])


@cache
def _official_class_names() -> tuple[str, ...]:
    resource = resources.files("arctic_kd.data") / "resources" / "ntu120_class_names.txt"
    return tuple(_parse_class_names(resource.read_text(encoding="utf-8"), str(resource)))


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a text file: one per line in label order, or `Axxx<TAB>name` lines from A001."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read class names: {exc}") from exc
    return _parse_class_names(text, path)


def _parse_class_names(text: str, source: str | Path) -> list[str]:
    """Labels are line positions, so blank lines inside the list or duplicate names are errors."""
    lines = [line.strip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise DataError(source, "no class names in the file")
    with_ids = _ID_LINE_RE.fullmatch(lines[0]) is not None
    names: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        name = _class_name(line, number, with_ids, source)
        if name in first_line:
            raise DataError(source, f"class name {name!r} repeats line {first_line[name]}", line=number)
        first_line[name] = number
        names.append(name)
    return names


def _class_name(line: str, number: int, with_ids: bool, source: str | Path) -> str:
    if not line:
        raise DataError(source, "empty line inside the class list (labels are line positions)", line=number)
    if not with_ids:
        return line
    match = _ID_LINE_RE.fullmatch(line)
    if match is None:
        raise DataError(
            source, f"expected 'A{number:03d}<TAB>name' like the first line, found {line!r}", number
        )
    if int(match.group(1)) != number:
        raise DataError(source, f"expected class A{number:03d}, found A{match.group(1)}", line=number)
    return match.group(2)
