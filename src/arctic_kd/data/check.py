"""`arctic check`: walk a dataset the way training will, and say plainly what is wrong with it.

Indexing, protocol splits, skeleton parsing and clip decoding each get a line of the report, so a user
learns about a missing IR folder or a corrupt video before the first epoch, not during it. With
`data.person_crop` (NTU) the checked samples go through the person-crop path training uses, and their
boxes and registration are reported (`crops.py`); PKU-MMD's suspicious label rows and the layout found
are listed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arctic_kd.config import DataConfig
from arctic_kd.data.cliploader import ClipLoader
from arctic_kd.data.crops import CropReport, crop_report
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.duplicates import find_duplicates
from arctic_kd.data.frames import open_frames
from arctic_kd.data.loaders import DATASET_PROTOCOLS, paired_samples
from arctic_kd.data.manifest import PROTOCOLS as MANIFEST_PROTOCOLS
from arctic_kd.data.manifest import read_manifest
from arctic_kd.data.ntu import NtuSample, index_ntu
from arctic_kd.data.pkufiles import RowProblem
from arctic_kd.data.pkummd import PROTOCOLS as PKU_PROTOCOLS
from arctic_kd.data.pkummd import index_pkummd
from arctic_kd.data.protocols import PROTOCOLS, split
from arctic_kd.data.samples import BadSample, BadSampleReport, PairedSample
from arctic_kd.data.skeleton import read_skeleton
from arctic_kd.errors import DataError, shortlist
from arctic_kd.progress import progress_bar

SHOWN_PROBLEMS = 10


@dataclass
class DataCheck:
    """What `check_dataset` found; `lines()` is the report the CLI prints."""

    root: Path
    contents: str  # e.g. "120 samples" or "9 recordings, 27 labelled clips"
    num_classes: int
    missing: dict[str, list[str]]
    ignored: list[Path]
    splits: dict[str, tuple[int, int, str]]  # protocol -> (train, test, description) over complete samples
    checked_split: str
    skeletons_read: int | None = None  # None: the dataset has no skeleton files to parse
    clips: int = 0
    seconds: float = 0.0
    clip_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    bad: BadSampleReport = field(default_factory=BadSampleReport)
    notes: list[str] = field(default_factory=list)  # e.g. the PKU-MMD layout found
    crops: CropReport | None = None  # None: whole frames (no person crops)
    registration: str = ""  # how clips without person crops are registered, when that is worth a line
    row_problems: list[RowProblem] = field(default_factory=list)
    row_summary: str = ""
    list_all: bool = False  # every crop and label-row line, not only the first SHOWN_PROBLEMS
    duplicates: list[str] = field(default_factory=list)  # samples listed twice, train/test overlap

    @property
    def ok(self) -> bool:
        """No bad sample, no missing video or label file; a missing skeleton is normal (NTU60 lacks 302)."""
        lacking = any({"rgb", "ir", "labels"} & set(m) for m in self.missing.values())
        return not self.bad and not lacking and not self.duplicates

    def lines(self) -> list[str]:
        lines = [f"{self.root}: {self.contents}, {self.num_classes} classes"]
        lines += [f"  note: {note}" for note in self.notes]
        if self.row_summary:
            lines.append(f"  {self.row_summary}")
            shown = None if self.list_all else SHOWN_PROBLEMS
            lines += [f"    {problem}" for problem in self.row_problems[:shown]]
            if shown is not None and len(self.row_problems) > shown:
                lines.append(f"    … and {len(self.row_problems) - shown} more (--list-all lists every one)")
        if self.missing:
            lines.append(f"  {len(self.missing)} sample(s) miss a modality, e.g.:")
            lines += [
                f"    {name}: no {', '.join(m)}" for name, m in list(self.missing.items())[:SHOWN_PROBLEMS]
            ]
        if self.ignored:
            lines.append(
                f"  {len(self.ignored)} file(s) in the NTU folders are not samples, e.g. {self.ignored[0]}"
            )
        for name, (train, test, description) in self.splits.items():
            lines.append(f"  {name:<12} train {train:>6}  test {test:>6}   {description}")
        if self.duplicates:
            protocol = self.checked_split.split()[0]
            lines.append(f"  {len(self.duplicates)} duplicates or train/test overlaps in {protocol}:")
            shown = None if self.list_all else SHOWN_PROBLEMS
            lines += [f"    {problem}" for problem in self.duplicates[:shown]]
        rate = self.clips / self.seconds if self.seconds else 0.0
        shapes = ", ".join(f"{m} {tuple(s)}" for m, s in self.clip_shapes.items())
        shapes = f": {shapes}" if shapes else ""  # no clip decoded: no shapes to show
        parsed = "" if self.skeletons_read is None else f"{self.skeletons_read} skeleton files parsed, "
        lines.append(
            f"  {self.checked_split}: {parsed}"
            f"{self.clips} paired clips decoded in {self.seconds:.1f} s ({rate:.1f} clips/s){shapes}"
        )
        if self.crops is not None:
            lines += self.crops.lines(None if self.list_all else SHOWN_PROBLEMS)
        elif self.registration:
            lines.append(f"  {self.registration}")
        lines.append(f"  {self.bad.summary()}")
        return lines


def check_dataset(
    root: str | Path,
    protocol: str | None = None,
    subset: str = "test",
    drop_missing_skeletons: bool = False,
    num_frames: int = 8,
    size: int = 112,
    batch_size: int = 8,
    workers: int = 0,
    skip_bad: bool = True,
    limit: int | None = None,
    progress: bool = True,
    data: DataConfig | None = None,
    list_all: bool = False,
) -> DataCheck:
    """Index `root`, count every protocol's split, then parse skeletons and decode clips of one split.

    `data` chooses the dataset kind (`data.dataset`) and holds its options (PKU-MMD path patterns, class
    names, training subjects, person crops); `root` is the dataset folder, or the CSV file of a manifest.
    `protocol` None: `data.protocol` when it belongs to the dataset, else the dataset's first protocol.
    `list_all` lists every sample's crop figures and every suspicious label row, not only the first few.
    """
    data = data or DataConfig()
    protocols = DATASET_PROTOCOLS[data.dataset]
    protocol = protocol or (data.protocol if data.protocol in protocols else protocols[0])
    if protocol not in protocols:
        known = ", ".join(protocols)
        raise DataError(root, f"{protocol!r} is not a protocol of a {data.dataset} dataset ({known})")
    if data.dataset == "pkummd":
        report, chosen = _survey_pkummd(Path(root), data, protocol, subset)
    elif data.dataset == "manifest":
        report, chosen = _survey_manifest(Path(root), data, protocol, subset)
    else:
        report, chosen, skeletons = _survey_ntu(Path(root), protocol, subset, drop_missing_skeletons)
        _parse_skeletons(skeletons[:limit], report, skip_bad)
        if data.person_crop:
            chosen = _person_crops(skeletons[:limit], report, data.person_margin)
    report.list_all = list_all
    report.notes += past_the_end(chosen[:limit])
    margin = data.person_margin if report.crops is not None else None
    _decode_clips(chosen[:limit], report, num_frames, size, batch_size, workers, skip_bad, progress, margin)
    return report


def _survey_ntu(
    root: Path, protocol: str, subset: str, drop_missing_skeletons: bool
) -> tuple[DataCheck, list[PairedSample], list[NtuSample]]:
    index = index_ntu(root)
    by_name = {s.name: s for s in index.complete(("rgb", "ir"))}
    splits = {}
    for name, rule in PROTOCOLS.items():
        train, test = split(by_name, name, drop_missing_skeletons)
        splits[name] = (len(train), len(test), rule.description)
    train, test = split(by_name, protocol, drop_missing_skeletons)
    chosen = [by_name[n] for n in (train if subset == "train" else test)]
    report = DataCheck(
        root,
        f"{len(index.samples)} samples",
        len(index.class_names),
        index.missing(("rgb", "ir", "skeleton")),
        index.ignored,
        splits,
        f"{protocol} {subset}",
        skeletons_read=0,
    )
    return report, paired_samples(chosen), chosen


def _survey_pkummd(
    root: Path, data: DataConfig, protocol: str, subset: str
) -> tuple[DataCheck, list[PairedSample]]:
    index = index_pkummd(root, data.pkummd, data.class_names)
    splits = {}
    for name in index.splits:
        train, test = index.split(name, ("rgb", "ir"))
        splits[name] = (len(train), len(test), PKU_PROTOCOLS[name][1])
    clips = sum(len(index.clips(name)) for name in index.complete(()))
    report = DataCheck(
        root,
        f"{len(index.recordings)} recordings, {clips} labelled clips",
        len(index.class_names),
        index.missing(),
        [],
        splits,
        f"{protocol} {subset}",
        notes=index.notes,
        registration="registration: the nominal Kinect v2 map for every clip (PKU-MMD skeletons carry no "
        "pixel coordinates); clips are whole frames",
        row_problems=index.row_problems(),
        row_summary=index.row_summary(),
    )
    train, test = index.split(protocol, ("rgb", "ir"))
    report.duplicates = find_duplicates(train, test)
    return report, train if subset == "train" else test


def _survey_manifest(
    path: Path, data: DataConfig, protocol: str, subset: str
) -> tuple[DataCheck, list[PairedSample]]:
    manifest = read_manifest(path, data.class_names)
    train, test = manifest.split(protocol, ("rgb", "ir"), data.train_subjects)
    splits = {protocol: (len(train), len(test), MANIFEST_PROTOCOLS[protocol])}
    report = DataCheck(
        path,
        f"{len(manifest.rows)} samples",
        len(manifest.class_names),
        manifest.missing(),
        [],
        splits,
        f"{protocol} {subset}",
        duplicates=find_duplicates(train, test),
    )
    return report, train if subset == "train" else test


def past_the_end(samples: Sequence[PairedSample]) -> list[str]:
    """Clips whose end frame lies past their recording: training clamps them to its last frame, which is
    right for a typo of a few frames and wrong for a row of another recording, so they are listed."""
    lengths: dict[Path, int | None] = {}
    lines = []
    for sample in samples:
        reference = sample.rgb or sample.ir
        if sample.end is None or reference is None:
            continue
        if reference not in lengths:
            try:
                with open_frames(reference) as reader:
                    lengths[reference] = reader.num_frames
            except DataError:
                lengths[reference] = None  # unreadable: the decoding step reports it
        total = lengths[reference]
        if total is not None and sample.end > total:
            where = f"past the {total} frames of {reference}"
            lines.append(f"{sample.sample_id}: ends at frame {sample.end}, {where}")
    if not lines:
        return []
    shown = shortlist(lines, SHOWN_PROBLEMS, "; ")
    return [f"{len(lines)} clip(s) end past their recording (training stops them at its last frame): {shown}"]


def _person_crops(samples: Sequence[NtuSample], report: DataCheck, margin: float) -> list[PairedSample]:
    """The samples as training prepares them with person crops, and their crop figures in `report`. A
    skeleton file that does not parse was reported by `_parse_skeletons`: its sample is left out here."""
    readable = [s for s in samples if str(s.name) not in report.bad.samples]
    prepared = paired_samples(readable, person_crop=True)
    report.crops = crop_report(prepared, [s.skeleton for s in readable], margin)
    return prepared


def _parse_skeletons(samples: Sequence[NtuSample], report: DataCheck, skip_bad: bool) -> None:
    for sample in samples:
        if sample.skeleton is None:
            continue
        try:
            read_skeleton(sample.skeleton)
            report.skeletons_read += 1
        except DataError as error:
            if not skip_bad:
                raise
            report.bad.add(BadSample(str(sample.name), error.path, error.problem))


def _decode_clips(
    samples: Sequence[PairedSample],
    report: DataCheck,
    num_frames,
    size,
    batch_size,
    workers,
    skip_bad,
    progress,
    person_margin: float | None = None,
) -> None:
    dataset = PairedClipDataset(
        samples,
        num_frames,
        train=False,
        rgb_size=(size, size),
        ir_size=(size, size),
        person_margin=person_margin,
    )
    loader = ClipLoader(dataset, batch_size, num_workers=workers, skip_bad=skip_bad)
    loader.report = report.bad  # one list of bad samples for skeletons and clips
    start = time.perf_counter()
    for batch in progress_bar(loader, desc="clips", unit="batch", enabled=progress):
        report.clips += len(batch["label"])
        report.clip_shapes = {m: tuple(batch[m].shape[1:]) for m in ("rgb", "ir")}
    report.seconds = time.perf_counter() - start
