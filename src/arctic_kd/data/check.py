"""`arctic check`: walk a dataset the way training will, and say plainly what is wrong with it.

Indexing, protocol splits, skeleton parsing and clip decoding each get a line of the report, so a user
learns about a missing IR folder or a corrupt video before the first epoch, not during it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arctic_kd.data.dataset import BadSample, BadSampleReport, ClipLoader, PairedClipDataset
from arctic_kd.data.loaders import paired_samples
from arctic_kd.data.ntu import NtuSample, index_ntu
from arctic_kd.data.protocols import PROTOCOLS, split
from arctic_kd.data.skeleton import read_skeleton
from arctic_kd.errors import DataError
from arctic_kd.progress import progress_bar

SHOWN_PROBLEMS = 10


@dataclass
class DataCheck:
    """What `check_dataset` found; `lines()` is the report the CLI prints."""

    root: Path
    num_samples: int
    num_classes: int
    missing: dict[str, list[str]]
    ignored: list[Path]
    splits: dict[str, tuple[int, int]]  # protocol -> (train, test) over complete samples
    checked_split: str
    skeletons_read: int = 0
    clips: int = 0
    seconds: float = 0.0
    clip_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    bad: BadSampleReport = field(default_factory=BadSampleReport)

    @property
    def ok(self) -> bool:
        """No bad sample and no missing video; a missing skeleton is normal (NTU60 lacks 302)."""
        lacking_video = any({"rgb", "ir"} & set(m) for m in self.missing.values())
        return not self.bad and not lacking_video

    def lines(self) -> list[str]:
        lines = [f"{self.root}: {self.num_samples} samples, {self.num_classes} classes"]
        if self.missing:
            lines.append(f"  {len(self.missing)} sample(s) miss a modality, e.g.:")
            lines += [
                f"    {name}: no {', '.join(m)}" for name, m in list(self.missing.items())[:SHOWN_PROBLEMS]
            ]
        if self.ignored:
            lines.append(
                f"  {len(self.ignored)} file(s) in the NTU folders are not samples, e.g. {self.ignored[0]}"
            )
        for name, (train, test) in self.splits.items():
            lines.append(f"  {name:<12} train {train:>6}  test {test:>6}   {PROTOCOLS[name].description}")
        rate = self.clips / self.seconds if self.seconds else 0.0
        shapes = ", ".join(f"{m} {tuple(s)}" for m, s in self.clip_shapes.items())
        lines.append(
            f"  {self.checked_split}: {self.skeletons_read} skeleton files parsed, "
            f"{self.clips} paired clips decoded in {self.seconds:.1f} s ({rate:.1f} clips/s): {shapes}"
        )
        lines.append(f"  {self.bad.summary()}")
        return lines


def check_dataset(
    root: str | Path,
    protocol: str = "ntu60-xsub",
    subset: str = "test",
    drop_missing_skeletons: bool = False,
    num_frames: int = 8,
    size: int = 112,
    batch_size: int = 8,
    workers: int = 0,
    skip_bad: bool = True,
    limit: int | None = None,
    progress: bool = True,
) -> DataCheck:
    """Index `root`, count every protocol's split, then parse skeletons and decode clips of one split."""
    index = index_ntu(root)
    complete = index.complete(("rgb", "ir"))
    by_name = {s.name: s for s in complete}
    splits = {name: tuple(map(len, split(by_name, name, drop_missing_skeletons))) for name in PROTOCOLS}
    train, test = split(by_name, protocol, drop_missing_skeletons)
    chosen = [by_name[n] for n in (train if subset == "train" else test)][:limit]
    report = DataCheck(
        Path(root),
        len(index.samples),
        len(index.class_names),
        index.missing(("rgb", "ir", "skeleton")),
        index.ignored,
        splits,
        f"{protocol} {subset}",
    )
    _parse_skeletons(chosen, report, skip_bad)
    _decode_clips(chosen, report, num_frames, size, batch_size, workers, skip_bad, progress)
    return report


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
    samples, report: DataCheck, num_frames, size, batch_size, workers, skip_bad, progress
) -> None:
    dataset = PairedClipDataset(
        paired_samples(samples), num_frames, train=False, rgb_size=(size, size), ir_size=(size, size)
    )
    loader = ClipLoader(dataset, batch_size, num_workers=workers, skip_bad=skip_bad)
    loader.report = report.bad  # one list of bad samples for skeletons and clips
    start = time.perf_counter()
    for batch in progress_bar(loader, desc="clips", unit="batch", enabled=progress):
        report.clips += len(batch["label"])
        report.clip_shapes = {m: tuple(batch[m].shape[1:]) for m in ("rgb", "ir")}
    report.seconds = time.perf_counter() - start
