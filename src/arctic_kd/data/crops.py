"""What `arctic check` tells about the person crops and registration that training will use.

Training crops both streams to the performer's box from the skeleton files and warps teacher maps with
the RGB→IR registration (`person.py`, `registration.py`). A skeleton that puts its joints off the frame,
tracks a speck of noise instead of a person, or whose colour coordinates disagree with its depth ones
still trains, but on the wrong pixels. These figures, per sample, make that visible before training.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arctic_kd.data.frames import open_frames
from arctic_kd.data.person import PersonTrack, PixelBox, person_track
from arctic_kd.data.registration import FALLBACK_LEVELS, FITTED, NOMINAL
from arctic_kd.data.samples import PairedSample
from arctic_kd.errors import DataError

OFF_FRAME = 0.25  # more than this fraction of a box's area outside its frame
SMALL_BOX = 0.1  # a box whose longer side is under this fraction of the frame's height
HIGH_RESIDUAL_PX = 2.0  # real NTU fits agree with their own joints to 0.1–0.2 IR px (BENCHMARKS.md)
PROBLEMS = {  # short name -> what the summary line counts
    "no skeleton": "no skeleton",
    "no joints": "no tracked joint",
    "off-frame": f"box >{OFF_FRAME:.0%} off-frame",
    "small": f"box <{SMALL_BOX:.0%} of frame height",
    "large": "box larger than frame",
    "residual": f"residual >{HIGH_RESIDUAL_PX:g} IR px",
}
SOURCES = (FITTED, *(level for level, _ in FALLBACK_LEVELS), NOMINAL)


@dataclass(frozen=True)
class CropFigures:
    """One sample's person boxes (per stream, in that stream's pixels), frame sizes and registration."""

    sample_id: str
    boxes: Mapping[str, PixelBox] | None
    frames: Mapping[str, tuple[int, int]]  # (width, height) per stream
    registration_source: str
    residual: float | None  # of the sample's own fit, IR px
    pairs: int
    problems: tuple[tuple[str, str], ...]  # (short name, what exactly)

    def line(self) -> str:
        if self.boxes is None:
            crop = "whole frames"
        else:
            crop = ", ".join(_box_text(m, self.boxes[m], self.frames.get(m)) for m in ("ir", "rgb"))
        fit = f"registration {self.registration_source}"
        if self.residual is not None:
            fit += f", residual {self.residual:.2f} IR px over {self.pairs} joint pairs"
        text = f"{self.sample_id}: {crop}; {fit}"
        return text + "".join(f" — {detail}" for _, detail in self.problems)


def _box_text(modality: str, box: PixelBox, frame: tuple[int, int] | None) -> str:
    x0, y0, x1, y1 = box
    where = f" in {frame[0]}×{frame[1]}" if frame else ""
    return f"{modality.upper()} box {x1 - x0:.0f}×{y1 - y0:.0f} px at ({x0:.0f}, {y0:.0f}){where}"


@dataclass
class CropReport:
    """The crop figures of the checked samples, and their counts per problem and registration source."""

    margin: float
    samples: list[CropFigures] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(name for s in self.samples for name in {name for name, _ in s.problems})

    def summary(self) -> str:
        counts, sources = self.counts(), Counter(s.registration_source for s in self.samples)
        problems = ", ".join(f"{counts[name]} {text}" for name, text in PROBLEMS.items())
        used = ", ".join(f"{sources[source]} {source}" for source in SOURCES)
        residuals = [s.residual for s in self.samples if s.residual is not None]
        typical = f", median residual {statistics.median(residuals):.2f} IR px" if residuals else ""
        return (
            f"person crops (margin {self.margin:g}) of {len(self.samples)} sample(s): {problems}; "
            f"registration: {used}{typical}"
        )

    def lines(self, shown: int | None) -> list[str]:
        """Every sample's line (`shown` None), or those of the first `shown` samples with a problem."""
        listed = self.samples if shown is None else [s for s in self.samples if s.problems]
        lines = [f"    {s.line()}" for s in listed[:shown]]
        if shown is not None and len(listed) > shown:
            lines.append(f"    … and {len(listed) - shown} more (--list-all lists every one)")
        return [f"  {self.summary()}", *lines]


def crop_figures(sample: PairedSample, skeleton: Path | None) -> CropFigures:
    """The figures of one NTU sample as `loaders.paired_samples` prepared it (boxes, borrowed maps)."""
    track = person_track(skeleton) if skeleton is not None else PersonTrack(None, None)
    frames = _frame_sizes(sample)
    problems: list[tuple[str, str]] = []
    if skeleton is None:
        problems.append(("no skeleton", "no skeleton file: whole frames"))
    elif sample.person is None:
        problems.append(("no joints", f"{skeleton.name} tracks no joint: whole frames"))
    else:
        for modality, box in sample.person.items():
            if modality in frames:
                problems += _box_problems(modality, box, *frames[modality])
    if track.residual is not None and track.residual > HIGH_RESIDUAL_PX:
        problems.append(
            ("residual", f"registration residual {track.residual:.1f} IR px (over {HIGH_RESIDUAL_PX:g})")
        )
    return CropFigures(
        sample.sample_id,
        sample.person,
        frames,
        sample.registration_source,
        track.residual,
        track.pairs,
        tuple(problems),
    )


def _frame_sizes(sample: PairedSample) -> dict[str, tuple[int, int]]:
    """(width, height) of each stream from its file's header; a stream that cannot be opened is left out
    (the clip decoding that follows reports it as a bad sample)."""
    sizes = {}
    for modality, path in (("rgb", sample.rgb), ("ir", sample.ir)):
        if path is None:
            continue
        try:
            with open_frames(path) as reader:
                sizes[modality] = (reader.width, reader.height)
        except DataError:
            continue
    return sizes


def _box_problems(modality: str, box: PixelBox, width: int, height: int) -> list[tuple[str, str]]:
    x0, y0, x1, y1 = box
    name, size = modality.upper(), f"{x1 - x0:.0f}×{y1 - y0:.0f} px"
    area = max(x1 - x0, 1e-9) * max(y1 - y0, 1e-9)
    inside = max(0.0, min(x1, width) - max(x0, 0)) * max(0.0, min(y1, height) - max(y0, 0))
    problems = []
    if 1 - inside / area > OFF_FRAME:
        problems.append(
            ("off-frame", f"{name} box {size} is {1 - inside / area:.0%} outside the {width}×{height} frame")
        )
    if max(x1 - x0, y1 - y0) < SMALL_BOX * height:
        problems.append(("small", f"{name} box {size} is under {SMALL_BOX:.0%} of the frame height {height}"))
    if x1 - x0 > width or y1 - y0 > height:
        problems.append(("large", f"{name} box {size} is larger than the {width}×{height} frame"))
    return problems


def crop_report(
    samples: Sequence[PairedSample], skeletons: Sequence[Path | None], margin: float
) -> CropReport:
    return CropReport(margin, [crop_figures(s, k) for s, k in zip(samples, skeletons, strict=True)])
